/**
 * Normalisation of typed values (host, path, ip) shared by the checker (literals and
 * patterns) and the request normaliser (values). Hot path: a request's host and path go
 * through here on every decision, so the common case (already-normalised ASCII) is checked
 * with one regular expression and returned without allocating.
 */
import { domainToASCII } from 'node:url';

// ---- hosts --------------------------------------------------------------------------------

const FULLWIDTH_DOTS = /[\u3002\uff0e\uff61]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of ASCII, control characters included
const ASCII_ONLY = /^[\x00-\x7f]*$/;

const NORMAL = 0;
const UPPER = 1;
const OTHER = 2;

/**
 * Classifies h in one scan: ASCII labels of [a-z0-9_-], none empty (NORMAL: already
 * normalised); the same with some A-Z (UPPER: lower-casing normalises it); anything else
 * (OTHER: needs the full normalisation below).
 */
function asciiHostKind(h: string): number {
  const n = h.length;
  if (n === 0) return OTHER;
  let prevDot = true;
  let upper = false;
  for (let i = 0; i < n; i++) {
    const c = h.charCodeAt(i);
    if (c === 46 /* . */) {
      if (prevDot) return OTHER;
      prevDot = true;
    } else if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95) prevDot = false;
    else if (c >= 65 && c <= 90) {
      prevDot = false;
      upper = true;
    } else return OTHER;
  }
  return prevDot ? OTHER : upper ? UPPER : NORMAL;
}

const XN = /xn--/i;
const PUNYCODE = /(^|\.)xn--/i;

/** A normalised host, or undefined when malformed (precise rules 1–3). */
export function normalizeHost(raw: string): string | undefined {
  // Fast paths (every decision on a host runs this): plain ASCII labels with no punycode label
  // to validate are returned as they are, or lower-cased: no regular expression, no IDNA.
  const kind = asciiHostKind(raw);
  if (kind !== OTHER && (raw.indexOf('--') < 0 || !XN.test(raw))) return kind === NORMAL ? raw : raw.toLowerCase();
  let h = raw.replace(FULLWIDTH_DOTS, '.');
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!ASCII_ONLY.test(h) || PUNYCODE.test(h)) {
    // UTS #46 non-transitional, as url.domainToASCII does (it also validates xn-- labels);
    // '' means the conversion failed: malformed.
    const a = domainToASCII(h);
    if (a === '') return undefined;
    h = a;
  }
  h = h.toLowerCase();
  if (asciiHostKind(h) === NORMAL) return h;
  // An IPv6 literal (no brackets, no port) is a host too; keep its canonical text.
  if (h.includes(':')) {
    const ip = parseIp(h);
    if (ip) return formatIp(ip);
  }
  return undefined;
}

/** Validates a host glob; returns the normalised labels (left to right) or an error message. */
export function parseHostGlob(raw: string): { labels: string[] } | { error: string } {
  let h = raw.replace(FULLWIDTH_DOTS, '.');
  if (h.endsWith('.') && h.length > 1) h = h.slice(0, -1);
  const labels = h.split('.');
  const out: string[] = [];
  for (const l of labels) {
    if (l === '*' || l === '**') {
      out.push(l);
      continue;
    }
    if (l.includes('*'))
      return {
        error: `host glob "${raw}": \`*\` and \`**\` must be whole labels (write "*.x.com", not "api-*.x.com")`,
      };
    const n = normalizeHost(l);
    if (n === undefined || n.includes('.') || n.includes(':'))
      return { error: `host pattern "${raw}" has an invalid label "${l}"` };
    out.push(n);
  }
  return { labels: out };
}

// ---- paths --------------------------------------------------------------------------------

/** Lexical normalisation of an absolute path; undefined if relative, with NUL, or climbing above "/". */
export function normalizePath(p: string): string | undefined {
  if (p.length === 0 || p.charCodeAt(0) !== 47 /* / */) return undefined;
  // Fast path, one scan: no "//", no "/." segment start, no trailing "/" (except "/"), no NUL.
  let clean = true;
  for (let i = 1; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 0) return undefined;
    if ((c === 47 || c === 46) && p.charCodeAt(i - 1) === 47) clean = false;
  }
  if (clean && (p.length === 1 || p.charCodeAt(p.length - 1) !== 47)) return p;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}

