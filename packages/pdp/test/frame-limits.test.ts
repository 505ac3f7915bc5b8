// The frame limit from both ends, against the real daemon in-process over real Unix sockets:
// ids must be safe integers or short strings (a float or 2^53+1 cannot be echoed exactly); an
// answer never exceeds the frame limit, however many reasons the policy gives (it used to be
// sent whole, and the client dropped the connection with every call pipelined on it); the
// client counts the limit in bytes (a 600k-"é" request used to reach the PDP, which closed the
// connection, failing the honest calls pipelined with it).
import t from 'tap';
import { MAX_FRAME_BYTES, PdpClient } from '@portcullis/protocol';
import { RawConn, request, startTestPdp } from './helpers.js';

for (const [name, id] of [
  ['a fractional id', '1.5'],
  ['an id past 2^53', '9007199254740993'],
  ['an id of 1e400 (Infinity once parsed)', '1e400'],
  ['a string id of 257 characters', JSON.stringify('i'.repeat(257))],
] as const) {
  t.test(`${name} is refused: an error frame with id null, then the connection is closed`, async (t) => {
    const { socketPath } = await startTestPdp(t);
    const c = await RawConn.open(socketPath);
    t.teardown(() => c.close());
    c.write(`{"id":${id},"request":${JSON.stringify(request('ok.example'))}}\n`);
    t.match(await c.frame(), { id: null, error: { code: 'PCX_PDP_BAD_FRAME', message: /safe integer/ } });
    await c.closed;
  });
}

t.test('the largest valid ids are echoed exactly', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  const long = 'é'.repeat(256);
  c.write(`{"id":${Number.MAX_SAFE_INTEGER},"request":${JSON.stringify(request('ok.example'))}}\n`);
  c.write(`{"id":${JSON.stringify(long)},"health":true}\n`);
  c.write(`{"id":-5,"request":${JSON.stringify(request('ok.example'))}}\n`);
  const [a, b, n] = await c.frames(3);
  t.match(a, { id: Number.MAX_SAFE_INTEGER, decision: 'allow' });
  t.match(b, { id: long, health: { status: 'ok' } });
  t.match(n, { id: -5, decision: 'allow' });
});

t.test(
  'an answer with reasons beyond the frame limit is cut to fit, with a marker, keeping the decision',
  async (t) => {
    // 3,000 deny rules that all match, each with a 400-character reason: about 1.6 MB of reasons.
    const rules = Array.from(
      { length: 3000 },
      (_, i) =>
        `  deny net.connect when resource.host == "evil.example" ` +
        `because "${String(i).padStart(4, '0')} ${'r'.repeat(395)}"`,
    );
    const policy = `policy "many" {\n  allow net.connect when resource.host == "ok.example"\n${rules.join('\n')}\n}\n`;
    const { socketPath } = await startTestPdp(t, { policy });
    const c = await RawConn.open(socketPath);
    t.teardown(() => c.close());
    c.write(`{"id":1,"request":${JSON.stringify(request('evil.example'))}}\n`);
    c.write(`{"id":2,"request":${JSON.stringify(request('ok.example'))}}\n`);
    const [cut, next] = await c.frames(2);
    t.match(cut, { id: 1, decision: 'deny', policy_version: /^sha256:/ });
    const reasons = cut!.reasons as Array<Record<string, unknown>>;
    const marker = reasons.at(-1)!;
    t.ok(reasons.length > 100 && reasons.length < 3000, `${reasons.length - 1} reasons kept`);
    t.equal(marker.truncated, 3000 - (reasons.length - 1), 'the marker counts the reasons left out');
    t.match(marker.because, /left out.*frame limit of 1048576 bytes/);
    t.match(reasons[0], { effect: 'deny', because: /^0000 r+$/ }, 'kept reasons are whole and in order');
    t.ok(Buffer.byteLength(JSON.stringify(cut)) <= MAX_FRAME_BYTES, 'the answer fits the frame limit');
    t.match(next, { id: 2, decision: 'allow' }, 'the connection goes on');

    // The client takes it as the decision it is, not as a broken answer.
    const client = new PdpClient({ socketPath, timeoutMs: 10_000 });
    t.teardown(() => client.close());
    const d = await client.decide(request('evil.example') as never);
    t.equal(d.decision, 'deny');
    t.notOk(d.error, 'not a failure');
    t.equal(d.reasons.at(-1)?.truncated, marker.truncated);
  },
);

t.test('a request of 600k "é" is refused by the client; calls pipelined with it get their answers', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const client = new PdpClient({ socketPath, timeoutMs: 10_000 });
  t.teardown(() => client.close());
  const wide = { ...request('ok.example'), context: { note: 'é'.repeat(600_000) } };
  const [before, big, after] = await Promise.all([
    client.decide(request('ok.example') as never),
    client.decide(wide as never),
    client.decide(request('evil.example') as never),
  ]);
  t.equal(before.decision, 'allow');
  t.equal(big.decision, 'deny');
  t.equal(big.error?.code, 'PCX_PDP_REQUEST_TOO_LARGE');
  t.match(big.error?.message, /1200\d{3} bytes; the limit is 1048576/);
  t.equal(after.decision, 'deny');
  t.notOk(after.error, 'an honest call on the same connection was decided by policy');
});
