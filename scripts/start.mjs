#!/usr/bin/env node
// `npm start`: the main job. For now, the policy author's loop on the example policies:
// check them, then run their tests. It grows into `portcullis up` (PDP + audit + egress).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
const policies = join('examples', 'policies');
for (const args of [['check', policies], ['test', policies]]) {
  console.log(`$ portcullis ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