/** Percent-decodes a URL path once (net.http); undefined if a decoded "/", "\" or NUL appears or the escape is bad. */
export function decodeUrlPath(p: string): string | undefined {
  if (!p.includes('%')) return p;
  let out = '';
  let i = 0;
  const bytes: number[] = [];
  while (i < p.length) {
    const c = p.charCodeAt(i);
    if (c === 37 /* % */) {
      const hex = p.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      const b = parseInt(hex, 16);
      if (b === 0x2f || b === 0x5c || b === 0) return undefined;
      bytes.push(b);
      i += 3;
      continue;
    }
    if (bytes.length > 0) {
      out += decodeUtf8(bytes);
      bytes.length = 0;
    }
    out += p[i];
    i++;
  }
  if (bytes.length > 0) out += decodeUtf8(bytes);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
function decodeUtf8(bytes: number[]): string {
  return utf8.decode(Uint8Array.from(bytes));
}

// ---- IP addresses -------------------------------------------------------------------------

/** An IP address: IPv4 as one 32-bit number; IPv6 as eight 16-bit groups. */
export type Ip = { v: 4; n: number } | { v: 6; g: number[] };
export interface Cidr {
  ip: Ip;
  bits: number;
}

/** Dotted-quad IPv4 without leading zeros (they are ambiguous, octal to some parsers: malformed). */
function parseV4(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return undefined;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return undefined; // a leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3) return undefined;
    } else return undefined;
  }
  return parts === 4 ? value : undefined;
}

/** Parses IPv4 or IPv6 text (zone id ignored); ::ffff:0:0/96 is unwrapped to IPv4. */
export function parseIp(raw: string): Ip | undefined {
  if (raw.length > 64) return undefined;
  const v4 = parseV4(raw);
  if (v4 !== undefined) return { v: 4, n: v4 };
  if (!raw.includes(':')) return undefined;
  let s = raw;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 (::ffff:10.0.0.1): rewrite as two hex groups and parse as usual.
    const n = parseV4(last);
    if (n === undefined) return undefined;
    s = s.slice(0, lastColon + 1) + Math.floor(n / 65536).toString(16) + ':' + (n % 65536).toString(16);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const total = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (total > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - total).fill(0), ...rest];
  } else {
    if (total !== 8) return undefined;
    groups = head;
  }
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    return { v: 4, n: groups[6]! * 65536 + groups[7]! };
  }
  return { v: 6, g: groups };
}

export function formatIp(ip: Ip): string {
  if (ip.v === 4) return [ip.n >>> 24, (ip.n >>> 16) & 255, (ip.n >>> 8) & 255, ip.n & 255].join('.');
  return ip.g.map((x) => x.toString(16)).join(':');
}

/** Bit i (0 = most significant) of an address. */
export function ipBit(ip: Ip, i: number): number {
  if (ip.v === 4) return (ip.n >>> (31 - i)) & 1;
  return (ip.g[i >> 4]! >>> (15 - (i & 15))) & 1;
}

export function ipWidth(ip: Ip): number {
  return ip.v === 4 ? 32 : 128;
}

/** Parses "addr" or "addr/bits"; error when malformed or host bits are set (precise rule 8). */
export function parseCidr(raw: string): Cidr | { error: string } {
  const slash = raw.indexOf('/');
  const ipText = slash >= 0 ? raw.slice(0, slash) : raw;
  const ip = parseIp(ipText);
  if (!ip) return { error: `"${raw}" is not an IP address or CIDR` };
  const width = ipWidth(ip);
  let bits = width;
  if (slash >= 0) {
    const b = raw.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return { error: `"${raw}" has an invalid prefix length` };
    bits = Number(b);
    // A mapped IPv4 CIDR (::ffff:10.0.0.0/104) counts its prefix within the IPv4 part.
    const mapped = ip.v === 4 && ipText.includes(':');
    if (mapped) {
      if (bits < 96) return { error: `"${raw}": a prefix shorter than /96 reaches outside ::ffff:0:0/96` };
      bits -= 96;
    }
    if (bits > width) return { error: `"${raw}" has a prefix longer than /${mapped ? width + 96 : width}` };
  }
  for (let i = bits; i < width; i++) {
    if (ipBit(ip, i) !== 0)
      return {
        error:
          `CIDR "${raw}" has host bits set (the network is ` +
          `${formatIp(maskIp(ip, bits))}/${slash >= 0 ? raw.slice(slash + 1) : bits})`,
      };
  }
  return { ip, bits };
}

function maskIp(ip: Ip, bits: number): Ip {
  if (ip.v === 4) return { v: 4, n: bits === 0 ? 0 : (ip.n & (0xffffffff << (32 - bits))) >>> 0 };
  const g = ip.g.map((x, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : x & ((0xffff << (16 - keep)) & 0xffff);
  });
  return { v: 6, g };
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  if (c.ip.v !== ip.v) return false;
  for (let i = 0; i < c.bits; i++) if (ipBit(c.ip, i) !== ipBit(ip, i)) return false;
  return true;
}

export function ipEqual(a: Ip, b: Ip): boolean {
  if (a.v === 4) return b.v === 4 && a.n === b.n;
  if (b.v !== 6) return false;
  for (let i = 0; i < 8; i++) if (a.g[i] !== b.g[i]) return false;
  return true;
}
