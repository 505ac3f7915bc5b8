/**
 * The encodings a known secret is fingerprinted in: how a secret's bytes may appear in a text.
 * Base64 is position-dependent: a secret that starts 0, 1 or 2 bytes into a 3-byte group encodes
 * to different characters, so each alignment has its own form, cut down to the characters that
 * depend on the secret's bytes alone (the first and last one or two characters of an encoded run
 * also carry the neighbouring bytes, or padding, and are left out).
 */

export const ENCODINGS = [
  'raw',
  'base64-0',
  'base64-1',
  'base64-2',
  'base64url-0',
  'base64url-1',
  'base64url-2',
  'hex',
  'url',
  'json',
] as const;

/** How a known secret appeared in a text (see packages/scan/README.md). */
export type Encoding = (typeof ENCODINGS)[number];

/** The characters of the base64 encoding that depend only on `value`, when it starts `align` bytes into a group. */
function base64Core(value: Uint8Array, align: number, url: boolean): Buffer {
  const padded = Buffer.concat([Buffer.alloc(align), value, Buffer.alloc(2)]);
  const text = padded.toString(url ? 'base64url' : 'base64');
  // Character i carries bits [6i, 6i+6); the value owns bits [8·align, 8·(align+len)).
  const first = Math.ceil((8 * align) / 6);
  const last = Math.floor((8 * (align + value.length)) / 6);
  return Buffer.from(text.slice(first, last), 'latin1');
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** Percent-encoding as encodeURIComponent does it, byte by byte (the value need not be UTF-8). */
function percentEncode(value: Uint8Array): Buffer {
  let s = '';
  for (const b of value) {
    const ch = String.fromCharCode(b);
    s += b < 0x80 && UNRESERVED.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return Buffer.from(s, 'latin1');
}

/** The inside of a JSON string holding the value, or undefined when the value is not UTF-8. */
function jsonEscape(value: Uint8Array): Buffer | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    return undefined;
  }
  return Buffer.from(JSON.stringify(text).slice(1, -1), 'utf8');
}

/** Each encoding of the value, in ENCODINGS order (json only for UTF-8 values). */
export function encodeAll(value: Uint8Array): { encoding: Encoding; bytes: Uint8Array }[] {
  const out: { encoding: Encoding; bytes: Uint8Array }[] = [{ encoding: 'raw', bytes: value }];
  for (const align of [0, 1, 2]) {
    out.push({ encoding: `base64-${align}` as Encoding, bytes: base64Core(value, align, false) });
  }
  for (const align of [0, 1, 2]) {
    out.push({ encoding: `base64url-${align}` as Encoding, bytes: base64Core(value, align, true) });
  }
  out.push({ encoding: 'hex', bytes: Buffer.from(Buffer.from(value).toString('hex'), 'latin1') });
  out.push({ encoding: 'url', bytes: percentEncode(value) });
  const json = jsonEscape(value);
  if (json) out.push({ encoding: 'json', bytes: json });
  return out;
}
