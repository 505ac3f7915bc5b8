// The PKCS#11 KEK against a real SoftHSM2 token (Debian package softhsm2; skipped with a
// printed reason when softhsm2-util is missing): the KEK is a non-extractable AES-256 key in
// the token, data keys are wrapped by the token, a wrong PIN is a bad credential, a tampered
// wrapped key is refused, and rotation makes a new token key and keeps every secret readable.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pkcs11js from 'pkcs11js';
import { destroyPkcs11Key, pkcs11Provider } from '../src/pkcs11.js';
import { initVault, openVault } from '../src/store.js';
import { bytes, codeOf, tempDir, text } from './helpers.js';
import { missingTools, SOFTHSM2_MODULES } from '../../../test/helpers/tools.js';

const module = SOFTHSM2_MODULES.find((m) => existsSync(m))!;
const missing = missingTools('softhsm2');

if (missing) {
  t.plan(0, missing);
} else {
  const dir = tempDir(t, 'pcx-vault-hsm-');
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\n`,
  );
  // Read by the library at C_Initialize, which happens in this process on first use.
  process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
  const init = spawnSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', 'pcx-test', '--pin', '123456', '--so-pin', '654321'],
    { encoding: 'utf8', env: process.env },
  );
  if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}`);
  const PIN = bytes('123456');

  t.test('a vault whose KEK lives in the token', async (t) => {
    const file = join(dir, 'alpha.vault');
    await initVault({ file, workspace: 'alpha', provider: pkcs11Provider({ pin: PIN, module, token: 'pcx-test' }) });
    const vault = await openVault({ file, workspace: 'alpha' });
    t.teardown(() => vault.close());
    const params = vault.activeKek().params;
    t.equal(params.provider, 'pkcs11');
    t.match(params, { token: 'pcx-test', label: `portcullis-vault/${vault.vaultId}/v1` });

    t.equal(
      await codeOf(() => vault.unlock(pkcs11Provider({ pin: bytes('000000') }))),
      'PCX_VAULT_BAD_CREDENTIAL',
      'a wrong PIN',
    );
    const kek = await vault.unlock(pkcs11Provider({ pin: PIN }));
    await vault.put(kek, 'db/password', bytes('hsm-protected-value-0001'));
    t.equal(text((await vault.read(kek, 'db/password')).value), 'hsm-protected-value-0001');

    // The key object is sensitive and not extractable: the token will not hand out its bytes.
    const p = new pkcs11js.PKCS11();
    p.load(module);
    try {
      p.C_Initialize();
    } catch (e) {
      if (!String((e as Error).message).startsWith('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw e;
    }
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === 'pcx-test')!;
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      p.C_Login(session, pkcs11js.CKU_USER, '123456');
    } catch (e) {
      // The vault's own session logged the token in already (login state is per token).
      if ((e as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw e;
    }
    p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: `portcullis-vault/${vault.vaultId}/v1` }]);
    const obj = p.C_FindObjects(session)!;
    p.C_FindObjectsFinal(session);
    const [ext, sens] = p.C_GetAttributeValue(session, obj, [
      { type: pkcs11js.CKA_EXTRACTABLE },
      { type: pkcs11js.CKA_SENSITIVE },
    ]);
    t.same([ext!.value, sens!.value], [Buffer.of(0), Buffer.of(1)], 'CKA_EXTRACTABLE false, CKA_SENSITIVE true');
    t.throws(() => p.C_GetAttributeValue(session, obj, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
    p.C_CloseSession(session);
    const db = new Database(file);
    const wrapped = (db.prepare('SELECT wrapped_key FROM secrets').get() as { wrapped_key: Buffer }).wrapped_key;
    t.equal(wrapped.length, 12 + 32 + 16, 'AES-GCM: IV, wrapped key, tag');
    wrapped[20]! ^= 1;
    db.prepare('UPDATE secrets SET wrapped_key = ?').run(wrapped);
    db.close();
    t.equal(await codeOf(() => vault.read(kek, 'db/password')), 'PCX_VAULT_DECRYPT_FAILED', 'a tampered wrap');
    wrapped[20]! ^= 1;
    const db2 = new Database(file);
    db2.prepare('UPDATE secrets SET wrapped_key = ?').run(wrapped);
    db2.close();

    const r = await vault.rotateKek(kek, pkcs11Provider({ pin: PIN, module, token: 'pcx-test' }));
    t.same(r, { from: 1, to: 2, rewrapped: 1 });
    kek.destroy();
    const old = vault.keks()[0]!.params;
    if (old.provider !== 'pkcs11') throw new Error('expected PKCS#11 parameters');
    destroyPkcs11Key(old, PIN);
    const kek2 = await vault.unlock(pkcs11Provider({ pin: PIN }));
    t.teardown(() => kek2.destroy());
    t.equal(text((await vault.read(kek2, 'db/password')).value), 'hsm-protected-value-0001', 'after rotation');
    t.equal(
      await codeOf(() => pkcs11Provider({ pin: PIN }).open(old, vault.binding(1))),
      'PCX_VAULT_PKCS11',
      'the retired key is gone from the token',
    );
  });

  t.test('a missing token or module is a clear PCX_VAULT_PKCS11 error', async (t) => {
    const file = join(dir, 'beta.vault');
    t.equal(
      await codeOf(() =>
        initVault({ file, workspace: 'beta', provider: pkcs11Provider({ pin: PIN, module, token: 'no-such-token' }) }),
      ),
      'PCX_VAULT_PKCS11',
    );
    t.notOk(existsSync(file), 'a failed init leaves no vault');
    t.equal(
      await codeOf(() =>
        initVault({
          file,
          workspace: 'beta',
          provider: pkcs11Provider({ pin: PIN, module: join(dir, 'nope.so'), token: 'pcx-test' }),
        }),
      ),
      'PCX_VAULT_PKCS11',
    );
  });
}
