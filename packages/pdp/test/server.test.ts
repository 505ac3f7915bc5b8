// The PDP server in-process, over real Unix sockets: the wire protocol, hostile input, the
// socket file's life cycle, drain. Process-level behaviour (signals, kill -9) is in test/pdp*.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { compile } from '@portcullis/policy';
import { PdpClient } from '@portcullis/protocol';
import { startPdp } from '../src/index.js';
import { BASE_POLICY, RawConn, eventually, health, request, startTestPdp, tempDir } from './helpers.js';

// A single-file set is named by its base name: where it lives does not change its version.
const expectedVersion = (text: string, path: string) => compile([{ path: basename(path), text }]).policy!.version;

t.test('socket mode 0660; health reports the loaded policy version', async (t) => {
  const { socketPath, policyPath } = await startTestPdp(t);
  t.equal(statSync(socketPath).mode & 0o777, 0o660);
  t.ok(statSync(socketPath).isSocket());
  const h = await health(socketPath);
  t.equal(h.status, 'ok');
  t.equal(h.policy_version, expectedVersion(BASE_POLICY, policyPath));
  t.equal(h.rule_count, 3);
});

t.test('1,000 pipelined requests in one write: every answer matches its id and its request', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  const hosts = ['ok.example', 'evil.example', 'ask.example', 'other.example'];
  const expected: Record<string, string> = {
    'ok.example': 'allow',
    'evil.example': 'deny',
    'ask.example': 'ask',
    'other.example': 'deny',
  };
  let out = '';
  for (let i = 0; i < 1000; i++) out += JSON.stringify({ id: i, request: request(hosts[i % 4]!) }) + '\n';
  c.write(out);
  const frames = await c.frames(1000);
  const versions = new Set(frames.map((f) => f.policy_version));
  t.equal(versions.size, 1, 'one policy version throughout');
  t.match([...versions][0], /^sha256:[0-9a-f]{64}$/);
  const seen = new Set<number>();
  let wrong = 0;
  for (const f of frames) {
    const id = f.id as number;
    seen.add(id);
    if (f.decision !== expected[hosts[id % 4]!]) wrong++;
  }
  t.equal(seen.size, 1000, 'every id answered exactly once');
  t.equal(wrong, 0, 'every answer is the decision for its own request');
  const deny = frames.find((f) => f.id === 1)!;
  t.match(deny.reasons, [
    { effect: 'deny', policy: 'base', rule: /^base#/, because: 'blocked host', source: /policy\.pol:3:/ },
  ]);
});

t.test('the real client: 1,000 concurrent decisions through PdpClient', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const client = new PdpClient({ socketPath, connections: 4, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const ds = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => client.decide(request(i % 2 ? 'ok.example' : 'evil.example') as never)),
  );
  t.equal(ds.filter((d, i) => d.decision === (i % 2 ? 'allow' : 'deny')).length, 1000);
  t.equal(ds.filter((d) => d.error).length, 0);
});

t.test('string ids are echoed; a frame with an id but no request gets an error and the connection stays', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write('{"id":"abc","request":' + JSON.stringify(request('ok.example')) + '}\n');
  t.match(await c.frame(), { id: 'abc', decision: 'allow' });
  c.write('{"id":5,"hello":true}\n');
  t.match(await c.frame(), { id: 5, error: { code: 'PCX_PDP_BAD_FRAME' } });
  c.write('{"id":6,"request":' + JSON.stringify(request('ok.example')) + '}\n');
  t.match(await c.frame(), { id: 6, decision: 'allow' }, 'still open');
});

t.test('a malformed request is a deny with an error, not a protocol error', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(
    JSON.stringify({
      id: 1,
      request: { principal: { id: 'a' }, action: 'net.connect', resource: { host: 'ok.example' } },
    }) + '\n',
  );
  const f = await c.frame();
  t.equal(f.decision, 'deny');
  t.type((f.error as { code: string }).code, 'string');
  t.ok(f.policy_version, 'still says which policy decided');
  c.write(JSON.stringify({ id: 2, request: 'not an object' }) + '\n');
  t.match(await c.frame(), { id: 2, decision: 'deny', error: { code: String } });
});

