#!/usr/bin/env node
// Runs every test (unit tests in packages/*/test, end-to-end tests in test/, the conformance
// corpus in dsl/) with tap, then prints the summary line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tap = join(root, 'node_modules', '.bin', 'tap');
const args = process.argv.slice(2);
const files = args.length > 0 ? args : ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'dsl/**/*.test.ts'];

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
  const failed = summary ? (summary.fail ?? 0) : 1;
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
