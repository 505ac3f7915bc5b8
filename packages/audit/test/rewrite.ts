// Test helper: what someone who can write the log files (but not sign) does to rewrite history.
// Swaps two records and recomputes seq, prev and hash of every record from the first of them on,
// so that each record and the chain check out again. Computed with protocol's canonicalize and
// node:crypto directly (the definition in the README), not with the writer's encoder.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize } from '@portcullis/protocol';

export function swapRecords(dir: string, a: number, b: number): void {
  const segDir = join(dir, 'segments');
  const files = readdirSync(segDir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  const perFile = files.map((f) => readFileSync(join(segDir, f), 'utf8').split('\n').slice(0, -1));
  const records = perFile.flat().map((l) => JSON.parse(l) as Record<string, unknown>);
  [records[a], records[b]] = [records[b]!, records[a]!];
  let prev = a === 0 ? '0'.repeat(64) : (records[a - 1]!.hash as string);
  const lines = records.map((r, seq) => {
    if (seq < Math.min(a, b)) return canonicalize(r);
    const { hash: _old, ...rest } = r;
    const body = { ...rest, seq, prev };
    const hash = createHash('sha256').update(canonicalize(body)).digest('hex');
    prev = hash;
    return canonicalize({ ...body, hash });
  });
  let i = 0;
  files.forEach((f, k) => {
    const n = perFile[k]!.length;
    writeFileSync(join(segDir, f), lines.slice(i, i + n).join('\n') + (n > 0 ? '\n' : ''));
    i += n;
  });
}
