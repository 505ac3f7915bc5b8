/**
 * Fingerprint files: what a scanner needs to find a workspace's secrets in a text without holding
 * any of them. For each secret and each of its encodings (ENCODINGS) the file has the folded form's
 * length, a keyed rolling hash of a window in its middle (the anchor that finds candidates in one
 * pass over a text, whatever the number of secrets) and a keyed HMAC of the whole folded form (which
 * confirms a candidate). No plaintext, no unkeyed hash, no workspace key: see README.md for what a
 * file reveals. buildFingerprints runs inside the vault; parseFingerprints validates a file fully,
 * since a scanner that silently loaded half a file would miss secrets.
 */
import { randomBytes } from 'node:crypto';
import { ENCODINGS, type Encoding, encodeAll } from './encodings.js';
import { parseJson, scanError } from './errors.js';
import { foldBytes } from './fold.js';
import { SCAN_KEY_BYTES, confirmDigest, deriveScanKey, deriveScanKeys, DIGEST_BYTES, rollingHash } from './keys.js';

export const FINGERPRINT_FORMAT = 'portcullis-fingerprints';
/** 2: the fold decodes `%XX` and drops decoded whitespace (a version-1 file folded its forms differently). */
export const FINGERPRINT_VERSION = 2;
/** Secrets shorter than this are not fingerprinted (they would match ordinary text). */
export const MIN_SECRET_BYTES = 8;
/** Secrets longer than this are not fingerprinted (they would stretch the streaming window). */
export const MAX_SECRET_BYTES = 16_384;
/** A folded form shorter than this is left out (e.g. the base64 core of a very short value). */
export const MIN_FORM_BYTES = 8;
/** Widest anchor window; the file's window is the shortest form's length, up to this. */
export const MAX_WINDOW_BYTES = 16;

/** One encoding of one secret, as the scanner looks for it. */
export interface FingerprintForm {
  encoding: Encoding;
  /** Length of the folded form, in bytes. */
  length: number;
  /** Where the anchor window starts inside the folded form. */
  anchorOffset: number;
  /** Keyed rolling hash of the folded form's bytes [anchorOffset, anchorOffset + window). */
  anchor: number;
  /** base64url of the first 16 bytes of HMAC-SHA256(confirm key, folded form). */
  digest: string;
}

export interface FingerprintSecret {
  name: string;
  version: number;
  /** Distinct folded forms only: an encoding whose folded form equals an earlier one's is left out. */
  forms: FingerprintForm[];
}

/** A secret the file does not cover, and why (so that `vault fingerprints` can say so). */
export interface OmittedSecret {
  name: string;
  version: number;
  reason: 'too-short' | 'too-long';
}

/** The JSON-serialisable fingerprint file (serializeFingerprints / parseFingerprints). */
export interface FingerprintFile {
  format: typeof FINGERPRINT_FORMAT;
  version: typeof FINGERPRINT_VERSION;
  workspace: string;
  /** ISO 8601 time of the build. */
  created: string;
  /** base64url of the 32-byte scan key (HMAC of the workspace key, the workspace and a random salt). */
  scanKey: string;
  /** Width of the anchor window in folded bytes (MIN_FORM_BYTES to MAX_WINDOW_BYTES). */
  window: number;
  secrets: FingerprintSecret[];
  omitted: OmittedSecret[];
}

/** One secret version as the vault hands it over; the caller wipes `value` afterwards. */
export interface SecretInput {
  name: string;
  version: number;
  value: Uint8Array;
}

export interface BuildFingerprintsOptions {
  /** The workspace's name (bound into the scan key). */
  workspace: string;
  /** The workspace's fingerprint key: 32 random bytes, kept wrapped in the vault. */
  key: Uint8Array;
  secrets: Iterable<SecretInput>;
  /** Salt of the scan key; default 16 random bytes (a fresh, unlinkable file per build). */
  salt?: Uint8Array;
  /** Build time; default now. */
  now?: Date;
}

interface PendingForm {
  encoding: Encoding;
  folded: Uint8Array;
}

