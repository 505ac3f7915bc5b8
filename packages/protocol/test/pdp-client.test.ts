// Unit tests of the PDP client against scripted peers on real Unix sockets. The peers here are
// test doubles standing in for the PDP, because the point is how the client copes with answers
// a correct PDP never sends (garbage, wrong shapes, silence). The client against the real
// daemon is covered in test/pdp*.test.ts.
import t, { type Test } from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PdpClient, LineDecoder, type Decision, type DecisionRequest } from '../src/index.js';

type Handler = (frame: Record<string, unknown>, socket: Socket) => void;

async function peer(path: string, handler: Handler): Promise<Server & { frames: number }> {
  const srv = createServer((socket) => {
    const d = new LineDecoder(
      (line) => {
        srv.frames++;
        handler(JSON.parse(line), socket);
      },
      () => socket.destroy(),
    );
    socket.on('data', (c: Buffer) => d.push(c));
    socket.on('error', () => {});
  }) as Server & { frames: number };
  srv.frames = 0;
  await new Promise<void>((r) => srv.listen(path, r));
  return srv;
}

const dir = mkdtempSync(join(tmpdir(), 'pcx-pdpc-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sock = () => join(dir, `s${n++}.sock`);

const req: DecisionRequest = {
  principal: { id: 'agent-7' },
  action: 'net.connect',
  resource: { host: 'example.com', port: 443 },
};
const allow = {
  decision: 'allow',
  reasons: [{ effect: 'allow', policy: 'p', rule: 'p#1', source: 'a.pol:1:1' }],
  policy_version: 'sha256:ab',
};

function reply(body: (f: Record<string, unknown>) => unknown): Handler {
  return (f, s) => s.write(JSON.stringify({ id: f.id, ...(body(f) as object) }) + '\n');
}

function assertFailure(t: Test, d: Decision, code: string): void {
  t.equal(d.decision, 'deny');
  t.equal(d.error?.code, code);
  t.equal(d.reasons.length, 1);
  t.equal(d.reasons[0]?.error?.code, code, 'the reason says it was a failure, not policy');
  t.notOk(d.reasons[0]?.effect, 'no policy effect is claimed');
  t.type(d.error?.message, 'string');
}

t.test('a well-formed answer is returned as the decision', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply(() => allow),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  t.same(await c.decide(req), allow);
});

t.test('no PDP listening: deny with PCX_PDP_UNAVAILABLE, never a rejection', async (t) => {
  const c = new PdpClient({ socketPath: join(dir, 'nobody.sock') });
  t.teardown(() => c.close());
  assertFailure(t, await c.decide(req), 'PCX_PDP_UNAVAILABLE');
});

t.test('a silent PDP: deny with PCX_PDP_TIMEOUT within the per-call deadline', async (t) => {
  const path = sock();
  const srv = await peer(path, () => {});
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path, timeoutMs: 5000 });
  t.teardown(() => c.close());
  const t0 = Date.now();
  assertFailure(t, await c.decide(req, { timeoutMs: 60 }), 'PCX_PDP_TIMEOUT');
  t.ok(Date.now() - t0 < 1000, 'the per-call deadline overrides the default');
});

t.test('the PDP closing the connection mid-call: deny with PCX_PDP_UNAVAILABLE', async (t) => {
  const path = sock();
  const srv = await peer(path, (_f, s) => s.destroy());
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  assertFailure(t, await c.decide(req), 'PCX_PDP_UNAVAILABLE');
});

t.test('garbage instead of JSON: deny with PCX_PDP_BAD_ANSWER', async (t) => {
  const path = sock();
  const srv = await peer(path, (_f, s) => s.write('this is not json\n'));
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  assertFailure(t, await c.decide(req), 'PCX_PDP_BAD_ANSWER');
});

t.test('an error frame: deny with PCX_PDP_ERROR naming the PDP error code', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply(() => ({ error: { code: 'PCX_PDP_BAD_FRAME', message: 'nope' } })),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  const d = await c.decide(req);
  assertFailure(t, d, 'PCX_PDP_ERROR');
  t.match(d.error?.message, /PCX_PDP_BAD_FRAME/);
});

