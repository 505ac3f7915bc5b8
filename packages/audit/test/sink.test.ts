import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { AuditClient } from '@portcullis/protocol';
import { AuditLog } from '../src/log.js';
import { verifyLog } from '../src/verify.js';
import { raw, sampleRecord, startSink, tempDir } from './helpers.js';

t.test('pipelined appends are acked in order with their own seq and hash; the log verifies', async (t) => {
  const s = await startSink(t, { checkpointEvery: 100 });
  const acks = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.client.append(sampleRecord(i))));
  t.same(
    acks.map((a) => a.seq).sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  const lines = readFileSync(join(s.dir, 'segments', '000001.log'), 'utf8')
    .trimEnd()
    .split('\n');
  t.equal(lines.length, 1000, 'each ack is in the file when it arrives');
  for (const a of acks.slice(0, 50)) t.equal(JSON.parse(lines[a.seq]!).hash, a.hash);
  t.same(await s.client.health(), { size: 1000, writable: true, mode: 'default' });
  t.equal(statSync(s.socketPath).mode & 0o777, 0o660, 'socket mode 0660');
  await s.stop();
  const r = await verifyLog(s.dir, { publicKey: s.publicKey });
  t.ok(r.ok, JSON.stringify(r.problems));
  t.equal(r.records, 1000);
  t.ok(r.checkpoints >= 1);
  t.equal(r.unsigned, 0, 'closing writes a final checkpoint');
});

t.test('redaction reaches the log: no secret or lease token is ever written', async (t) => {
  const s = await startSink(t);
  const token = [
    'eyJhbGciOiJFZERTQSJ9',
    Buffer.from(JSON.stringify({ jti: 'lease-9' })).toString('base64url'),
    'c2lnbmF0dXJl',
  ].join('.');
  await s.client.append({
    ...sampleRecord(1),
    context: { leases: [token] },
    resource: { headers: { authorization: 'Bearer hunter2' } },
  });
  // A raw frame bypassing the client's redaction: the sink redacts again.
  const res = await raw(
    s.socketPath,
    JSON.stringify({
      id: 5,
      record: { ...sampleRecord(2), resource: { password: 'hunter3' }, context: { leases: [token] } },
    }) + '\n',
    1,
  );
  t.ok(res.frames[0]!.ack);
  await s.stop();
  const text = readFileSync(join(s.dir, 'segments', '000001.log'), 'utf8');
  for (const secret of [token, 'hunter2', 'hunter3', 'c2lnbmF0dXJl'])
    t.notOk(text.includes(secret), `no "${secret.slice(0, 12)}…" in the log`);
  t.equal(text.match(/"leases":\["lease-9"\]/g)?.length, 2, 'the lease id is kept');
});

t.test('members named __proto__, constructor and prototype reach the acknowledged record intact', async (t) => {
  const s = await startSink(t);
  // As a PEP gets them: parsed from JSON (an own "__proto__" member, not the prototype).
  const hostile = `{"__proto__":{"path":"/etc/shadow","token":"hunter4","constructor":{"prototype":1}},
    "constructor":{"name":"x"},"prototype":["y"],"host":"h"}`;
  const resource = JSON.parse(hostile) as Record<string, unknown>;
  const context = JSON.parse(`{"__proto__":{"session":"s-42"},"project":"p"}`) as Record<string, unknown>;
  const viaClient = await s.client.append({ ...sampleRecord(1), resource, context });
  // And a raw frame, so that the sink's own copy is tested without the client's in front of it.
  const res = await raw(
    s.socketPath,
    `{"id":9,"record":${JSON.stringify({ ...sampleRecord(2), resource, context })}}\n`,
    1,
  );
  const ack = res.frames[0]!.ack as { seq: number; hash: string };
  t.ok(ack, JSON.stringify(res.frames[0]));
  await s.stop();
  const lines = readFileSync(join(s.dir, 'segments', '000001.log'), 'utf8')
    .trimEnd()
    .split('\n');
  t.equal(lines.length, 2);
  for (const [i, line] of lines.entries()) {
    const r = JSON.parse(line) as { hash: string; resource: Record<string, unknown>; context: Record<string, unknown> };
    t.equal(r.hash, i === 0 ? viaClient.hash : ack.hash, 'the line is the acknowledged record');
    const own = (o: unknown, k: string) => Object.getOwnPropertyDescriptor(o, k)?.value as Record<string, unknown>;
    t.same(Object.keys(r.resource), ['__proto__', 'constructor', 'host', 'prototype']);
    t.same(own(r.resource, '__proto__'), { constructor: { prototype: 1 }, path: '/etc/shadow', token: '[redacted]' });
    t.same(own(r.resource, 'constructor'), { name: 'x' });
    t.same(own(r.resource, 'prototype'), ['y']);
    t.same(own(r.context, '__proto__'), { session: 's-42' });
    t.equal(Object.getPrototypeOf(r.resource), Object.prototype, 'JSON.parse made an own member, as it should');
  }
  t.notOk(lines.join('').includes('hunter4'), 'redaction still applies below __proto__');
  t.ok((await verifyLog(s.dir, { publicKey: s.publicKey })).ok);
});