export function buildFingerprints(options: BuildFingerprintsOptions): FingerprintFile {
  const { workspace, key } = options;
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError('key must be a 32-byte Uint8Array');
  if (typeof workspace !== 'string' || workspace === '') throw new TypeError('workspace must be a non-empty string');
  const salt = options.salt ?? randomBytes(16);
  const scanKey = deriveScanKey(key, workspace, salt);
  const keys = deriveScanKeys(scanKey);

  const pending: { name: string; version: number; forms: PendingForm[] }[] = [];
  const omitted: OmittedSecret[] = [];
  for (const secret of options.secrets) {
    const { name, version, value } = secret;
    if (!(value instanceof Uint8Array)) throw new TypeError(`secret "${name}": value must be a Uint8Array`);
    if (value.length < MIN_SECRET_BYTES || value.length > MAX_SECRET_BYTES) {
      omitted.push({ name, version, reason: value.length < MIN_SECRET_BYTES ? 'too-short' : 'too-long' });
      continue;
    }
    const seen = new Set<string>();
    const forms: PendingForm[] = [];
    for (const { encoding, bytes } of encodeAll(value)) {
      const folded = foldBytes(bytes);
      const id = Buffer.from(folded).toString('latin1');
      if (folded.length < MIN_FORM_BYTES || seen.has(id)) continue;
      seen.add(id);
      forms.push({ encoding, folded });
    }
    if (forms.length === 0) omitted.push({ name, version, reason: 'too-short' });
    else pending.push({ name, version, forms });
  }

  let window = MAX_WINDOW_BYTES;
  for (const s of pending) for (const f of s.forms) window = Math.min(window, f.folded.length);
  const secrets = pending.map(({ name, version, forms }) => ({
    name,
    version,
    forms: forms.map(({ encoding, folded }) => {
      // The anchor sits in the middle of the form: prefixes are shared (PEM headers, "ghp_",
      // PKCS#8 preambles), the middle of a secret is where it is most its own.
      const anchorOffset = Math.floor((folded.length - window) / 2);
      return {
        encoding,
        length: folded.length,
        anchorOffset,
        anchor: rollingHash(keys, folded, anchorOffset, window),
        digest: confirmDigest(keys, folded, 0, folded.length).toString('base64url'),
      };
    }),
  }));
  return {
    format: FINGERPRINT_FORMAT,
    version: FINGERPRINT_VERSION,
    workspace,
    created: (options.now ?? new Date()).toISOString(),
    scanKey: scanKey.toString('base64url'),
    window,
    secrets,
    omitted,
  };
}

/** The file's text: JSON, one line per secret, newline-terminated. */
export function serializeFingerprints(file: FingerprintFile): string {
  const head = { ...file, secrets: undefined, omitted: undefined };
  const lines = [JSON.stringify(head).slice(0, -1), ',"secrets":['];
  lines.push(file.secrets.map((s) => JSON.stringify(s)).join(',\n'));
  lines.push(`],"omitted":${JSON.stringify(file.omitted)}}`);
  return `${lines.join('\n')}\n`;
}

const HINT = 'write the file again with `portcullis vault fingerprints --workspace W --out FILE`';
const BASE64URL = /^[A-Za-z0-9_-]*$/;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(source: string, where: string, what: string): never {
  throw scanError('PCX_SCAN_BAD_FINGERPRINTS', `${source}: ${where}: ${what}`, { hint: HINT });
}

