#!/usr/bin/env node
// Runs benchmarks: `node bench/run.mjs [name ...]` runs bench/<name>/run.ts for each name given,
// or every bench/*/run.ts when none is given, one after another (never in parallel: they would
// measure each other). Each writes bench/results/<name>.json and .svg through bench/lib/report.ts.
// Exits non-zero if any benchmark failed or a named one does not exist.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(benchDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(benchDir, e.name, 'run.ts')))
  .map((e) => e.name)
  .sort();
const names = process.argv.slice(2);
for (const n of names) {
  if (!available.includes(n)) {
    console.error(`bench: no benchmark "${n}" (bench/${n}/run.ts); available: ${available.join(', ') || 'none'}`);
    process.exit(2);
  }
}
let failed = 0;
for (const name of names.length > 0 ? names : available) {
  console.log(`\n=== bench/${name} ===`);
  const started = Date.now();
  // --expose-gc lets a benchmark collect garbage between phases instead of inside a timed batch.
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--conditions=portcullis-source', '--import', 'tsx', join(benchDir, name, 'run.ts')],
    {
      cwd: join(benchDir, '..'),
      stdio: 'inherit',
    },
  );
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed++;
    console.error(`bench/${name} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}) after ${secs} s`);
  } else console.log(`bench/${name} done in ${secs} s`);
}
process.exit(failed > 0 ? 1 : 0);
