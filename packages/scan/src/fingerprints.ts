/**
 * Fingerprint files: what the message filter, the egress tunnel inspection and the hooks load so
 * that they can recognise a vault secret without ever holding it.
 *
 * For each secret version the file holds keyed fingerprints (HMAC-SHA256 under the workspace's
 * fingerprint key, cut to 128 bits) of the value and of the forms it takes when it is encoded:
 * raw bytes, standard base64 and base64url at each of the three alignments a value can have
 * inside a longer base64 text, lower- and upper-case hex, and URL percent-encoding.
 *
 * Promises:
 * - no plaintext and no unkeyed hash of one is in the file; a form's bytes live only for the MAC
 *   and are zeroed right after;
 * - the same (key, bytes) always gives the same fingerprint (`fingerprint`), so a scanner that
 *   holds the file computes the fingerprint of a candidate window and compares;
 * - parseFingerprints accepts only a well-formed file (PcxError PCX_SCAN_BAD_FINGERPRINTS naming
 *   the source and the field).
 *
 * What a file reveals, and what not: packages/scan/README.md ("Fingerprint files").
 */
import { createHmac } from 'node:crypto';
import { PcxError } from '@portcullis/protocol';

export const FINGERPRINT_FORMAT = 'portcullis-fingerprints/1';
const MAC = 'hmac-sha256/128';
/**
 * Forms shorter than this many bytes are left out: a short window matches ordinary text too
 * often to be evidence, and a short form is cheap to guess from its fingerprint.
 */
export const MIN_FORM_BYTES = 8;
const KEY_BYTES = 32;
const FINGERPRINT_BYTES = 16;

export type FingerprintEncoding =
  | 'raw'
  | 'base64/0'
  | 'base64/1'
  | 'base64/2'
  | 'base64url/0'
  | 'base64url/1'
  | 'base64url/2'
  | 'hex'
  | 'hex-upper'
  | 'url';

const ENCODINGS: readonly FingerprintEncoding[] = [
  'raw',
  'base64/0',
  'base64/1',
  'base64/2',
  'base64url/0',
  'base64url/1',
  'base64url/2',
  'hex',
  'hex-upper',
  'url',
];

export interface SecretInput {
  name: string;
  version: number;
  /** The plaintext; read, never kept or changed. */
  value: Uint8Array;
}

export interface BuildFingerprintsOptions {
  workspace: string;
  /** The workspace's 32-byte fingerprint key. */
  key: Uint8Array;
  secrets: Iterable<SecretInput>;
  /** The file's creation time. Default: now. */
  now?: Date;
}

export interface FingerprintEntry {
  name: string;
  version: number;
  encoding: FingerprintEncoding;
  /** The form's length in bytes: the window a scanner fingerprints. */
  length: number;
  /** base64url of the first 16 bytes of HMAC-SHA256(key, form). */
  fingerprint: string;
}

export interface FingerprintFile {
  format: typeof FINGERPRINT_FORMAT;
  workspace: string;
  created_at: string;
  mac: typeof MAC;
  /** The fingerprint key, base64: a scanner needs it to fingerprint what it sees. */
  key: string;
  entries: FingerprintEntry[];
}

