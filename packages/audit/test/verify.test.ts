import t from 'tap';
import {
  cpSync,
  readFileSync,
  readdirSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../src/log.js';
import { createHash } from 'node:crypto';
import { encodeRecord, hashInputOf } from '../src/format.js';
import { verifyLog, readRecords } from '../src/verify.js';
import { checkInclusionProof, proveInclusion } from '../src/proof.js';
import { parseVerifierKey } from '../src/note.js';
import { openIndex, queryIndex } from '../src/index-db.js';
import { replay } from '../src/replay.js';
import { newKey, sampleRecord, tempDir } from './helpers.js';

const root = tempDir(t);
const { key, publicKey } = await newKey('verify-test');
const pristine = join(root, 'pristine');
{
  const log = await AuditLog.open({ dir: pristine, key, checkpointEvery: 10, origin: 'test.example/log-a' });
  for (let i = 0; i < 50; i++)
    await log.append({ ...sampleRecord(i), time: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() });
  await log.close();
}
let copies = 0;
function copy(): string {
  const d = join(root, `copy${copies++}`);
  cpSync(pristine, d, { recursive: true });
  return d;
}
const seg = (d: string) => join(d, 'segments', '000001.log');
const lines = (d: string) => readFileSync(seg(d), 'utf8').trimEnd().split('\n');
const write = (d: string, ls: string[]) => writeFileSync(seg(d), ls.join('\n') + '\n');

async function expectProblem(t: TestT, d: string, want: { seq?: number; where?: RegExp; message: RegExp }) {
  const r = await verifyLog(d, { publicKey });
  t.notOk(r.ok, 'detected');
  const p = r.problems[0];
  t.ok(p, 'reports a problem');
  if (!p) return;
  if (want.seq !== undefined) t.equal(p.seq, want.seq, `first bad record: ${p.message}`);
  if (want.where) t.match(p.where, want.where);
  t.match(p.message, want.message);
}
type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('the pristine log verifies', async (t) => {
  const r = await verifyLog(pristine, { publicKey });
  t.ok(r.ok, JSON.stringify(r.problems));
  t.equal(r.records, 50);
  t.equal(r.checkpoints, 5);
  t.equal(r.latest?.size, 50);
  t.same(r.warnings, []);
});

t.test('edit a record', async (t) => {
  const d = copy();
  const ls = lines(d);
  ls[17] = ls[17]!.replace('"decision":"allow"', '"decision":"deny"');
  write(d, ls);
  await expectProblem(t, d, { seq: 17, where: /000001\.log:18$/, message: /hash does not match its content/ });
});

t.test('edit a record and rewrite the whole chain after it', async (t) => {
  const d = copy();
  const recs = [...readRecords(d)];
  let prev = recs[23]!.prev;
  const out: string[] = [];
  for (const r of recs) {
    if (r.seq < 23) {
      out.push(encodeRecord(withoutHash(r)).line);
      continue;
    }
    const { hash: _h, ...rest } = r;
    const edited = r.seq === 23 ? { ...rest, decision: 'deny' as const, prev } : { ...rest, prev };
    const enc = encodeRecord(edited);
    out.push(enc.line);
    prev = enc.hash;
  }
  write(d, out);
  await expectProblem(t, d, { where: /0000000000000030\.note/, message: /between seq 20 and 29 was changed/ });
});

function withoutHash<T extends { hash: string }>(r: T): Omit<T, 'hash'> {
  const { hash: _h, ...rest } = r;
  return rest;
}

t.test('delete a record', async (t) => {
  const d = copy();
  const ls = lines(d);
  ls.splice(31, 1);
  write(d, ls);
  await expectProblem(t, d, { seq: 31, message: /expected seq 31, found seq 32: records 31\.\.31 are missing/ });
});

t.test('reorder two records', async (t) => {
  const d = copy();
  const ls = lines(d);
  [ls[5], ls[6]] = [ls[6]!, ls[5]!];
  write(d, ls);
  await expectProblem(t, d, { seq: 5, message: /expected seq 5, found seq 6/ });
});

t.test('insert a record (a duplicate)', async (t) => {
  const d = copy();
  const ls = lines(d);
  ls.splice(12, 0, ls[11]!);
  write(d, ls);
  await expectProblem(t, d, { seq: 12, message: /expected seq 12, found seq 11: a record was inserted/ });
});

t.test('truncate the log', async (t) => {
  const d = copy();
  write(d, lines(d).slice(0, 36));
  await expectProblem(t, d, {
    where: /0000000000000040\.note/,
    message: /covers 40 records but the log has only 36: records 36\.\.39 were removed/,
  });
  // A cut in the middle of a line is a torn tail: reported as a warning, and not counted.
  const e = copy();
  truncateSync(seg(e), readFileSync(seg(e)).length - 7);
  const r = await verifyLog(e, { publicKey });
  t.match(r.warnings.join('\n'), /last line is incomplete/);
  t.match(r.problems[0]?.message, /covers 50 records but the log has only 49/);
});

t.test('forge a checkpoint', async (t) => {
  const d = copy();
  const f = join(d, 'checkpoints', '0000000000000020.note');
  const note = readFileSync(f, 'utf8').split('\n');
  note[2] = Buffer.alloc(32, 7).toString('base64');
  writeFileSync(f, note.join('\n'));
  await expectProblem(t, d, {
    where: /0000000000000020\.note/,
    message: /does not verify \(the checkpoint was altered or forged\)/,
  });
  // Signed by a key that is not the log's.
  const e = copy();
  const other = await newKey('verify-test');
  const { signCheckpoint } = await import('../src/note.js');
  writeFileSync(
    join(e, 'checkpoints', '0000000000000020.note'),
    await signCheckpoint({ origin: 'test.example/log-a', size: 20, root: Buffer.alloc(32) }, other.key),
  );
  await expectProblem(t, e, { where: /0000000000000020\.note/, message: /no signature by key verify-test/ });
});

t.test('replay a checkpoint: an old one under a new name, or one from another log', async (t) => {
  const d = copy();
  const ck = join(d, 'checkpoints');
  unlinkSync(join(ck, '0000000000000050.note'));
  cpSync(join(ck, '0000000000000040.note'), join(ck, '0000000000000050.note'));
  await expectProblem(t, d, {
    where: /0000000000000050\.note/,
    message: /says tree size 40, but its file name says 50/,
  });
  // Another log signed by the same key: a genuine signature, but not this log's origin.
  const other = join(root, 'other');
  const log = await AuditLog.open({ dir: other, key, checkpointEvery: 10, origin: 'test.example/log-b' });
  for (let i = 0; i < 10; i++) await log.append(sampleRecord(i + 1000));
  await log.close();
  const e = copy();
  cpSync(join(other, 'checkpoints', '0000000000000010.note'), join(e, 'checkpoints', '0000000000000010.note'));
  await expectProblem(t, e, {
    where: /0000000000000010\.note/,
    message: /origin "test\.example\/log-b" is not this log's origin/,
  });
});

t.test('the sink refuses to append to a log that lost checkpointed records, and repairs a torn tail', async (t) => {
  const d = copy();
  write(d, lines(d).slice(0, 45));
  await t.rejects(AuditLog.open({ dir: d, key }), {
    code: 'PCX_AUDIT_LOG_CORRUPT',
    message: /45 records but a checkpoint covers 50/,
  });
  const e = copy();
  appendFileSync(seg(e), '{"action":"http.req');
  const messages: string[] = [];
  const log = await AuditLog.open({ dir: e, key, log: (m) => messages.push(m) });
  t.match(messages.join(), /repaired a torn last line .* cut 19 bytes/);
  t.equal((await log.append(sampleRecord(50))).seq, 50);
  await log.close();
  t.ok((await verifyLog(e, { publicKey })).ok);
});

t.test('inclusion proofs: prove, verify offline, reject tampering', async (t) => {
  const vk = parseVerifierKey(publicKey);
  const proof = await proveInclusion(pristine, 37, vk);
  t.equal(proof.tree_size, 50);
  t.equal(proof.record, lines(pristine)[37]);
  const origin = 'test.example/log-a';
  t.equal(await checkInclusionProof(JSON.parse(JSON.stringify(proof)), vk, origin), null);
  t.match(
    await checkInclusionProof({ ...proof, record: proof.record.replace('"allow"', '"deny"') }, vk, origin),
    /hash does not match|not included/,
  );
  t.match(await checkInclusionProof({ ...proof, proof: proof.proof.slice(1) }, vk, origin), /not included/);
  t.match(await checkInclusionProof({ ...proof, seq: 36 }, vk, origin), /record says seq 37/);
  t.match(
    await checkInclusionProof({ ...proof, checkpoint: proof.checkpoint.replace('\n50\n', '\n51\n') }, vk, origin),
    /does not verify/,
  );
  t.match(await checkInclusionProof({ nope: 1 }, vk, origin), /not an inclusion proof/);
  // The same key signs another log: its proofs are genuine, but not proofs of this log.
  t.match(
    await checkInclusionProof(proof, vk, 'test.example/log-b'),
    /the proof is from the log "test\.example\/log-a", not from "test\.example\/log-b"/,
  );
  await t.rejects(proveInclusion(pristine, 50, vk), { code: 'PCX_AUDIT_NOT_COVERED' });
});

t.test('query over the sqlite index: filters, incremental catch-up, rebuild', async (t) => {
  const d = copy();
  let { db, update } = openIndex(d);
  t.same(update, { added: 50, rebuilt: false });
  const seqs = (f: Parameters<typeof queryIndex>[1]) => queryIndex(db, f).map((l) => JSON.parse(l).seq as number);
  const all = [...readRecords(d)];
  t.same(
    seqs({ principal: 'agent-1' }),
    all.filter((r) => r.principal.id === 'agent-1').map((r) => r.seq),
  );
  t.same(
    seqs({ decision: 'deny', action: 'http.request' }),
    all.filter((r) => r.decision === 'deny' && r.action === 'http.request').map((r) => r.seq),
  );
  t.same(seqs({ since: '2026-01-01T00:10:00Z', until: '2026-01-01T00:13:00Z' }), [10, 11, 12]);
  t.same(seqs({ limit: 3 }), [47, 48, 49], 'the most recent, in log order');
  db.close();
  const log = await AuditLog.open({ dir: d, key });
  await log.append(sampleRecord(1));
  await log.close();
  ({ db, update } = openIndex(d));
  t.same(update, { added: 1, rebuilt: false }, 'caught up incrementally');
  db.close();
  // The log changed under the index (here: replaced by another log): detected and rebuilt.
  cpSync(seg(pristine), seg(d));
  ({ db, update } = openIndex(d));
  t.same(update, { added: 50, rebuilt: true });
  t.equal(queryIndex(db, {}).length, 50);
  db.close();
});

t.test('replay lists exactly the decisions a new policy would change', async (t) => {
  // A stand-in evaluator (the CLI wires in the real policy compiler): deny everything on fs.read.
  const seen: unknown[] = [];
  const records = [...readRecords(pristine)];
  records[3]!.context = { ...records[3]!.context, leases: ['lease-1'] };
  const r = replay(records, (req) => {
    seen.push(req);
    return { decision: req.action === 'fs.read' ? 'deny' : 'allow', reasons: [{ effect: 'allow', rule: 'x' }] };
  });
  t.equal(r.total, 50);
  const expected = records.filter((x) => x.decision !== (x.action === 'fs.read' ? 'deny' : 'allow')).map((x) => x.seq);
  t.same(
    r.differences.map((x) => x.seq),
    expected,
  );
  t.ok(expected.length > 5);
  t.notOk(JSON.stringify(seen).includes('"leases"'), 'lease ids are not replayed');
  t.same(Object.keys(seen[0] as object).sort(), ['action', 'context', 'principal', 'resource']);
});

t.test('a missing segment and an unknown file are reported', async (t) => {
  const d = copy();
  renameSync(seg(d), join(d, 'segments', '000002.log'));
  await expectProblem(t, d, { message: /segment 000001\.log is missing/ });
  t.ok(readdirSync(join(d, 'segments')).length === 1);
});

t.test(
  'lines that are valid JSON with a correct textual hash but not canonical are refused (verifier fast path)',
  async (t) => {
    const rehash = (line: string): string => {
      const old = /"hash":"([0-9a-f]{64})"/.exec(line)![1]!;
      return line.replace(old, createHash('sha256').update(hashInputOf(line, old)!).digest('hex'));
    };
    const variants: [string, (l: string) => string][] = [
      ['whitespace', (l) => l.replace('"decision":', '"decision": ')],
      ['a number not in ECMAScript form', (l) => l.replace('"status":200', '"status":2e2')],
      [
        'members out of order',
        (l) => l.replace(/"host":"api\.example\.com","path":"([^"]*)"/, '"path":"$1","host":"api.example.com"'),
      ],
      ['a duplicate member', (l) => l.replace('"status":200', '"status":200,"status":200')],
    ];
    for (const [name, edit] of variants) {
      const d = copy();
      const ls = lines(d);
      const edited = rehash(edit(ls[20]!));
      t.not(edited, ls[20], `${name}: the edit applies`);
      ls[20] = edited;
      write(d, ls);
      await expectProblem(t, d, { seq: 20, where: /000001\.log:21$/, message: /not in canonical form/ });
    }
  },
);

