// Envelope encryption holds: a changed ciphertext, wrapped key, KEK version, name, version or
// length in a vault row is refused (PCX_VAULT_DECRYPT_FAILED, nothing returned); a row moved to
// another row, another vault or another workspace does not decrypt there; the database never
// holds the value.
import t from 'tap';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { keyFileProvider } from '../src/keyfile.js';
import { openVault } from '../src/store.js';
import { bytes, codeOf, keyFileVault, tempDir, text } from './helpers.js';

const VALUE = 'pg://app:s3cr3t-value-for-tamper-tests@db/app';

type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

interface Row {
  version: number;
  length: number;
  kek_version: number;
  wrapped_key: Buffer;
  ciphertext: Buffer;
}

/** Store two secrets, change the row of "db/url" with `change` (given the other row too), read it back. */
async function tampered(t: TestT, change: (row: Row, other: Row) => void): Promise<string> {
  const v = await keyFileVault(t);
  await v.vault.put(v.kek, 'db/url', bytes(VALUE));
  await v.vault.put(v.kek, 'other', bytes('another-value-of-the-same-vault'));
  const db = new Database(v.file);
  const get = db.prepare('SELECT version, length, kek_version, wrapped_key, ciphertext FROM secrets WHERE name = ?');
  const row = get.get('db/url') as Row;
  change(row, get.get('other') as Row);
  db.prepare(
    'UPDATE secrets SET version = ?, length = ?, kek_version = ?, wrapped_key = ?, ciphertext = ? ' +
      "WHERE name = 'db/url'",
  ).run(row.version, row.length, row.kek_version, row.wrapped_key, row.ciphertext);
  db.close();
  return codeOf(() => v.vault.read(v.kek, 'db/url'));
}

t.test('an untouched secret reads back', async (t) => {
  const v = await keyFileVault(t);
  t.equal(await v.vault.put(v.kek, 'db/url', bytes(VALUE)), 1);
  t.equal(await v.vault.put(v.kek, 'db/url', bytes(`${VALUE}-2`)), 2);
  t.equal(text((await v.vault.read(v.kek, 'db/url', 1)).value), VALUE);
  t.equal(text((await v.vault.read(v.kek, 'db/url')).value), `${VALUE}-2`);
});

const TAMPERS: [string, (row: Row, other: Row) => void][] = [
  ['a flipped ciphertext bit', (r) => void (r.ciphertext[30]! ^= 1)],
  ['a flipped nonce bit', (r) => void (r.ciphertext[0]! ^= 0x80)],
  ['a flipped tag bit', (r) => void (r.ciphertext[r.ciphertext.length - 1]! ^= 1)],
  ['a flipped wrapped-key bit', (r) => void (r.wrapped_key[40]! ^= 4)],
  ['a changed KEK version', (r) => void (r.kek_version = 7)],
  ['a changed version number (associated data)', (r) => void (r.version = 2)],
  ['a changed length', (r) => void (r.length = 3)],
  [
    "another secret's ciphertext and key under this name (the name is bound)",
    (r, o) => Object.assign(r, { ciphertext: o.ciphertext, wrapped_key: o.wrapped_key, length: o.length }),
  ],
];

for (const [what, change] of TAMPERS) {
  t.test(`${what} is refused`, async (t) => {
    t.equal(await tampered(t, change), 'PCX_VAULT_DECRYPT_FAILED');
  });
}

t.test('a row copied into another vault sharing the key file does not decrypt there', async (t) => {
  const dir = tempDir(t);
  const a = await keyFileVault(t, 'alpha', dir);
  await a.vault.put(a.kek, 'db/url', bytes(VALUE));
  // A second vault of the same workspace name, made with the SAME key file.
  const { initVault } = await import('../src/store.js');
  const file2 = join(dir, 'copy', 'alpha.vault');
  await initVault({ file: file2, workspace: 'alpha', provider: keyFileProvider({ path: a.keyFile }) });
  const b = await openVault({ file: file2, workspace: 'alpha' });
  t.teardown(() => b.close());
  const kb = await b.unlock(keyFileProvider());
  t.teardown(() => kb.destroy());
  await b.put(kb, 'db/url', bytes('placeholder-value'));
  const src = new Database(a.file, { readonly: true });
  const row = src.prepare("SELECT wrapped_key, ciphertext, length FROM secrets WHERE name = 'db/url'").get() as {
    wrapped_key: Buffer;
    ciphertext: Buffer;
    length: number;
  };
  src.close();
  const dst = new Database(file2);
  dst
    .prepare("UPDATE secrets SET wrapped_key = ?, ciphertext = ?, length = ? WHERE name = 'db/url'")
    .run(row.wrapped_key, row.ciphertext, row.length);
  dst.close();
  t.equal(await codeOf(() => b.read(kb, 'db/url')), 'PCX_VAULT_DECRYPT_FAILED', 'the vault id is bound');
});

t.test("a vault file is refused for another workspace's name", async (t) => {
  const v = await keyFileVault(t);
  const other = join(v.dir, 'beta.vault');
  copyFileSync(v.file, other);
  t.equal(await codeOf(() => openVault({ file: other, workspace: 'beta' })), 'PCX_VAULT_WRONG_WORKSPACE');
});

t.test('a key from another vault is a bad credential, found before any secret is touched', async (t) => {
  const dir = tempDir(t);
  const a = await keyFileVault(t, 'alpha', dir);
  await keyFileVault(t, 'beta', dir);
  t.equal(
    await codeOf(() => a.vault.unlock(keyFileProvider({ override: join(dir, 'beta.kek') }))),
    'PCX_VAULT_BAD_CREDENTIAL',
  );
});

t.test('the database file never holds the value', async (t) => {
  const v = await keyFileVault(t);
  await v.vault.put(v.kek, 'db/url', bytes(VALUE));
  await v.vault.put(v.kek, 'db/url', bytes(VALUE));
  v.vault.delete('db/url', 1);
  v.vault.close();
  const raw = Buffer.concat([readFileSync(v.file)]);
  t.notOk(raw.includes(VALUE), 'no plaintext');
  t.notOk(raw.includes(Buffer.from(VALUE).toString('base64').slice(0, 20)), 'no base64 of it');
  t.notOk(raw.includes(readFileSync(v.keyFile).subarray(17, 81)), 'no KEK');
});
