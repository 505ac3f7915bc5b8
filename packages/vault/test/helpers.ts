// Shared by the vault tests: temp dirs and a key-file vault ready to use (the fastest KEK; the
// passphrase and PKCS#11 providers have tests of their own).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFileProvider } from '../src/keyfile.js';
import type { Kek } from '../src/kek.js';
import { initVault, openVault, type Vault } from '../src/store.js';

export interface TestContext {
  teardown(fn: () => unknown): void;
}

export function tempDir(t: TestContext, prefix = 'pcx-vault-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestVault {
  dir: string;
  file: string;
  keyFile: string;
  vault: Vault;
  kek: Kek;
}

/** A key-file vault for `workspace` in a fresh dir (or `dir`), opened and unlocked; closed at teardown. */
export async function keyFileVault(t: TestContext, workspace = 'alpha', dir = tempDir(t)): Promise<TestVault> {
  const file = join(dir, `${workspace}.vault`);
  const keyFile = join(dir, `${workspace}.kek`);
  await initVault({ file, workspace, provider: keyFileProvider({ path: keyFile }) });
  const vault = await openVault({ file, workspace });
  const kek = await vault.unlock(keyFileProvider());
  t.teardown(() => {
    kek.destroy();
    vault.close();
  });
  return { dir, file, keyFile, vault, kek };
}

export function bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s));
}

export function text(b: Uint8Array): string {
  return Buffer.from(b).toString();
}

/** The PcxError code of what `fn` throws (fails the test when it does not throw). */
export async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return (e as { code?: string }).code ?? `not a PcxError: ${(e as Error).message}`;
  }
  return 'did not throw';
}
