/**
 * Keys of a fingerprint file and the keyed rolling hash. The workspace's fingerprint key never
 * leaves the vault: a file carries a scan key derived from it with a random salt, and everything
 * else (the confirming HMAC key, the rolling hash's byte table and base) is derived from that scan
 * key. Whoever holds a file can test a guess of a secret (that is what scanning is) but learns
 * nothing about the workspace key and cannot link two files built with different salts.
 */
import { createHmac } from 'node:crypto';

export const SCAN_KEY_BYTES = 32;

const LABEL = 'portcullis fingerprints v1';

/** HMAC-SHA256(key, parts joined by NUL). */
function hmac(key: Uint8Array, ...parts: (string | Uint8Array)[]): Buffer {
  const h = createHmac('sha256', key);
  parts.forEach((p, i) => {
    if (i > 0) h.update(Buffer.of(0));
    h.update(p);
  });
  return h.digest();
}

export function deriveScanKey(workspaceKey: Uint8Array, workspace: string, salt: Uint8Array): Buffer {
  return hmac(workspaceKey, LABEL, 'scan', workspace, salt);
}

/** Everything a scanner derives from a file's scan key, computed once per file. */
export interface ScanKeys {
  /** Key of the confirming HMAC over a folded form. */
  confirm: Buffer;
  /** Rolling hash: a random 32-bit value per byte value… */
  table: Uint32Array;
  /** …and an odd base; the hash of w bytes is Σ table[b_i]·base^(w-1-i) mod 2^32. */
  base: number;
}

export function deriveScanKeys(scanKey: Uint8Array): ScanKeys {
  const confirm = hmac(scanKey, LABEL, 'confirm');
  const stream = Buffer.concat(Array.from({ length: 33 }, (_, i) => hmac(scanKey, LABEL, 'rolling', String(i))));
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = stream.readUInt32LE(i * 4);
  // An odd base is invertible mod 2^32, so no byte's contribution ever vanishes from the window.
  const base = (stream.readUInt32LE(1024) | 1) >>> 0;
  return { confirm, table, base };
}

/** Truncated confirming digest of a folded form (128 bits: collisions are not a concern). */
export const DIGEST_BYTES = 16;

export function confirmDigest(keys: ScanKeys, bytes: Uint8Array, from: number, to: number): Buffer {
  return createHmac('sha256', keys.confirm).update(bytes.subarray(from, to)).digest().subarray(0, DIGEST_BYTES);
}

/** The rolling hash of bytes[from, from + width). */
export function rollingHash(keys: ScanKeys, bytes: Uint8Array, from: number, width: number): number {
  let h = 0;
  for (let i = from; i < from + width; i++)
    h = (Math.imul(h, keys.base) + (keys.table[bytes[i] as number] as number)) >>> 0;
  return h;
}

/** base^(width-1) mod 2^32: what the byte leaving the window contributed. */
export function rollingOutFactor(keys: ScanKeys, width: number): number {
  let p = 1;
  for (let i = 1; i < width; i++) p = Math.imul(p, keys.base) >>> 0;
  return p;
}
