#!/usr/bin/env node
// Runs every test (unit tests in packages/*/test, end-to-end tests in test/, the conformance
// corpus in dsl/) with tap, then prints the summary line CI reads: "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tap = join(root, 'node_modules', '.bin', 'tap');
const args = process.argv.slice(2);
const files = args.length > 0 ? args : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'dsl/**/*.test.ts'];

// A full run first checks what tap cannot: each check that fails prints its diagnostics and
// counts as one failed test in the summary line.
//  - Tests run straight from TypeScript through tsx, which strips types without checking them,
//    so the tests (and benchmarks) are type-checked.
//  - Biome: formatting and lint over the tree (`biome ci`, about a second; `npm run format` fixes most).
//  - No line of code over 120 characters (scripts/check-lines.mjs).
const checks = [
  ['type check', join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.check.json']],
  ['biome', join(root, 'node_modules', '.bin', 'biome'), ['ci', '--colors=off', '.']],
  ['line length', process.execPath, [join(root, 'scripts', 'check-lines.mjs')]],
];
let checkFailures = 0;
if (args.length === 0) {
  for (const [name, cmd, cmdArgs] of checks) {
    const r = spawnSync(cmd, cmdArgs, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) {
      const why = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `${r.error.message}\n` : ''}`;
      process.stdout.write(`# ${name} failed\n${why}`);
      checkFailures++;
    }
  }
}

const child = spawn(tap, ['--reporter=tap', ...files], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let summary = null;
let buf = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    // tap's own closing line, at the top level: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
    const m = /^# \{ total: (\d+)(.*)\}$/.exec(line);
    if (m) summary = Object.fromEntries([...m[2].matchAll(/(\w+): (\d+)/g)].map((x) => [x[1], Number(x[2])]));
  }
});
child.on('close', (code) => {
  const passed = summary?.pass ?? 0;
  // A run that ended without tap's summary (a crash) counts as one failure, never as green.
  const failed = (summary ? (summary.fail ?? 0) : 1) + checkFailures;
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
