#!/usr/bin/env node
// Fails, listing file:line, on any line over 120 characters in the repository's code files
// (.ts .mjs .js .cjs .peggy; generated code excluded). The formatter wraps code at 120 but not
// comments or long strings; those are wrapped by hand. Run by `npm test`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX = 120;
const CODE = /\.(ts|mjs|js|cjs|peggy)$/;
const EXCLUDED = ['packages/policy/src/generated/'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Tracked files and new ones not ignored: a file is checked before its first commit too.
const git = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
  cwd: root,
  encoding: 'utf8',
});
if (git.status !== 0) {
  console.error(`check-lines: git ls-files failed: ${git.stderr || git.error?.message}`);
  process.exit(2);
}
const files = [...new Set(git.stdout.split('\0'))]
  .filter((f) => CODE.test(f) && !EXCLUDED.some((p) => f.startsWith(p)))
  .sort();

const long = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch {
    continue; // listed by git but deleted in the work tree
  }
  text.split('\n').forEach((line, i) => {
    // Characters, not UTF-16 units: "…" and "→" count once.
    const length = [...line].length;
    if (length > MAX) long.push(`${file}:${i + 1}: ${length} characters`);
  });
}
if (long.length > 0) {
  console.log(`${long.join('\n')}\n${long.length} line(s) over ${MAX} characters; wrap them`);
  process.exit(1);
}
