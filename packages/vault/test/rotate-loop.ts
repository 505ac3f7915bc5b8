// Child process of rotate.test.ts: rotates the KEK of the vault in argv[2] (workspace "alpha")
// again and again, each time to a new key file kek-<n> beside it, printing "rotated <n>" after
// each commit, until it is killed (with SIGKILL, at a random point).
import { join, dirname } from 'node:path';
import { keyFileProvider } from '../src/keyfile.js';
import { openVault } from '../src/store.js';

const file = process.argv[2]!;
const vault = await openVault({ file, workspace: 'alpha' });
process.stdout.write('ready\n');
for (let n = 2; ; n++) {
  const kek = await vault.unlock(keyFileProvider());
  const r = await vault.rotateKek(kek, keyFileProvider({ path: join(dirname(file), `kek-${n}`) }));
  kek.destroy();
  process.stdout.write(`rotated ${r.to}\n`);
}
