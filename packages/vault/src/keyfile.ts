/**
 * The key-file KeyProvider: the KEK is 32 random bytes in a file of its own, written 0600 and
 * refused when group or others may read it (or when another user owns it).
 *
 * Format: one line, `pcx-vault-kek-v1 <64 hex digits>\n`. The file is read into a Buffer and
 * decoded by hand (no string ever holds the key), and the read buffer is zeroed.
 *
 * Creating a key file whose path already exists uses that file (it must be a valid key file):
 * a rotate-kek killed after writing its new key file but before its commit is simply run again,
 * and several vaults may share one key file (their associated data still keeps them apart).
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { KEY_BYTES, randomBytes, wipe } from './crypto.js';
import { vaultError } from './errors.js';
import type { KekParams, KeyProvider } from './kek.js';
import { localKek } from './local-kek.js';

const MAGIC = Buffer.from('pcx-vault-kek-v1 ', 'latin1');
const FILE_BYTES = MAGIC.length + 2 * KEY_BYTES + 1;

export interface KeyFileProviderOptions {
  /** The key file for `create` (absolute or relative to the working directory). */
  path?: string;
  /** Read the KEK from this file instead of the path the vault stores (a moved key file). */
  override?: string;
}

export function keyFileProvider(options: KeyFileProviderOptions = {}): KeyProvider {
  return {
    kind: 'keyfile',
    async create() {
      if (options.path === undefined) throw new TypeError('keyFileProvider: create needs a path');
      const path = resolve(options.path);
      const key = createOrReadKeyFile(path);
      return { params: { provider: 'keyfile', path }, kek: localKek(key) };
    },
    async open(params: KekParams) {
      if (params.provider !== 'keyfile') throw new TypeError('keyFileProvider: not key-file parameters');
      return localKek(readKeyFile(options.override === undefined ? params.path : resolve(options.override)));
    },
    dispose() {},
  };
}

/** Read and check a key file; the result is the caller's to wipe. */
export function readKeyFile(path: string): Uint8Array {
  if (!isAbsolute(path)) throw new TypeError('readKeyFile: the path must be absolute');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw vaultError('PCX_VAULT_KEY_FILE', `cannot read the key file "${path}": ${code}`, {
      hint:
        code === 'ENOENT'
          ? 'give its new place with --key-file, or restore it from your backup'
          : 'check its permissions',
    });
  }
  const buf = Buffer.alloc(FILE_BYTES + 1);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw vaultError('PCX_VAULT_KEY_FILE', `the key file "${path}" is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw vaultError('PCX_VAULT_KEY_FILE_PERMISSIONS', `the key file "${path}" is readable by other users`, {
        hint: `chmod 600 "${path}"`,
      });
    }
    const uid = process.getuid?.();
    if (uid !== undefined && uid !== 0 && st.uid !== uid) {
      throw vaultError('PCX_VAULT_KEY_FILE_PERMISSIONS', `the key file "${path}" belongs to another user`, {
        hint: 'a key file must belong to the user who runs the vault',
      });
    }
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break;
    }
    const key = decodeKeyFile(buf.subarray(0, n));
    if (!key) {
      throw vaultError('PCX_VAULT_KEY_FILE', `"${path}" is not a vault key file`, {
        hint: 'a key file is one line "pcx-vault-kek-v1 <64 hex digits>", as "vault init --key-file" writes it',
      });
    }
    return key;
  } finally {
    wipe(buf);
    closeSync(fd);
  }
}

function createOrReadKeyFile(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readKeyFile(path);
    throw vaultError(
      'PCX_VAULT_KEY_FILE',
      `cannot create the key file "${path}": ${(e as NodeJS.ErrnoException).code}`,
      {
        hint: 'check that its directory exists and is writable',
      },
    );
  }
  const key = randomBytes(KEY_BYTES);
  const text = Buffer.alloc(FILE_BYTES);
  try {
    MAGIC.copy(text, 0);
    encodeHex(key, text, MAGIC.length);
    text[FILE_BYTES - 1] = 0x0a;
    writeSync(fd, text, 0, text.length, 0);
    // The key must be on disk before any vault row names it (rotate-kek commits after this).
    fsyncSync(fd);
  } finally {
    wipe(text);
    closeSync(fd);
  }
  fsyncDirectory(dirname(path));
  return key;
}

/** fsync a directory so that a new entry in it survives a crash. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');

function encodeHex(bytes: Uint8Array, out: Buffer, at: number): void {
  for (let i = 0; i < bytes.length; i++) {
    out[at + 2 * i] = HEX[bytes[i]! >> 4]!;
    out[at + 2 * i + 1] = HEX[bytes[i]! & 15]!;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decode a key file's bytes (a final newline optional); undefined when they are not one. */
function decodeKeyFile(bytes: Buffer): Uint8Array | undefined {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end !== MAGIC.length + 2 * KEY_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const key = new Uint8Array(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) {
    const hi = hexDigit(bytes[MAGIC.length + 2 * i]!);
    const lo = hexDigit(bytes[MAGIC.length + 2 * i + 1]!);
    if (hi < 0 || lo < 0) {
      wipe(key);
      return undefined;
    }
    key[i] = (hi << 4) | lo;
  }
  return key;
}
