/**
 * The fold: one normalising view of bytes in which a secret looks the same however a text wraps,
 * quotes or escapes it. Known-secret fingerprints are taken over the folded form of each encoding,
 * and a text is folded before it is searched, so that a match survives line wrapping (base64 at 64
 * or 76 columns, a hex dump with spaces), JSON and source-code escapes and string concatenation.
 *
 * The fold, left to right:
 *  - ASCII whitespace (tab, LF, VT, FF, CR, space) is dropped;
 *  - a backslash before a line break, or the escapes `\n`, `\r`, `\t`, is dropped (a line broken
 *    inside a string literal or a JSON string);
 *  - `\"`, `\'`, `\/`, `\\` become the escaped character; `\uXXXX` (surrogate pairs joined) and
 *    `\xXX` become the UTF-8 bytes of the character, and `%XX` (percent-encoding, whichever
 *    characters the encoder chose to escape) the byte; a decoded whitespace character is dropped;
 *  - the shell's quote inside a single-quoted word, `'\''`, becomes `'`;
 *  - a string join, the same quote closing and reopening with nothing but whitespace and at most one
 *    `+` or `.` between (`"abc" +\n "def"`, Python's implicit `'abc' 'def'`), is dropped;
 *  - A-Z become a-z (hex, percent-encoding and header spellings differ only in case);
 *  - every other byte stays.
 *
 * It promises: the fold of a text contains the fold of any secret written into it in one of these
 * ways, and every folded byte maps back to the source bytes it came from (`start`/`end`), so a
 * finding always carries a byte span of the original text. What it costs: case and whitespace no
 * longer distinguish, which only matters for a confirming hash of at least MIN_FORM_BYTES bytes.
 */

/** A folded view of `source[from, to)`: `length` bytes, each mapped back to its source span. */
export interface Folded {
  bytes: Uint8Array;
  /** Source offset (absolute, as given) of the first byte that produced folded byte i. */
  start: Uint32Array;
  /** Source offset just past the last byte that produced folded byte i. */
  end: Uint32Array;
  length: number;
}

/** How far a string join may stretch (whitespace between the quotes): bounds the lookahead. */
const MAX_JOIN_BYTES = 64;

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** The value of `count` hex digits at source[at…], or -1. */
function readHex(source: Uint8Array, at: number, count: number, to: number): number {
  if (at + count > to) return -1;
  let v = 0;
  for (let i = 0; i < count; i++) {
    const d = hexValue(source[at + i] as number);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** Length of the string join starting at the quote at `at` (0: none). */
function joinLength(source: Uint8Array, at: number, to: number): number {
  const quote = source[at];
  const limit = Math.min(to, at + MAX_JOIN_BYTES);
  let i = at + 1;
  let operator = false;
  while (i < limit) {
    const c = source[i] as number;
    if (c === quote) return i + 1 - at;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if ((c === 0x2b || c === 0x2e) && !operator) {
      operator = true;
      i++;
      continue;
    }
    return 0;
  }
  return 0;
}

/**
 * Folds source[from, to). `scratch`, when given and large enough, is reused (the streaming scanner
 * folds one window after another).
 */
export function fold(source: Uint8Array, from = 0, to = source.length, scratch?: Folded): Folded {
  const size = to - from;
  // A folded byte never comes from less than one source byte (`%XX`: 1 from 3), except `\uXXXX` (up to 3 UTF-8
  // bytes from 6 source bytes) and a surrogate pair (4 from 12): the folded view is never longer.
  const out =
    scratch && scratch.bytes.length >= size
      ? scratch
      : { bytes: new Uint8Array(size), start: new Uint32Array(size), end: new Uint32Array(size), length: 0 };
  const { bytes, start, end } = out;
  let n = 0;
  let i = from;
  while (i < to) {
    const c = source[i] as number;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) {
      bytes[n] = c | 0x20;
      start[n] = i;
      end[n++] = i + 1;
      i++;
      continue;
    }
    if (c === 0x25) {
      const v = readHex(source, i + 1, 2, to);
      if (v >= 0) {
        if (!isSpace(v)) {
          bytes[n] = v >= 0x41 && v <= 0x5a ? v | 0x20 : v;
          start[n] = i;
          end[n++] = i + 3;
        }
        i += 3;
        continue;
      }
    }
    if (c === 0x5c && i + 1 < to) {
      const e = source[i + 1] as number;
      if (e === 0x6e || e === 0x72 || e === 0x74 || e === 0x0a || e === 0x0d) {
        i += 2;
        continue;
      }
      if (e === 0x22 || e === 0x27 || e === 0x2f || e === 0x5c) {
        bytes[n] = e;
        start[n] = i;
        end[n++] = i + 2;
        i += 2;
        continue;
      }
      if (e === 0x75) {
        let cp = readHex(source, i + 2, 4, to);
        let width = 6;
        if (cp >= 0xd800 && cp <= 0xdbff && source[i + 6] === 0x5c && ((source[i + 7] as number) | 0x20) === 0x75) {
          const low = readHex(source, i + 8, 4, to);
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            width = 12;
          }
        }
        if (cp >= 0 && !(cp >= 0xd800 && cp <= 0xdfff)) {
          n = emitCodePoint(out, n, cp, i, i + width);
          i += width;
          continue;
        }
      } else if (e === 0x78) {
        const v = readHex(source, i + 2, 2, to);
        if (v >= 0) {
          if (!isSpace(v)) {
            bytes[n] = v >= 0x41 && v <= 0x5a ? v | 0x20 : v;
            start[n] = i;
            end[n++] = i + 4;
          }
          i += 4;
          continue;
        }
      }
    } else if (c === 0x22 || c === 0x27) {
      if (c === 0x27 && source[i + 1] === 0x5c && source[i + 2] === 0x27 && source[i + 3] === 0x27 && i + 3 < to) {
        bytes[n] = 0x27;
        start[n] = i;
        end[n++] = i + 4;
        i += 4;
        continue;
      }
      const join = joinLength(source, i, to);
      if (join > 0) {
        i += join;
        continue;
      }
    }
    bytes[n] = c;
    start[n] = i;
    end[n++] = i + 1;
    i++;
  }
  out.length = n;
  return out;
}

/** Writes the UTF-8 bytes of `cp` (ASCII lower-cased), all mapped to the escape's source span. */
function emitCodePoint(out: Folded, n: number, cp: number, from: number, to: number): number {
  const put = (b: number) => {
    out.bytes[n] = b;
    out.start[n] = from;
    out.end[n++] = to;
  };
  if (cp < 0x80) {
    if (!isSpace(cp)) put(cp >= 0x41 && cp <= 0x5a ? cp | 0x20 : cp);
  } else if (cp < 0x800) {
    put(0xc0 | (cp >> 6));
    put(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    put(0xe0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  } else {
    put(0xf0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3f));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  }
  return n;
}

/** The folded bytes alone (for fingerprinting an encoded form). */
export function foldBytes(source: Uint8Array): Uint8Array {
  const f = fold(source);
  return f.bytes.slice(0, f.length);
}
