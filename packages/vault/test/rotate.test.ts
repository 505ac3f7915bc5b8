// rotate-kek: every secret stays readable across rotations, the retired KEK no longer works,
// and a rotation killed with SIGKILL at random points leaves every secret readable with the
// old KEK or the new one, never neither (one SQLite transaction; the new key file is on disk
// before the commit names it).
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyFileProvider } from '../src/keyfile.js';
import { initVault, openVault } from '../src/store.js';
import { bytes, codeOf, keyFileVault, tempDir, text } from './helpers.js';

const value = (i: number) => `secret-value-number-${i}-${'x'.repeat(i % 50)}`;

t.test('rotation rewraps every data key and retires the old KEK', async (t) => {
  const v = await keyFileVault(t);
  for (let i = 0; i < 50; i++) await v.vault.put(v.kek, `s${i}`, bytes(value(i)));
  const r = await v.vault.rotateKek(v.kek, keyFileProvider({ path: join(v.dir, 'kek-2') }));
  t.same(r, { from: 1, to: 2, rewrapped: 50 });
  t.same(
    v.vault.keks().map((k) => [k.version, k.state]),
    [
      [1, 'retired'],
      [2, 'active'],
    ],
  );
  t.equal(await codeOf(() => v.vault.read(v.kek, 's1')), 'PCX_VAULT_LOCKED', 'the retired KEK is refused');
  const kek2 = await v.vault.unlock(keyFileProvider());
  t.teardown(() => kek2.destroy());
  for (let i = 0; i < 50; i++) t.equal(text((await v.vault.read(kek2, `s${i}`)).value), value(i));
  t.equal((await v.vault.fingerprintKey(kek2)).length, 32, 'the fingerprint key was rewrapped too');
});

t.test('a rotate-kek killed at random points leaves every secret readable', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'alpha.vault');
  await initVault({ file, workspace: 'alpha', provider: keyFileProvider({ path: join(dir, 'kek-1') }) });
  const setup = await openVault({ file, workspace: 'alpha' });
  const k = await setup.unlock(keyFileProvider());
  const N = 300;
  for (let i = 0; i < N; i++) await setup.put(k, `s${i}`, bytes(value(i)));
  k.destroy();
  setup.close();
  const script = fileURLToPath(new URL('./rotate-loop.ts', import.meta.url));
  let lastActive = 1;
  for (let round = 0; round < 4; round++) {
    const child = spawn(process.execPath, ['--conditions=portcullis-source', '--import', 'tsx', script, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    // Kill after a random number (0-3) of completed rotations plus a random delay into the next.
    const after = Math.floor(Math.random() * 4);
    await new Promise<void>((resolve) => {
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const done = (out.match(/rotated/g) ?? []).length;
        if (out.includes('ready') && done >= after) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, Math.random() * 40));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const vault = await openVault({ file, workspace: 'alpha' });
    try {
      const active = vault.activeKek().version;
      t.ok(active >= lastActive, `round ${round}: active KEK version ${active} (${after} rotations completed)`);
      lastActive = active;
      const kek = await vault.unlock(keyFileProvider());
      try {
        const all = await vault.readAll(kek);
        t.equal(all.length, N, 'every secret decrypts');
        t.ok(
          all.every((s) => text(s.value) === value(Number(s.name.slice(1)))),
          'with its own value',
        );
        t.equal(vault.keks().filter((x) => x.state === 'active').length, 1, 'exactly one active KEK');
      } finally {
        kek.destroy();
      }
    } finally {
      vault.close();
    }
  }
});