/** The keyed fingerprint of `bytes` (what a scanner computes for a candidate window). */
export function fingerprint(key: Uint8Array, bytes: Uint8Array): string {
  return createHmac('sha256', key).update(bytes).digest().subarray(0, FINGERPRINT_BYTES).toString('base64url');
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The forms of `value` that are fingerprinted, each once (a form equal to an earlier one, such
 * as the URL-encoding of a value that needs none, is left out), and none shorter than
 * MIN_FORM_BYTES. The caller zeroes the returned buffers.
 */
export function encodedForms(value: Uint8Array): { encoding: FingerprintEncoding; bytes: Buffer }[] {
  const out: { encoding: FingerprintEncoding; bytes: Buffer }[] = [];
  const add = (encoding: FingerprintEncoding, bytes: Buffer) => {
    if (bytes.length < MIN_FORM_BYTES || out.some((f) => f.bytes.equals(bytes))) bytes.fill(0);
    else out.push({ encoding, bytes });
  };
  const view = Buffer.from(value.buffer, value.byteOffset, value.length);
  add('raw', Buffer.from(view));
  for (const alphabet of ['base64', 'base64url'] as const) {
    for (const k of [0, 1, 2] as const) add(`${alphabet}/${k}`, alignedBase64(view, k, alphabet));
  }
  const hex = Buffer.from(view.toString('hex'), 'latin1');
  add('hex', hex);
  add('hex-upper', Buffer.from(hex.toString('latin1').toUpperCase(), 'latin1'));
  add('url', percentEncode(view));
  return out;
}

/**
 * The characters of the base64 text of `value` preceded by `k` unknown bytes and followed by
 * unknown bytes that depend on `value` alone: char i covers bits [6i, 6i+6), and is kept when
 * those bits all lie in the value's [8k, 8(k+n)).
 */
function alignedBase64(value: Buffer, k: 0 | 1 | 2, alphabet: 'base64' | 'base64url'): Buffer {
  const padded = Buffer.alloc(k + value.length + 2);
  value.copy(padded, k);
  const text = Buffer.from(padded.toString(alphabet), 'latin1');
  padded.fill(0);
  const start = Math.ceil((8 * k) / 6);
  const end = Math.floor((8 * (k + value.length)) / 6);
  const form = Buffer.from(text.subarray(start, Math.max(start, end)));
  text.fill(0);
  return form;
}

function percentEncode(value: Buffer): Buffer {
  const parts: number[] = [];
  for (const b of value) {
    if (b < 0x80 && UNRESERVED.test(String.fromCharCode(b))) parts.push(b);
    else parts.push(0x25, ...Buffer.from(b.toString(16).toUpperCase().padStart(2, '0'), 'latin1'));
  }
  const out = Buffer.from(parts);
  parts.fill(0);
  return out;
}

/** The fingerprint file of a workspace's secrets (every version given). */
export function buildFingerprints(options: BuildFingerprintsOptions): FingerprintFile {
  if (!(options.key instanceof Uint8Array) || options.key.length !== KEY_BYTES)
    throw new TypeError(`buildFingerprints: the key must be ${KEY_BYTES} bytes`);
  const entries: FingerprintEntry[] = [];
  for (const s of options.secrets) {
    for (const form of encodedForms(s.value)) {
      entries.push({
        name: s.name,
        version: s.version,
        encoding: form.encoding,
        length: form.bytes.length,
        fingerprint: fingerprint(options.key, form.bytes),
      });
      form.bytes.fill(0);
    }
  }
  return {
    format: FINGERPRINT_FORMAT,
    workspace: options.workspace,
    created_at: (options.now ?? new Date()).toISOString(),
    mac: MAC,
    key: Buffer.from(options.key).toString('base64'),
    entries,
  };
}

/** The file's text: JSON, one entry per line (diffable), ending in a newline. */
export function serializeFingerprints(file: FingerprintFile): string {
  const { entries, ...head } = file;
  const body = entries.map((e) => `    ${JSON.stringify(e)}`).join(',\n');
  const top = JSON.stringify(head, null, 2).slice(0, -2);
  return `${top},\n  "entries": [${entries.length ? `\n${body}\n  ` : ''}]\n}\n`;
}

/** Parse and validate a fingerprint file's text; `source` (a path) names it in errors. */
export function parseFingerprints(text: string, source: string): FingerprintFile {
  const bad = (what: string): PcxError =>
    new PcxError('PCX_SCAN_BAD_FINGERPRINTS', `${source}: ${what}`, {
      hint: 'write it again with "portcullis vault fingerprints --workspace W --out FILE"',
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw bad('not a JSON object');
  if (v.format !== FINGERPRINT_FORMAT)
    throw bad(`"format" is ${JSON.stringify(v.format)}, expected "${FINGERPRINT_FORMAT}"`);
  if (v.mac !== MAC) throw bad(`"mac" is ${JSON.stringify(v.mac)}, expected "${MAC}"`);
  if (typeof v.workspace !== 'string' || v.workspace === '') throw bad('"workspace" must be a non-empty string');
  if (typeof v.created_at !== 'string' || Number.isNaN(Date.parse(v.created_at)))
    throw bad('"created_at" must be an ISO 8601 time');
  if (typeof v.key !== 'string' || !isBase64(v.key, 'base64') || Buffer.from(v.key, 'base64').length !== KEY_BYTES)
    throw bad(`"key" must be ${KEY_BYTES} bytes in base64`);
  if (!Array.isArray(v.entries)) throw bad('"entries" must be an array');
  const entries = v.entries.map((e: unknown, i: number): FingerprintEntry => {
    const at = `entries[${i}]`;
    if (!isObject(e)) throw bad(`${at} is not an object`);
    if (typeof e.name !== 'string' || e.name === '') throw bad(`${at}.name must be a non-empty string`);
    if (!Number.isSafeInteger(e.version) || (e.version as number) < 1)
      throw bad(`${at}.version must be a positive integer`);
    if (!ENCODINGS.includes(e.encoding as FingerprintEncoding))
      throw bad(`${at}.encoding ${JSON.stringify(e.encoding)} is not one of ${ENCODINGS.join(', ')}`);
    if (!Number.isSafeInteger(e.length) || (e.length as number) < MIN_FORM_BYTES)
      throw bad(`${at}.length must be an integer of at least ${MIN_FORM_BYTES}`);
    if (
      typeof e.fingerprint !== 'string' ||
      !isBase64(e.fingerprint, 'base64url') ||
      Buffer.from(e.fingerprint, 'base64url').length !== FINGERPRINT_BYTES
    )
      throw bad(`${at}.fingerprint must be ${FINGERPRINT_BYTES} bytes in base64url`);
    return {
      name: e.name,
      version: e.version as number,
      encoding: e.encoding as FingerprintEncoding,
      length: e.length as number,
      fingerprint: e.fingerprint,
    };
  });
  return {
    format: FINGERPRINT_FORMAT,
    workspace: v.workspace,
    created_at: v.created_at,
    mac: MAC,
    key: v.key,
    entries,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isBase64(s: string, alphabet: 'base64' | 'base64url'): boolean {
  return alphabet === 'base64' ? /^[A-Za-z0-9+/]*={0,2}$/.test(s) : /^[A-Za-z0-9_-]*$/.test(s);
}