t.test('malformed decisions are failures, never decisions', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['unknown effect', { decision: 'maybe', reasons: [] }],
    ['missing decision', { reasons: [] }],
    ['decision not a string', { decision: true, reasons: [] }],
    ['reasons missing', { decision: 'allow' }],
    ['reasons not a list', { decision: 'allow', reasons: 'because' }],
    ['a reason not an object', { decision: 'allow', reasons: ['x'] }],
    ['a reason field of the wrong type', { decision: 'allow', reasons: [{ effect: 1 }] }],
    ['a reason error without a code', { decision: 'deny', reasons: [{ error: { message: 'x' } }] }],
    ['policy_version not a string', { decision: 'allow', reasons: [], policy_version: 5 }],
    ['error that is not {code,message}', { decision: 'deny', reasons: [], error: 'boom' }],
    ['an error on an allow', { decision: 'allow', reasons: [], error: { code: 'X', message: 'y' } }],
  ];
  const path = sock();
  let i = 0;
  const srv = await peer(
    path,
    reply(() => cases[i]![1]),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  for (; i < cases.length; i++) {
    const d = await c.decide(req);
    t.equal(d.decision, 'deny', cases[i]![0]);
    t.equal(d.error?.code, 'PCX_PDP_BAD_ANSWER', cases[i]![0]);
  }
});

t.test('a request JSON cannot encode is denied, not thrown', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply(() => allow),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  const bad = { ...req, resource: { host: 'x', port: 10n } } as unknown as DecisionRequest;
  assertFailure(t, await c.decide(bad), 'PCX_PDP_BAD_REQUEST');
  const cached = new PdpClient({ socketPath: path, cache: { maxEntries: 10, ttlMs: 10_000 } });
  t.teardown(() => cached.close());
  assertFailure(t, await cached.decide(bad), 'PCX_PDP_BAD_REQUEST');
});

t.test('the client recovers when the PDP comes back', async (t) => {
  const path = sock();
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  assertFailure(t, await c.decide(req), 'PCX_PDP_UNAVAILABLE');
  const srv = await peer(
    path,
    reply(() => allow),
  );
  t.teardown(() => srv.close());
  t.equal((await c.decide(req)).decision, 'allow');
});

t.test('no cache unless asked for', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply(() => allow),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  await c.decide(req);
  await c.decide(req);
  t.equal(srv.frames, 2);
});

t.test('the cache: keyed by the whole request in canonical form, LRU-bounded, with a TTL', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply(() => allow),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path, cache: { maxEntries: 2, ttlMs: 150 } });
  t.teardown(() => c.close());
  const a = await c.decide(req);
  // The same request with its keys in another order is the same request.
  const reordered: DecisionRequest = {
    resource: { port: 443, host: 'example.com' },
    action: 'net.connect',
    principal: { id: 'agent-7' },
  };
  const b = await c.decide(reordered);
  t.same(b, a);
  t.equal(srv.frames, 1, 'served from cache');
  a.reasons.length = 0; // a caller mutating its decision does not poison the cache
  t.equal((await c.decide(req)).reasons.length, 1);
  t.equal(srv.frames, 1);

  // Any difference anywhere in the request is a different key.
  await c.decide({ ...req, resource: { host: 'example.com', port: 444 } });
  t.equal(srv.frames, 2);
  await c.decide(req); // a hit: port 443 is now the most recently used
  t.equal(srv.frames, 2);
  // Bounded at 2: a third distinct request evicts the least recently used (port 444).
  await c.decide({ ...req, resource: { host: 'example.com', port: 445 } });
  t.equal(srv.frames, 3);
  await c.decide(req);
  t.equal(srv.frames, 3, 'the recently used entry survived');
  await c.decide({ ...req, resource: { host: 'example.com', port: 444 } });
  t.equal(srv.frames, 4, 'the least recently used entry was evicted');

  await new Promise((r) => setTimeout(r, 200));
  await c.decide(req);
  t.equal(srv.frames, 5, 'expired after the TTL');
});