function isUint(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function keyBytes(v: unknown, bytes: number): boolean {
  return typeof v === 'string' && BASE64URL.test(v) && Buffer.from(v, 'base64url').length === bytes;
}

function checkOnly(o: Obj, allowed: readonly string[], source: string, where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(source, where, `unknown field "${k}"`);
}

/** Reads and validates a fingerprint file; `source` names it in messages (a path). */
export function parseFingerprints(text: string, source: string): FingerprintFile {
  const data = parseJson(text, source, 'PCX_SCAN_BAD_FINGERPRINTS', HINT);
  if (!isObject(data) || data.format !== FINGERPRINT_FORMAT) {
    fail(source, 'format', `not a fingerprint file (expected "format": "${FINGERPRINT_FORMAT}")`);
  }
  if (data.version !== FINGERPRINT_VERSION) {
    throw scanError(
      'PCX_SCAN_FINGERPRINTS_VERSION',
      `${source}: format version ${JSON.stringify(data.version)} is not supported ` +
        `(this scanner reads ${FINGERPRINT_VERSION})`,
      { hint: HINT },
    );
  }
  checkOnly(
    data,
    ['format', 'version', 'workspace', 'created', 'scanKey', 'window', 'secrets', 'omitted'],
    source,
    '.',
  );
  if (typeof data.workspace !== 'string' || data.workspace === '') fail(source, 'workspace', 'must be a name');
  if (typeof data.created !== 'string' || Number.isNaN(Date.parse(data.created))) {
    fail(source, 'created', 'must be an ISO 8601 time');
  }
  if (!keyBytes(data.scanKey, SCAN_KEY_BYTES)) fail(source, 'scanKey', 'must be 32 bytes in base64url');
  const window = data.window;
  if (!isUint(window, MAX_WINDOW_BYTES) || window < MIN_FORM_BYTES) {
    fail(source, 'window', `must be a whole number from ${MIN_FORM_BYTES} to ${MAX_WINDOW_BYTES}`);
  }
  if (!Array.isArray(data.secrets)) fail(source, 'secrets', 'must be a list');
  if (!Array.isArray(data.omitted)) fail(source, 'omitted', 'must be a list');
  const secrets = data.secrets.map((s, i) => checkSecret(s, `secrets[${i}]`, source, window));
  const omitted = data.omitted.map((o, i): OmittedSecret => {
    const where = `omitted[${i}]`;
    if (!isObject(o)) fail(source, where, 'must be an object');
    checkOnly(o, ['name', 'version', 'reason'], source, where);
    if (typeof o.name !== 'string') fail(source, `${where}.name`, 'must be a string');
    if (!isUint(o.version)) fail(source, `${where}.version`, 'must be a whole number');
    if (o.reason !== 'too-short' && o.reason !== 'too-long') fail(source, `${where}.reason`, 'unknown reason');
    return { name: o.name, version: o.version, reason: o.reason };
  });
  return {
    format: FINGERPRINT_FORMAT,
    version: FINGERPRINT_VERSION,
    workspace: data.workspace,
    created: data.created,
    scanKey: data.scanKey as string,
    window,
    secrets,
    omitted,
  };
}

function checkSecret(s: unknown, where: string, source: string, window: number): FingerprintSecret {
  if (!isObject(s)) fail(source, where, 'must be an object');
  checkOnly(s, ['name', 'version', 'forms'], source, where);
  if (typeof s.name !== 'string' || s.name === '') fail(source, `${where}.name`, 'must be a non-empty string');
  if (!isUint(s.version)) fail(source, `${where}.version`, 'must be a whole number');
  if (!Array.isArray(s.forms) || s.forms.length === 0) fail(source, `${where}.forms`, 'must be a non-empty list');
  const forms = s.forms.map((f, j): FingerprintForm => {
    const at = `${where}.forms[${j}]`;
    if (!isObject(f)) fail(source, at, 'must be an object');
    checkOnly(f, ['encoding', 'length', 'anchorOffset', 'anchor', 'digest'], source, at);
    if (!(ENCODINGS as readonly unknown[]).includes(f.encoding)) {
      fail(source, `${at}.encoding`, `unknown encoding ${JSON.stringify(f.encoding)}`);
    }
    // Percent-encoding at most triples a value (hex doubles it); the fold shortens, never lengthens.
    if (!isUint(f.length, 3 * MAX_SECRET_BYTES) || f.length < window) {
      fail(source, `${at}.length`, `must be a whole number from the window (${window}) up`);
    }
    if (!isUint(f.anchorOffset) || f.anchorOffset + window > f.length) {
      fail(source, `${at}.anchorOffset`, 'must leave the anchor window inside the form');
    }
    if (!isUint(f.anchor, 0xffffffff)) fail(source, `${at}.anchor`, 'must be a 32-bit unsigned number');
    if (!keyBytes(f.digest, DIGEST_BYTES)) fail(source, `${at}.digest`, `must be ${DIGEST_BYTES} bytes in base64url`);
    return {
      encoding: f.encoding as Encoding,
      length: f.length,
      anchorOffset: f.anchorOffset,
      anchor: f.anchor,
      digest: f.digest as string,
    };
  });
  return { name: s.name, version: s.version, forms };
}
