#!/usr/bin/env node
// `npm start`: the main job. First the policy author's loop on the example policies (check them,
// run their tests), then `portcullis up`: the PDP, the audit sink and the egress proxy together
// with those policies, until Ctrl-C. Extra arguments go to `up` (npm start -- --listen 127.0.0.1:8080).
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
const policies = join('examples', 'policies');
for (const args of [
  ['check', policies],
  ['test', policies],
]) {
  console.log(`$ portcullis ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const upArgs = ['up', '--policy', policies, ...process.argv.slice(2)];
console.log(`$ portcullis ${upArgs.join(' ')}`);
const up = spawn(process.execPath, [bin, ...upArgs], { cwd: root, stdio: 'inherit' });
// Ctrl-C reaches `up` directly (same terminal process group); it stops its three daemons.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => up.kill(signal));
up.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
