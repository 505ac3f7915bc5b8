/**
 * Key-encryption keys (KEKs) and the KeyProvider interface behind them.
 *
 * A KEK only ever wraps 32-byte data keys (and the workspace's fingerprint key and its own
 * check value). It is addressed by its binding (vault id, workspace, KEK version); the
 * associated data of every wrap is built HERE from that binding and the subject (which secret
 * version), never taken from a caller, so that a KEK unlocked for one workspace cannot be used
 * to unwrap a key of another, even where two workspaces share a key file.
 *
 * Providers: a local key file, a passphrase (Argon2id) and PKCS#11 (the KEK never leaves the
 * token). Each provider stores public parameters in the vault (KekParams: a key file path,
 * KDF parameters and salt, a token and key label) and takes its credential from the caller.
 */
import { dataKeyAd, fingerprintKeyAd, kekCheckAd, type KekBinding } from './crypto.js';

export type ProviderKind = 'keyfile' | 'passphrase' | 'pkcs11';

export interface KeyFileParams {
  provider: 'keyfile';
  /** Absolute path of the key file. */
  path: string;
}

export interface PassphraseParams {
  provider: 'passphrase';
  kdf: 'argon2id13';
  /** crypto_pwhash passes. */
  opslimit: number;
  /** crypto_pwhash memory in bytes. */
  memlimit: number;
  /** 16 random bytes, base64. */
  salt: string;
}

export interface Pkcs11Params {
  provider: 'pkcs11';
  /** The PKCS#11 module (shared library) path. */
  module: string;
  /** The token's label. */
  token: string;
  /** The AES key object's CKA_LABEL. */
  label: string;
  /** The AES key object's CKA_ID, hex. */
  id: string;
}

export type KekParams = KeyFileParams | PassphraseParams | Pkcs11Params;

/** What a KEK wraps: a secret version's data key, the fingerprint key, or the KEK's own check value. */
export type WrapSubject = { name: string; version: number } | 'fingerprint-key' | 'kek-check';

export function subjectAd(binding: KekBinding, subject: WrapSubject): Uint8Array {
  if (subject === 'fingerprint-key') return fingerprintKeyAd(binding);
  if (subject === 'kek-check') return kekCheckAd(binding);
  return dataKeyAd(binding, subject.name, subject.version);
}

/** The raw operations of a KEK: authenticated encryption of a 32-byte key with associated data. */
export interface RawKek {
  /** Encrypt `key` binding `ad`. */
  seal(key: Uint8Array, ad: Uint8Array): Promise<Uint8Array>;
  /** Decrypt; undefined when authentication fails. */
  open(wrapped: Uint8Array, ad: Uint8Array): Promise<Uint8Array | undefined>;
  /** Zero key material and close sessions. Idempotent; later calls fail. */
  destroy(): void;
}

/** A KEK in use: wraps and unwraps for one binding. Local, in a token, or held by the vault agent. */
export interface Kek {
  readonly binding: KekBinding;
  wrap(key: Uint8Array, subject: WrapSubject): Promise<Uint8Array>;
  /** undefined when the wrapped key fails authentication. */
  unwrap(wrapped: Uint8Array, subject: WrapSubject): Promise<Uint8Array | undefined>;
  destroy(): void;
}

/** A Kek over a RawKek: the associated data comes from the binding. */
export function bindKek(binding: KekBinding, raw: RawKek): Kek {
  return {
    binding,
    wrap: (key, subject) => raw.seal(key, subjectAd(binding, subject)),
    unwrap: (wrapped, subject) => raw.open(wrapped, subjectAd(binding, subject)),
    destroy: () => raw.destroy(),
  };
}

/** Makes and opens KEKs of one kind, with the caller's credential. */
export interface KeyProvider {
  readonly kind: ProviderKind;
  /** A new KEK for `binding` (init, rotate-kek); `params` is what the vault stores (no secret). */
  create(binding: KekBinding): Promise<{ params: KekParams; kek: RawKek }>;
  /** The KEK the stored `params` describe. */
  open(params: KekParams, binding: KekBinding): Promise<RawKek>;
  /** Zero the credential this provider holds. Idempotent. */
  dispose(): void;
}
