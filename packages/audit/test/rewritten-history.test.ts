// A log rewritten under its checkpoints (two records swapped, every seq/prev/hash recomputed so
// that the chain is valid again): the sink refuses to continue it, and `verify --against` catches
// it with a checkpoint kept elsewhere even when the rewriter deleted every checkpoint in the log.
import t from 'tap';
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../src/log.js';
import { verifyLog } from '../src/verify.js';
import { newKey, sampleRecord, tempDir } from './helpers.js';
import { swapRecords } from './rewrite.js';

const root = tempDir(t);
const { key, publicKey } = await newKey('rewrite-test');
const pristine = join(root, 'pristine');
{
  const log = await AuditLog.open({ dir: pristine, key, checkpointEvery: 10, origin: 'test.example/rewrite' });
  for (let i = 0; i < 25; i++) await log.append(sampleRecord(i));
  await log.close(); // final checkpoint at 25
}
let n = 0;
function copy(): string {
  const d = join(root, `copy${n++}`);
  cpSync(pristine, d, { recursive: true });
  return d;
}
const note = (d: string, size: number) =>
  readFileSync(join(d, 'checkpoints', `${String(size).padStart(16, '0')}.note`), 'utf8');

t.test('the rewritten chain is valid record by record, so only the checkpoints can tell', async (t) => {
  const d = copy();
  swapRecords(d, 12, 13);
  rmSync(join(d, 'checkpoints'), { recursive: true });
  const r = await verifyLog(d, { publicKey });
  t.ok(r.ok, 'without checkpoints the rewrite is invisible (what the README says)');
});

t.test('a restarted sink refuses to sign over records rewritten under its latest checkpoint', async (t) => {
  const d = copy();
  swapRecords(d, 12, 13);
  await t.rejects(AuditLog.open({ dir: d, key }), {
    code: 'PCX_AUDIT_HISTORY_REWRITTEN',
    message:
      /records 0\.\.24 .* do not hash to the root that its checkpoint checkpoints\/0000000000000025\.note signed/,
  });
  // It wrote nothing: no new checkpoint, the lock released (a second try says the same).
  t.same(readdirSync(join(d, 'checkpoints')).sort(), readdirSync(join(pristine, 'checkpoints')).sort());
  await t.rejects(AuditLog.open({ dir: d, key }), { code: 'PCX_AUDIT_HISTORY_REWRITTEN' });
  // A rewrite after the latest checkpoint is not covered by any signature: the sink continues.
  const e = copy();
  {
    const log = await AuditLog.open({ dir: e, key, checkpointEvery: 1000 });
    for (let i = 25; i < 30; i++) await log.append(sampleRecord(i));
    await log.checkpoint(); // at 30
    for (let i = 30; i < 34; i++) await log.append(sampleRecord(i));
    // close() writes a final checkpoint; drop it to leave records 30..33 unsigned
    await log.close();
  }
  rmSync(join(e, 'checkpoints', '0000000000000034.note'));
  swapRecords(e, 31, 32);
  const log = await AuditLog.open({ dir: e, key });
  t.equal((await log.append(sampleRecord(34))).seq, 34);
  await log.close();
});

t.test('the latest checkpoint must carry the sink key’s valid signature and this log’s origin', async (t) => {
  const d = copy();
  const other = await newKey('rewrite-test');
  await t.rejects(AuditLog.open({ dir: d, key: other.key }), {
    code: 'PCX_AUDIT_BAD_CHECKPOINT',
    message: /latest checkpoint checkpoints\/0000000000000025\.note .* cannot be trusted: no signature by key/,
  });
  const e = copy();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(e, 'origin'), 'test.example/another\n');
  await t.rejects(AuditLog.open({ dir: e, key }), {
    code: 'PCX_AUDIT_BAD_CHECKPOINT',
    message: /its origin "test\.example\/rewrite" is not this log's origin "test\.example\/another"/,
  });
});

t.test('verify --against: a checkpoint kept elsewhere catches a rewrite whose checkpoints were deleted', async (t) => {
  const kept = [
    { name: 'offsite/20.note', note: note(pristine, 20) },
    { name: 'offsite/25.note', note: note(pristine, 25) },
  ];
  const clean = await verifyLog(pristine, { publicKey, against: kept });
  t.ok(clean.ok, JSON.stringify(clean.problems));
  t.equal(clean.kept, 2);

  const d = copy();
  swapRecords(d, 12, 13);
  rmSync(join(d, 'checkpoints'), { recursive: true });
  const r = await verifyLog(d, { publicKey, against: kept });
  t.notOk(r.ok);
  t.equal(r.kept, 0);
  t.same(
    r.problems.map((p) => p.where),
    ['kept checkpoint offsite/20.note', 'kept checkpoint offsite/25.note'],
  );
  t.match(r.problems[0]!.message, /signed root does not match records 0\.\.19: a record between seq 0 and 19/);

  // A kept checkpoint beyond the end of the log: records were removed.
  const e = copy();
  const { truncateSync } = await import('node:fs');
  const seg = join(e, 'segments', '000001.log');
  const lines = readFileSync(seg, 'utf8').split('\n');
  truncateSync(seg, Buffer.byteLength(lines.slice(0, 18).join('\n') + '\n'));
  rmSync(join(e, 'checkpoints'), { recursive: true });
  const cut = await verifyLog(e, { publicKey, against: kept });
  t.match(cut.problems[0], {
    where: 'kept checkpoint offsite/20.note',
    message: /covers 20 records but the log has only 18/,
  });

  // A kept checkpoint of another log, or a forged one, is a problem too (never silently ignored).
  const forged = { name: 'x.note', note: note(pristine, 20).replace('\n20\n', '\n21\n') };
  const f = await verifyLog(pristine, { publicKey, against: [forged] });
  t.match(f.problems[0], { where: 'kept checkpoint x.note', message: /does not verify/ });
  const foreign = join(root, 'foreign');
  const log = await AuditLog.open({ dir: foreign, key, checkpointEvery: 5, origin: 'test.example/foreign' });
  for (let i = 0; i < 5; i++) await log.append(sampleRecord(i));
  await log.close();
  const g = await verifyLog(pristine, { publicKey, against: [{ name: 'y.note', note: note(foreign, 5) }] });
  t.match(g.problems[0], { where: 'kept checkpoint y.note', message: /origin "test\.example\/foreign" is not this/ });
});