for (const [name, bytes, code] of [
  ['bad JSON', 'this is not json\n', 'PCX_PDP_BAD_FRAME'],
  ['a JSON array', '[1,2,3]\n', 'PCX_PDP_BAD_FRAME'],
  ['a missing id', JSON.stringify({ request: request('ok.example') }) + '\n', 'PCX_PDP_BAD_FRAME'],
  [
    'an id of the wrong type',
    JSON.stringify({ id: { x: 1 }, request: request('ok.example') }) + '\n',
    'PCX_PDP_BAD_FRAME',
  ],
  ['invalid UTF-8 / binary garbage', Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x0a]), 'PCX_PDP_BAD_FRAME'],
] as const) {
  t.test(`${name}: an error frame with id null, then the connection is closed; the daemon lives on`, async (t) => {
    const { socketPath } = await startTestPdp(t);
    const c = await RawConn.open(socketPath);
    t.teardown(() => c.close());
    c.write(JSON.stringify({ id: 1, request: request('ok.example') }) + '\n');
    c.write(bytes);
    c.write(JSON.stringify({ id: 3, request: request('ok.example') }) + '\n');
    const [first, err] = await c.frames(2);
    t.match(first, { id: 1, decision: 'allow' }, 'frames before the bad one are answered');
    t.match(err, { id: null, error: { code, message: String } });
    await c.closed;
    t.equal((await health(socketPath)).status, 'ok', 'a new connection is served');
  });
}

t.test(
  'an oversized frame (over 1 MiB): PCX_PDP_FRAME_TOO_LARGE, connection closed, nothing buffered beyond the limit',
  async (t) => {
    const { socketPath } = await startTestPdp(t);
    const c = await RawConn.open(socketPath);
    t.teardown(() => c.close());
    const big = 'x'.repeat(64 * 1024);
    c.write('{"id":1,"request":"');
    // Stream 2 MiB without a newline, as a hostile client would.
    for (let i = 0; i < 32; i++) c.write(big);
    const f = await c.frame();
    t.match(f, { id: null, error: { code: 'PCX_PDP_FRAME_TOO_LARGE' } });
    await c.closed;
    // The same with a newline at the end of a 1 MiB + 1 line.
    const c2 = await RawConn.open(socketPath);
    t.teardown(() => c2.close());
    c2.write('"' + 'y'.repeat(1024 * 1024) + '"\n');
    t.match(await c2.frame(), { error: { code: 'PCX_PDP_FRAME_TOO_LARGE' } });
    await c2.closed;
    t.equal((await health(socketPath)).status, 'ok');
  },
);

t.test('partial frames: split anywhere, even byte by byte, they are reassembled', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  const line = Buffer.from(JSON.stringify({ id: 9, request: request('ok.example') }) + '\n');
  for (const byte of line) {
    c.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  t.match(await c.frame(), { id: 9, decision: 'allow' });
});

t.test('clients that disconnect mid-frame or before reading their answers do not disturb the daemon', async (t) => {
  const { socketPath } = await startTestPdp(t);
  for (let i = 0; i < 20; i++) {
    const c = await RawConn.open(socketPath);
    c.write(JSON.stringify({ id: 1, request: request('ok.example') }) + '\n'.repeat(i % 2) + '{"id":2,"requ');
    c.close();
  }
  // A client that pipelines a lot and never reads: backpressure, then it vanishes.
  const greedy = await RawConn.open(socketPath);
  const line = JSON.stringify({ id: 1, request: request('ok.example') }) + '\n';
  greedy.socket.pause();
  greedy.write(line.repeat(20000));
  await new Promise((r) => setTimeout(r, 100));
  greedy.close();
  await eventually(async () => (await health(socketPath)).status === 'ok' || undefined);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(line);
  t.match(await c.frame(), { id: 1, decision: 'allow' });
});

t.test('no valid policy at start: every request is denied, saying why; fixing the file recovers', async (t) => {
  const { socketPath, policyPath, logs } = await startTestPdp(t, { policy: 'policy "x" { allow nope.nope }\n' });
  const h = await health(socketPath);
  t.equal(h.status, 'no_policy');
  t.match(h.last_reload, { ok: false, error: { code: 'PCX_POLICY_COMPILE' } });
  t.ok((h.last_reload as { diagnostics: string[] }).diagnostics.length > 0, 'diagnostics shown in health');
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(JSON.stringify({ id: 1, request: request('ok.example') }) + '\n');
  const f = await c.frame();
  t.equal(f.decision, 'deny');
  t.match(f.error, { code: 'PCX_PDP_NO_POLICY', message: /no valid policy/ });
  t.match(
    (f.reasons as Array<{ error: { message: string } }>)[0]!.error.message,
    /policy\.pol/,
    'says where the problem is',
  );
  t.ok(
    logs.some((l) => l.startsWith('error:')),
    'the failure was logged',
  );
  writeFileSync(policyPath, BASE_POLICY);
  await eventually(async () => (await health(socketPath)).status === 'ok' || undefined);
  c.write(JSON.stringify({ id: 2, request: request('ok.example') }) + '\n');
  t.match(await c.frame(), { id: 2, decision: 'allow' });
});

