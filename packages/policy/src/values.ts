/**
 * Normalisation of typed values (host, path; ip is @portcullis/protocol/ip's) shared by the checker (literals and
 * patterns) and the request normaliser (values). Hot path: a request's host and path go
 * through here on every decision, so the common case (already-normalised ASCII) is checked
 * with one regular expression and returned without allocating.
 */
import { domainToASCII } from 'node:url';
import { formatIp, parseIp } from '@portcullis/protocol/ip';

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

/**
 * A normalised host, or undefined when malformed (precise rules 1–3, 8).
 *
 * A name whose last label is a number (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`) is what
 * URL parsers and inet_aton read as an IPv4 address — all four are 127.0.0.1 to curl — so it is
 * an IPv4 literal, and only the strict dotted quad is accepted: anything else is malformed.
 * Otherwise `deny … when resource.host == "127.0.0.1"` could be dodged by spelling the address
 * differently.
 */
export function normalizeHost(raw: string): string | undefined {
  const h = normalizeHostName(raw);
  if (h === undefined || !endsInNumber(h)) return h;
  const ip = parseIp(h);
  return ip !== undefined && ip.family === 4 ? h : undefined;
}

/** The last label is all digits or `0x` hex (the WHATWG URL "ends in a number" test). */
function endsInNumber(h: string): boolean {
  const n = h.length;
  const last = h.charCodeAt(n - 1);
  const start = h.lastIndexOf('.') + 1;
  // Hot path: a name ending in a letter (nearly all of them) and not starting its last label with "0x".
  const hex = h.charCodeAt(start) === 48 && (h.charCodeAt(start + 1) | 32) === 120; /* 0x */
  if (!hex && !(last >= 48 && last <= 57)) return false;
  for (let i = hex ? start + 2 : start; i < n; i++) {
    const c = h.charCodeAt(i);
    const digit = c >= 48 && c <= 57;
    if (!(digit || (hex && (c | 32) >= 97 && (c | 32) <= 102))) return false;
  }
  return true;
}

/** Host normalisation without the IPv4 rule (host glob labels are checked one by one). */
function normalizeHostName(raw: string): string | undefined {
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
    const n = normalizeHostName(l);
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
