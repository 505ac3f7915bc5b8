/**
 * From a vault's stored KEK parameters and the caller's credential to the provider that opens
 * it. A credential is bytes the caller owns; the providers copy and zero their own copies.
 */
import { vaultError } from './errors.js';
import type { KekParams, KeyProvider } from './kek.js';
import { keyFileProvider } from './keyfile.js';
import { passphraseProvider } from './passphrase.js';
import { pkcs11Provider } from './pkcs11.js';

export interface Credentials {
  /** A passphrase (passphrase KEKs). */
  passphrase?: Uint8Array;
  /** A token PIN (PKCS#11 KEKs). */
  pin?: Uint8Array;
  /** Read a key-file KEK from here instead of the stored path. */
  keyFile?: string;
  /** Load this PKCS#11 library instead of the stored path. */
  pkcs11Module?: string;
}

/** The provider that opens `params`, or PCX_VAULT_LOCKED naming the credential that is missing. */
export function providerFor(params: KekParams, credentials: Credentials, workspace: string): KeyProvider {
  switch (params.provider) {
    case 'keyfile':
      return keyFileProvider(credentials.keyFile === undefined ? {} : { override: credentials.keyFile });
    case 'passphrase':
      if (!credentials.passphrase) throw locked(workspace, 'a passphrase');
      return passphraseProvider({ passphrase: credentials.passphrase });
    case 'pkcs11':
      if (!credentials.pin) throw locked(workspace, `the PIN of the token "${params.token}"`);
      return pkcs11Provider({
        pin: credentials.pin,
        ...(credentials.pkcs11Module === undefined ? {} : { module: credentials.pkcs11Module }),
      });
  }
}

export function needsCredential(params: KekParams): boolean {
  return params.provider !== 'keyfile';
}

function locked(workspace: string, what: string): Error {
  return vaultError('PCX_VAULT_LOCKED', `workspace "${workspace}" is locked (its KEK needs ${what})`, {
    hint:
      `run "portcullis vault unlock --workspace ${workspace}" (with "portcullis vault agent" running), ` +
      'or give --passphrase-file / --pin-file',
  });
}