t.test('a missing policy path at start: deny all, and load it when it appears', async (t) => {
  const dir = tempDir(t);
  const { socketPath } = await startTestPdp(t, { policyPath: join(dir, 'later') });
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(JSON.stringify({ id: 1, request: request('ok.example') }) + '\n');
  t.match(await c.frame(), { decision: 'deny', error: { code: 'PCX_PDP_NO_POLICY', message: /no such file/ } });
  writeFileSync(join(dir, 'later'), BASE_POLICY);
  await eventually(async () => (await health(socketPath)).status === 'ok' || undefined);
});

t.test('a stale socket file from a crashed process is replaced', async (t) => {
  const dir = tempDir(t);
  const socketPath = join(dir, 'pdp.sock');
  // A real crash: a process binds the socket and is killed with SIGKILL, leaving the file.
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`,
    socketPath,
  ]);
  await new Promise((r) => child.on('exit', r));
  t.ok(statSync(socketPath).isSocket(), 'the crashed process left its socket file behind');
  const pdp = await startPdp({ policyPath: join(dir, 'p.pol'), socketPath, log: () => {} });
  t.teardown(() => pdp.close());
  writeFileSync(join(dir, 'p.pol'), BASE_POLICY);
  t.equal(statSync(socketPath).mode & 0o777, 0o660);
  t.ok((await health(socketPath)).status, 'the new PDP answers on the path');
});

t.test('a live socket is never taken over; a non-socket file is never removed', async (t) => {
  const dir = tempDir(t);
  const live = join(dir, 'live.sock');
  const other = createServer();
  await new Promise<void>((r) => other.listen(live, r));
  t.teardown(() => other.close());
  await t.rejects(startPdp({ policyPath: join(dir, 'p.pol'), socketPath: live, log: () => {} }), {
    code: 'PCX_PDP_SOCKET_IN_USE',
  });
  const file = join(dir, 'file.sock');
  writeFileSync(file, 'precious');
  await t.rejects(startPdp({ policyPath: join(dir, 'p.pol'), socketPath: file, log: () => {} }), {
    code: 'PCX_PDP_SOCKET_PATH',
    message: /not a socket/,
  });
  t.equal(readFileSync(file, 'utf8'), 'precious');
});

t.test('close() drains: everything already sent is answered, then the socket file is gone', async (t) => {
  const { pdp, socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  let out = '';
  for (let i = 0; i < 5000; i++) out += JSON.stringify({ id: i, request: request('ok.example') }) + '\n';
  c.write(out);
  await new Promise((r) => setImmediate(r));
  const closing = pdp.close({ drainTimeoutMs: 5000, idleMs: 50 });
  const frames = await c.frames(5000);
  t.equal(frames.length, 5000);
  t.equal(new Set(frames.map((f) => f.id)).size, 5000);
  await closing;
  await c.closed;
  t.notOk(existsSync(socketPath), 'socket file removed');
  await t.rejects(RawConn.open(socketPath), 'no new connections');
});

t.test('close() does not wait forever: a connection stuck mid-frame is cut at the drain deadline', async (t) => {
  const { pdp, socketPath } = await startTestPdp(t);
  const c = await RawConn.open(socketPath);
  t.teardown(() => c.close());
  c.write(JSON.stringify({ id: 1, request: request('ok.example') }) + '\n{"id":2,"requ');
  t.match(await c.frame(), { id: 1, decision: 'allow' });
  const t0 = Date.now();
  await pdp.close({ drainTimeoutMs: 300, idleMs: 10 });
  const took = Date.now() - t0;
  t.ok(took >= 250 && took < 3000, `closed at the deadline (${took} ms)`);
  await c.closed;
});
