/**
 * The vault's cryptography, in one place: libsodium (loaded once), XChaCha20-Poly1305 with
 * associated data, the associated-data encoding that binds every ciphertext to where it
 * belongs, random bytes and zeroing.
 *
 * Promises:
 * - every ciphertext is nonce ‖ AEAD output, with a fresh random 24-byte nonce (XChaCha20's
 *   192-bit nonces make random nonces safe for any number of messages under one key);
 * - `open` either returns the plaintext or throws: a changed byte anywhere (nonce, ciphertext,
 *   tag, associated data, key) fails authentication in libsodium, whose tag comparison is
 *   constant-time;
 * - associated data is an unambiguous encoding (purpose tag, then length-prefixed fields), so
 *   that no two different bindings encode to the same bytes.
 *
 * Zeroing: `wipe` overwrites a Uint8Array in place (libsodium's memzero). What it cannot reach:
 * libsodium-wrappers copies each input into its WebAssembly heap for the call and frees it
 * without zeroing, so a copy of a key or plaintext lives in that heap until the memory is
 * reused (the heap is private to the process; README "Memory").
 */
import sodium from 'libsodium-wrappers-sumo';

export type Sodium = typeof sodium;

let loaded: Promise<Sodium> | undefined;

/** libsodium, initialised once per process (a memoised load). */
export function loadSodium(): Promise<Sodium> {
  loaded ??= sodium.ready.then(() => sodium);
  return loaded;
}

/** libsodium once loadSodium() resolved; a programming error before. */
export function sodiumNow(): Sodium {
  if (!sodium.crypto_aead_xchacha20poly1305_ietf_encrypt) throw new Error('libsodium used before loadSodium()');
  return sodium;
}

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;

/** Encrypt `plaintext` under `key`, binding `ad`; returns nonce ‖ ciphertext ‖ tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const s = sodiumNow();
  const nonce = s.randombytes_buf(NONCE_BYTES);
  const ct = s.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  const out = new Uint8Array(NONCE_BYTES + ct.length);
  out.set(nonce, 0);
  out.set(ct, NONCE_BYTES);
  return out;
}

/** Decrypt what `seal` made; returns undefined when authentication fails (never a partial plaintext). */
export function open(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    return sodiumNow().crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      sealed.subarray(NONCE_BYTES),
      ad,
      sealed.subarray(0, NONCE_BYTES),
      key,
    );
  } catch {
    return undefined;
  }
}

/** `n` random bytes from libsodium's CSPRNG, in a buffer of their own (so that wipe reaches all of it). */
export function randomBytes(n: number): Uint8Array {
  return sodiumNow().randombytes_buf(n);
}

/** Overwrite with zeros (sodium_memzero); safe on undefined and on already wiped buffers. */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) if (b && b.length > 0) sodiumNow().memzero(b);
}

/** What a piece of associated data authenticates; the purposes never share an encoding. */
export type AdPurpose = 'value' | 'data-key' | 'kek-check' | 'fingerprint-key';

const AD_MAGIC = 'portcullis-vault/1';

/**
 * Associated data: "portcullis-vault/1" NUL purpose NUL, then each field as a 4-byte big-endian
 * byte length and its UTF-8 bytes (numbers in decimal). Length prefixes make the encoding
 * injective: ("ab","c") and ("a","bc") differ.
 */
export function encodeAd(purpose: AdPurpose, fields: (string | number)[]): Uint8Array {
  const parts = fields.map((f) => Buffer.from(String(f), 'utf8'));
  const head = Buffer.from(`${AD_MAGIC}\0${purpose}\0`, 'utf8');
  const out = Buffer.alloc(head.length + parts.reduce((n, p) => n + 4 + p.length, 0));
  head.copy(out, 0);
  let at = head.length;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Where a KEK belongs: every data key it wraps names the same three things. */
export interface KekBinding {
  vaultId: string;
  workspace: string;
  kekVersion: number;
}

/** The associated data of a secret version's value (independent of the KEK: rotation rewraps keys only). */
export function valueAd(vaultId: string, workspace: string, name: string, version: number): Uint8Array {
  return encodeAd('value', [vaultId, workspace, name, version]);
}

/** The associated data of a wrapped data key: the value's binding plus the KEK version. */
export function dataKeyAd(binding: KekBinding, name: string, version: number): Uint8Array {
  return encodeAd('data-key', [binding.vaultId, binding.workspace, name, version, binding.kekVersion]);
}

/** The associated data of the wrapped fingerprint key. */
export function fingerprintKeyAd(binding: KekBinding): Uint8Array {
  return encodeAd('fingerprint-key', [binding.vaultId, binding.workspace, binding.kekVersion]);
}

/** The associated data of a KEK's check value (proves a credential opens this KEK, before any secret is touched). */
export function kekCheckAd(binding: KekBinding): Uint8Array {
  return encodeAd('kek-check', [binding.vaultId, binding.workspace, binding.kekVersion]);
}

/** Base64 of bytes without an intermediate copy (a view, not Buffer.from's copy into the pool). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** Bytes of base64 text in a buffer of their own; the decoder's intermediate (maybe pooled) copy is zeroed. */
export function fromBase64(text: string): Uint8Array {
  const b = Buffer.from(text, 'base64');
  const out = Uint8Array.from(b);
  b.fill(0);
  return out;
}