t.test('hostile input: the sink answers with stable codes, closes bad connections and keeps serving', async (t) => {
  const s = await startSink(t);
  let r = await raw(s.socketPath, 'not json\n', 1);
  t.equal((r.frames[0]!.error as { code: string }).code, 'PCX_AUDIT_BAD_FRAME');
  t.ok(r.closed, 'bad JSON closes the connection');
  r = await raw(s.socketPath, '{"record":{}}\n', 1);
  t.match(r.frames[0]!.error, { code: 'PCX_AUDIT_BAD_FRAME', message: /no valid "id"/ });
  r = await raw(
    s.socketPath,
    JSON.stringify({ id: 1, record: { ...sampleRecord(0), seq: 99 } }) +
      '\n' +
      JSON.stringify({ id: 2, record: sampleRecord(1) }) +
      '\n',
    2,
  );
  t.match(r.frames[0], {
    id: 1,
    error: { code: 'PCX_AUDIT_INVALID_RECORD', message: /"seq" is assigned by the sink/ },
  });
  t.match(r.frames[1], { id: 2, ack: { seq: 0 } }, 'an invalid record does not close the connection');
  r = await raw(s.socketPath, Buffer.alloc(1024 * 1024 + 10, 'a'), 1);
  t.match(r.frames[0]!.error, { code: 'PCX_AUDIT_FRAME_TOO_LARGE' });
  t.ok(r.closed);
  r = await raw(s.socketPath, '{"id":3,"record":{"source":"eg', 0); // a partial frame, then hang up
  r = await raw(s.socketPath, '{"id":4}\n', 1);
  t.match(r.frames[0], { id: 4, error: { code: 'PCX_AUDIT_BAD_FRAME' } });
  t.same(await s.client.append(sampleRecord(2)).then((a) => a.seq), 1, 'still serving; nothing bad was logged');
  await s.stop();
  t.ok((await verifyLog(s.dir)).ok);
});

t.test('a client rejects with a PcxError when the sink is down or refuses', async (t) => {
  const dir = tempDir(t);
  const c = new AuditClient({ socketPath: join(dir, 'nobody.sock') });
  await t.rejects(c.append(sampleRecord(0)), { code: 'PCX_RPC_UNAVAILABLE' });
  await t.rejects(c.append({ ...sampleRecord(0), decision: 'perhaps' as never }), { code: 'PCX_AUDIT_INVALID_RECORD' });
  c.close();
});

t.test('single writer: a second sink on the same directory refuses; a stale lock is taken over', async (t) => {
  const s = await startSink(t);
  await t.rejects(AuditLog.open({ dir: s.dir, key: s.key }), {
    code: 'PCX_AUDIT_LOCKED',
    message: new RegExp(`pid ${process.pid}`),
  });
  await s.stop();
  // A lock left by a process that no longer exists.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(join(s.dir, 'LOCK'), `${dead}\n`);
  const log = await AuditLog.open({ dir: s.dir, key: s.key });
  t.equal(readFileSync(join(s.dir, 'LOCK'), 'utf8').trim(), String(process.pid));
  await log.close();
  t.notOk(existsSync(join(s.dir, 'LOCK')), 'released on close');
});

t.test('restart continues the chain; segments rotate; durable mode acks after fsync', async (t) => {
  const dir = tempDir(t);
  const s1 = await startSink(t, { dir, segmentBytes: 4096, checkpointEvery: 7 });
  for (let i = 0; i < 60; i++) await s1.client.append(sampleRecord(i));
  await s1.stop();
  // The same key: a log is continued only with the key that signed its checkpoints.
  const s2 = await startSink(t, { dir, segmentBytes: 4096, durable: true, key: s1.key });
  const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => s2.client.append(sampleRecord(100 + i))));
  t.same(Math.min(...acks.map((a) => a.seq)), 60);
  t.same((await s2.client.health()).mode, 'durable');
  await s2.stop();
  t.ok(readdirSync(join(dir, 'segments')).length > 3, 'rotated into several segments');
  const r1 = await verifyLog(dir, { publicKey: s1.publicKey });
  t.ok(r1.ok, JSON.stringify(r1.problems));
  t.equal(r1.records, 100);
  const seqs = readdirSync(join(dir, 'segments'))
    .flatMap((f) =>
      readFileSync(join(dir, 'segments', f), 'utf8')
        .trimEnd()
        .split('\n'),
    )
    .map((l) => JSON.parse(l).seq as number);
  t.same(
    seqs,
    Array.from({ length: 100 }, (_, i) => i),
  );
});

t.test('checkpoints come every N records and every T ms', async (t) => {
  const n = await startSink(t, { checkpointEvery: 10 });
  for (let i = 0; i < 25; i++) await n.client.append(sampleRecord(i));
  await n.stop();
  t.same(
    readdirSync(join(n.dir, 'checkpoints')),
    ['0000000000000010.note', '0000000000000020.note', '0000000000000025.note'],
    'every 10 records, and one at shutdown',
  );

  const s = await startSink(t, { checkpointEvery: 1_000_000, checkpointIntervalMs: 50 });
  await s.client.append(sampleRecord(0));
  // Checkpoints are written in the background (temp file, fsync, rename): wait for it, bounded.
  const notes = () => readdirSync(join(s.dir, 'checkpoints')).filter((f) => !f.startsWith('.'));
  for (const until = Date.now() + 5000; notes().length === 0 && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200)); // several more timer periods: no new records, so no new checkpoint
  t.same(notes(), ['0000000000000001.note'], 'timer checkpoint');
  await s.stop();
});
