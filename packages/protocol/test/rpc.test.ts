import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient, LineDecoder, encodeFrame, type PcxError } from '../src/index.js';

type Handler = (frame: Record<string, unknown>, socket: Socket) => void;

async function server(path: string, handler: Handler): Promise<Server> {
  const srv = createServer((socket) => {
    const d = new LineDecoder(
      (line) => handler(JSON.parse(line), socket),
      () => socket.destroy(),
    );
    socket.on('data', (c: Buffer) => d.push(c));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(path, r));
  return srv;
}

const dir = mkdtempSync(join(tmpdir(), 'pcx-rpc-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sock = () => join(dir, `s${n++}.sock`);

t.test('pipelined calls resolve with their own answers even when answered out of order', async (t) => {
  const path = sock();
  const held: Array<() => void> = [];
  const srv = await server(path, (f, s) => {
    held.push(() => s.write(encodeFrame({ id: f.id, echo: f.x })));
    if (held.length === 100) for (const h of held.reverse()) h();
  });
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path, connections: 2, timeoutMs: 2000 });
  t.teardown(() => c.close());
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => c.call({ x: i })));
  t.same(
    results.map((r) => r.echo),
    Array.from({ length: 100 }, (_, i) => i),
  );
});

t.test('a caller cannot shadow the frame id', async (t) => {
  const path = sock();
  const srv = await server(path, (f, s) => s.write(encodeFrame({ id: f.id, got: f.id })));
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path });
  t.teardown(() => c.close());
  const r = await c.call({ id: 'evil' });
  t.type(r.got, 'number');
});

t.test('no answer within the deadline rejects with PCX_RPC_TIMEOUT; a late answer is ignored', async (t) => {
  const path = sock();
  let late: (() => void) | undefined;
  const srv = await server(path, (f, s) => {
    if (f.slow) late = () => s.write(encodeFrame({ id: f.id, v: 'late' }));
    else s.write(encodeFrame({ id: f.id, v: 'fast' }));
  });
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path, timeoutMs: 50 });
  t.teardown(() => c.close());
  await t.rejects(c.call({ slow: true }), { code: 'PCX_RPC_TIMEOUT' });
  late?.();
  const r = await c.call({});
  t.equal(r.v, 'fast');
});

t.test('an absent socket rejects with PCX_RPC_UNAVAILABLE; the client recovers when it appears', async (t) => {
  const path = sock();
  const c = new RpcClient({ socketPath: path });
  t.teardown(() => c.close());
  await t.rejects(c.call({}), { code: 'PCX_RPC_UNAVAILABLE' });
  const srv = await server(path, (f, s) => s.write(encodeFrame({ id: f.id, ok: true })));
  t.teardown(() => srv.close());
  t.same((await c.call({})).ok, true);
});

t.test('the peer dying with calls in flight rejects them all with PCX_RPC_CLOSED', async (t) => {
  const path = sock();
  let seen = 0;
  const srv = await server(path, (_f, s) => {
    if (++seen === 10) s.destroy();
  });
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path, timeoutMs: 5000 });
  t.teardown(() => c.close());
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => c.call({})));
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as PcxError).code === 'PCX_RPC_CLOSED'));
  t.equal(c.inFlight, 0);
});

t.test('garbage, id-less and oversized answers fail the calls on that connection', async (t) => {
  for (const [name, reply] of [
    ['not JSON', 'this is not json\n'],
    ['no id', '{"decision":"allow"}\n'],
    ['a fractional id', '{"id":1.5,"decision":"allow"}\n'],
    ['an id past 2^53', '{"id":9007199254740993,"decision":"allow"}\n'],
    ['an id of 1e400 (Infinity)', '{"id":1e400,"decision":"allow"}\n'],
    ['a string id', '{"id":"1","decision":"allow"}\n'],
    ['oversized', '{"id":1,"pad":"' + 'x'.repeat(1024 * 1024) + '"}\n'],
  ] as const) {
    const path = sock();
    const srv = await server(path, (_f, s) => s.write(reply));
    const c = new RpcClient({ socketPath: path, timeoutMs: 2000 });
    await t.rejects(c.call({}), { code: 'PCX_RPC_BAD_FRAME' }, name);
    c.close();
    srv.close();
  }
});

t.test('closing the client rejects calls in flight and later calls', async (t) => {
  const path = sock();
  const srv = await server(path, () => {});
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path, timeoutMs: 5000 });
  const p = c.call({});
  await new Promise((r) => setTimeout(r, 20));
  c.close();
  await t.rejects(p, { code: 'PCX_RPC_CLOSED' });
  await t.rejects(c.call({}), { code: 'PCX_RPC_CLOSED' });
});

t.test('too many calls in flight are refused rather than queued without bound', async (t) => {
  const path = sock();
  const srv = await server(path, () => {});
  t.teardown(() => srv.close());
  const c = new RpcClient({ socketPath: path, timeoutMs: 200, maxInFlight: 3 });
  t.teardown(() => c.close());
  const calls = Array.from({ length: 4 }, () => c.call({}).catch((e: PcxError) => e.code));
  t.same(await Promise.all(calls), ['PCX_RPC_TIMEOUT', 'PCX_RPC_TIMEOUT', 'PCX_RPC_TIMEOUT', 'PCX_RPC_OVERLOADED']);
});

t.test(
  'the frame limit counts bytes: a request of 600k "é" is refused unsent; calls pipelined with it get answers',
  async (t) => {
    const path = sock();
    let received = 0;
    const srv = await server(path, (f, s) => {
      received++;
      s.write(encodeFrame({ id: f.id, echo: f.x }));
    });
    t.teardown(() => srv.close());
    const c = new RpcClient({ socketPath: path, timeoutMs: 5000 });
    t.teardown(() => c.close());
    const wide = 'é'.repeat(600_000); // 600,000 UTF-16 units, 1,200,000 UTF-8 bytes
    const calls = [c.call({ x: 1 }), c.call({ x: wide }), c.call({ x: 3 })];
    const [a, big, b] = await Promise.allSettled(calls);
    t.match(big, { status: 'rejected', reason: { code: 'PCX_RPC_FRAME_TOO_LARGE', message: /1200\d{3} bytes/ } });
    t.match(a, { status: 'fulfilled', value: { echo: 1 } });
    t.match(b, { status: 'fulfilled', value: { echo: 3 } });
    t.equal(received, 2, 'the oversized frame never reached the peer');
    // Just under the limit in bytes (but not in characters) still goes through.
    const fits = 'é'.repeat(500_000);
    t.equal((await c.call({ x: fits })).echo, fits);
  },
);