t.test('the cache is bounded by bytes: a decision over the budget is not kept, small ones are', async (t) => {
  const path = sock();
  const big = { decision: 'allow', reasons: [{ effect: 'allow', because: 'x'.repeat(4096) }] };
  const srv = await peer(
    path,
    reply((f) => ((f.request as DecisionRequest).resource.port === 1 ? big : allow)),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path, cache: { maxEntries: 1000, ttlMs: 60_000, maxBytes: 2048 } });
  t.teardown(() => c.close());
  const bigReq = { ...req, resource: { host: 'example.com', port: 1 } };
  await c.decide(bigReq);
  await c.decide(bigReq);
  t.equal(srv.frames, 2, 'a 4 KiB decision does not fit a 2 KiB cache');
  const ports = Array.from({ length: 40 }, (_, i) => 1000 + i);
  for (const port of ports) await c.decide({ ...req, resource: { host: 'example.com', port } });
  t.equal(srv.frames, 42);
  await c.decide({ ...req, resource: { host: 'example.com', port: 1039 } });
  t.equal(srv.frames, 42, 'the most recent small decision is served from cache');
  await c.decide({ ...req, resource: { host: 'example.com', port: 1000 } });
  t.equal(srv.frames, 43, 'the oldest was evicted to stay within the bytes');
});

t.test('the cache never keeps failures, error decisions or requests carrying leases', async (t) => {
  const path = sock();
  let answer: unknown = { error: { code: 'PCX_PDP_BAD_FRAME', message: 'x' } };
  const srv = await peer(
    path,
    reply(() => answer),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path, cache: { maxEntries: 100, ttlMs: 60_000 } });
  t.teardown(() => c.close());
  t.equal((await c.decide(req)).error?.code, 'PCX_PDP_ERROR');
  answer = {
    decision: 'deny',
    reasons: [{ error: { code: 'PCX_REQ_MISSING_ATTRIBUTE', message: 'port' } }],
    error: { code: 'PCX_REQ_MISSING_ATTRIBUTE', message: 'port' },
  };
  t.equal((await c.decide(req)).error?.code, 'PCX_REQ_MISSING_ATTRIBUTE');
  answer = allow;
  t.equal((await c.decide(req)).decision, 'allow', 'neither failure was served from cache');
  t.equal(srv.frames, 3);

  const leased: DecisionRequest = { ...req, context: { leases: ['a.b.c'] } };
  await c.decide(leased);
  await c.decide(leased);
  t.equal(srv.frames, 5, 'lease-carrying requests always go to the PDP');
  const proving: DecisionRequest = { ...req, context: { session: 's-42', identity: 'a.b.c' } };
  await c.decide(proving);
  await c.decide(proving);
  t.equal(srv.frames, 7, 'requests carrying an identity token always go to the PDP');

  const unavailable = new PdpClient({ socketPath: join(dir, 'later.sock'), cache: { maxEntries: 100, ttlMs: 60_000 } });
  t.teardown(() => unavailable.close());
  t.equal((await unavailable.decide(req)).error?.code, 'PCX_PDP_UNAVAILABLE');
  const late = await peer(
    join(dir, 'later.sock'),
    reply(() => allow),
  );
  t.teardown(() => late.close());
  t.equal((await unavailable.decide(req)).decision, 'allow', 'an unavailable answer was not cached');
});

t.test('health: passes the PDP health through; unavailable when it cannot be asked', async (t) => {
  const path = sock();
  const srv = await peer(
    path,
    reply((f) => (f.health === true ? { health: { status: 'ok', policy_version: 'sha256:cd' } } : allow)),
  );
  t.teardown(() => srv.close());
  const c = new PdpClient({ socketPath: path });
  t.teardown(() => c.close());
  const h = await c.health();
  t.equal(h.status, 'ok');
  t.equal(h.policy_version, 'sha256:cd');
  const gone = new PdpClient({ socketPath: join(dir, 'none.sock') });
  t.teardown(() => gone.close());
  const u = await gone.health();
  t.equal(u.status, 'unavailable');
  t.equal(u.error?.code, 'PCX_PDP_UNAVAILABLE');
  const weird = await peer(
    join(dir, 'weird.sock'),
    reply(() => ({ health: 'fine' })),
  );
  t.teardown(() => weird.close());
  const w = new PdpClient({ socketPath: join(dir, 'weird.sock') });
  t.teardown(() => w.close());
  t.equal((await w.health()).error?.code, 'PCX_PDP_BAD_ANSWER');
});