t.test(
  'records with non-ASCII text, escapes and long lines verify (reference path) and chain with fast-path ones',
  async (t) => {
    const d = join(root, 'unicode');
    const log = await AuditLog.open({ dir: d, key, checkpointEvery: 3 });
    const odd = ['café ☕ 𝄞', 'quote " and backslash \\', 'tab\tand\u0001control', 'x'.repeat(5 << 20)];
    for (let i = 0; i < 8; i++)
      await log.append({ ...sampleRecord(i), resource: { path: i % 2 === 0 ? odd[i / 2]! : `/plain/${i}` } });
    await log.close();
    const r = await verifyLog(d, { publicKey });
    t.ok(r.ok, JSON.stringify(r.problems));
    t.equal(r.records, 8);
    const ls = readFileSync(seg(d), 'utf8').trimEnd().split('\n');
    ls[2] = ls[2]!.replace('\\\\', '\\u005c');
    writeFileSync(seg(d), ls.join('\n') + '\n');
    const bad = await verifyLog(d, { publicKey });
    t.equal(bad.problems[0]?.seq, 2, 'an escape edited in a non-ASCII line is found');
  },
);

t.test('verify checks the bytes: invalid UTF-8 in a line is refused with its seq, signed or not', async (t) => {
  // Records 50 and 51 come after the last checkpoint: nothing signed covers them, so only the
  // record check itself can see that a line's bytes changed.
  const d = copy();
  const log = await AuditLog.open({ dir: d, key, checkpointEvery: 1000 });
  await log.append({ ...sampleRecord(50), resource: { name: 'caf\uFFFD', path: '/ü' } });
  await log.append(sampleRecord(51));
  await log.close();
  unlinkSync(join(d, 'checkpoints', '0000000000000052.note'));
  t.ok((await verifyLog(d, { publicKey })).ok, 'the untouched log verifies');
  const bytes = readFileSync(seg(d));
  const replacement = Buffer.from('\uFFFD');
  for (const [name, bad] of [
    ['a lone 0xFF', Buffer.from([0xff])],
    ['an encoded surrogate (CESU-8)', Buffer.from([0xed, 0xbf, 0xbf])],
    ['an overlong encoding', Buffer.from([0xc0, 0xbf])],
  ] as const) {
    // Each decodes to U+FFFD, so the decoded text (and a hash over it) is unchanged.
    t.equal(bad.toString('utf8').replaceAll('\uFFFD', ''), '', `${name} decodes to U+FFFD only`);
    const at = bytes.indexOf(replacement);
    writeFileSync(seg(d), Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at + replacement.length)]));
    await expectProblem(t, d, { seq: 50, where: /000001\.log:51$/, message: /record 50 is not valid UTF-8/ });
  }
  // Within checkpoints as well: the record is named, not only the checkpoint.
  const e = copy();
  const ls = readFileSync(seg(e));
  const at = ls.indexOf('"fsgate"', ls.indexOf('"seq":7,'));
  t.ok(at > 0);
  writeFileSync(seg(e), Buffer.concat([ls.subarray(0, at + 2), Buffer.from([0xe9]), ls.subarray(at + 2)]));
  await expectProblem(t, e, { seq: 7, message: /record 7 is not valid UTF-8/ });
});
