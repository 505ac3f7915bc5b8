// AuditClient against a scripted stand-in for the sink (a test double for an outside service:
// the real sink is exercised in packages/audit/test and test/audit.test.ts).
import t from 'tap';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditClient, LineDecoder, encodeFrame, type AuditRecordInput } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pcx-audit-client-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function fakeSink(
  answer: (frame: Record<string, unknown>) => unknown,
): Promise<{ path: string; server: Server; seen: Record<string, unknown>[] }> {
  const path = join(dir, `s${n++}.sock`);
  const seen: Record<string, unknown>[] = [];
  const server = createServer((s) => {
    const d = new LineDecoder(
      (line) => {
        const f = JSON.parse(line) as Record<string, unknown>;
        seen.push(f);
        const a = answer(f);
        if (a !== undefined) s.write(typeof a === 'string' ? a : encodeFrame(a));
      },
      () => s.destroy(),
    );
    s.on('data', (c: Buffer) => d.push(c));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => server.close());
  return { path, server, seen };
}

const rec: AuditRecordInput = {
  source: 'egress',
  principal: { id: 'a' },
  action: 'x',
  resource: { cookie: 'c=1' },
  decision: 'allow',
  reasons: [],
};
const HASH = 'ab'.repeat(32);

t.test('append sends the redacted record and returns the ack', async (t) => {
  const s = await fakeSink((f) => ({ id: f.id, ack: { seq: 12, hash: HASH } }));
  const c = new AuditClient({ socketPath: s.path });
  t.same(await c.append(rec), { seq: 12, hash: HASH });
  t.same(
    (s.seen[0]!.record as { resource: unknown }).resource,
    { cookie: '[redacted]' },
    'the secret never crossed the socket',
  );
  c.close();
});

t.test('a refusal keeps its stable code; an unknown code becomes PCX_AUDIT_REFUSED', async (t) => {
  const s = await fakeSink((f) => ({
    id: f.id,
    error:
      (f.record as { action: string }).action === 'x'
        ? { code: 'PCX_AUDIT_WRITE_FAILED', message: 'the disk is full' }
        : { code: 'weird', message: 'no' },
  }));
  const c = new AuditClient({ socketPath: s.path });
  await t.rejects(c.append(rec), { code: 'PCX_AUDIT_WRITE_FAILED', message: /disk is full/ });
  await t.rejects(c.append({ ...rec, action: 'y' }), { code: 'PCX_AUDIT_REFUSED' });
  c.close();
});

t.test('malformed acks, silence and a closed socket all reject (so the PEP denies)', async (t) => {
  const bad = await fakeSink((f) => ({ id: f.id, ack: { seq: 'one', hash: HASH } }));
  const c1 = new AuditClient({ socketPath: bad.path });
  await t.rejects(c1.append(rec), { code: 'PCX_AUDIT_BAD_RESPONSE' });
  c1.close();
  const silent = await fakeSink(() => undefined);
  const c2 = new AuditClient({ socketPath: silent.path, timeoutMs: 50 });
  await t.rejects(c2.append(rec), { code: 'PCX_RPC_TIMEOUT' });
  c2.close();
  const garbage = await fakeSink(() => 'not json\n');
  const c3 = new AuditClient({ socketPath: garbage.path });
  await t.rejects(c3.append(rec), { code: 'PCX_RPC_BAD_FRAME' });
  c3.close();
});

t.test('health', async (t) => {
  const s = await fakeSink((f) =>
    f.health ? { id: f.id, health: { size: 3, writable: false, mode: 'durable' } } : undefined,
  );
  const c = new AuditClient({ socketPath: s.path });
  t.same(await c.health(), { size: 3, writable: false, mode: 'durable' });
  c.close();
});
