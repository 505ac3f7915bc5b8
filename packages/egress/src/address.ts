/**
 * Host and address canonicalisation: pure, no I/O.
 *
 * Every spelling a client can use for a destination is reduced to one canonical text before the
 * PDP sees it, so that a policy written against "127.0.0.1" or "api.github.com" cannot be side-
 * stepped by "2130706433", "0x7f.1", "[::ffff:127.0.0.1]" or "API.GitHub.com.". The rules are
 * the WHATWG URL host parser's (IPv4 shorthand, hex and octal parts; IDN via UTS #46, which
 * url.domainToASCII implements) plus POLICY-LANGUAGE.md's host normalisation (lower case, one
 * trailing dot removed, labels of letters, digits, '-' and '_'), and RFC 5952 text for IPv6.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { PcxError } from '@portcullis/protocol';

/** An IP address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface Ip {
  family: 4 | 6;
  value: bigint;
}

export type CanonicalHost = { kind: 'ip'; host: string; ip: Ip } | { kind: 'name'; host: string };

export interface Cidr {
  family: 4 | 6;
  base: bigint;
  bits: number;
  text: string;
}

const MAX_HOST_LENGTH = 253;
// Characters that never belong in a host name a client sends to a proxy. '%' is refused because
// the WHATWG parser would percent-decode it ("%41.com" → "a.com"), so the upstream could see a
// different name from the one a log shows; ':' is port smuggling ("evil.com:443.allowed.com");
// '@', '/', '\' and brackets are URL structure, not host.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what a name must not hold
const FORBIDDEN_IN_NAME = /[\u0000-\u0020%:@/\\[\]?#<>^|"'`{}\u007f]/;
const LABEL = /^[a-z0-9_-]+$/;

function malformed(message: string, hint?: string): PcxError {
  return new PcxError('PCX_EGRESS_BAD_HOST', message, hint === undefined ? {} : { hint });
}

/** Strict IPv4 dotted quad (no shorthand, no leading zeros) → Ip, else undefined. */
function parseStrictIPv4(text: string): Ip | undefined {
  if (!isIPv4(text)) return undefined;
  const parts = text.split('.');
  let value = 0n;
  for (const p of parts) {
    if (p.length > 1 && p.startsWith('0')) return undefined;
    value = (value << 8n) | BigInt(Number(p));
  }
  return { family: 4, value };
}

/** IPv6 text (no brackets, no zone) → Ip, else undefined. Accepts an embedded dotted IPv4 tail. */
function parseIPv6(text: string): Ip | undefined {
  if (!isIPv6(text)) return undefined;
  let groups: string[];
  let tail: bigint | undefined;
  let s = text;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = parseStrictIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4.value;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const double = s.indexOf('::');
  if (double >= 0) {
    const head = s.slice(0, double) === '' ? [] : s.slice(0, double).split(':');
    const rest = s.slice(double + 2) === '' ? [] : s.slice(double + 2).split(':');
    groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  } else {
    groups = s.split(':');
  }
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tail !== undefined) value = (value & ~0xffffffffn) | tail;
  return { family: 6, value };
}

/**
 * Parse an address as a resolver or an operator writes it: dotted-quad IPv4 or IPv6 text,
 * optionally with a zone id (ignored). IPv4-mapped IPv6 (::ffff:0:0/96) becomes IPv4.
 */
export function parseIp(text: string): Ip | undefined {
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  const ip = parseStrictIPv4(bare) ?? parseIPv6(bare);
  return ip === undefined ? undefined : unmap(ip);
}

function unmap(ip: Ip): Ip {
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** Canonical text: dotted quad for IPv4, RFC 5952 (lower case, longest zero run as ::) for IPv6. */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * The IPv4 address an IPv6 address carries inside it, for the transition mechanisms that route
 * to it: NAT64 (64:ff9b::/96, RFC 6052), 6to4 (2002::/16, RFC 3056) and the deprecated
 * IPv4-compatible form (::a.b.c.d). The floor checks that address too, so that
 * [64:ff9b::7f00:1] cannot reach 127.0.0.1 through a NAT64 gateway.
 */
export function embeddedIPv4(ip: Ip): Ip | undefined {
  if (ip.family !== 6) return undefined;
  const v = ip.value;
  if (v >> 32n === 0x64ff9bn << 64n) return { family: 4, value: v & 0xffffffffn };
  if (v >> 112n === 0x2002n) return { family: 4, value: (v >> 80n) & 0xffffffffn };
  // ::/96 minus :: and ::1 (those are unspecified and loopback in their own right).
  if (v >> 32n === 0n && v > 1n) return { family: 4, value: v };
  return undefined;
}

/**
 * Canonicalise a host as a client wrote it in a request target or a Host header (without port).
 * Throws PCX_EGRESS_BAD_HOST with the reason when the host is not acceptable.
 */
export function canonicalHost(raw: string): CanonicalHost {
  if (raw.length === 0) throw malformed('empty host');
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) throw malformed(`unbalanced bracket in host "${printable(raw)}"`);
    const inner = raw.slice(1, -1);
    // RFC 6874 zone ids arrive as "%25eth0" in URLs; the zone does not change the destination.
    const zone = inner.indexOf('%');
    const bare = zone >= 0 ? inner.slice(0, zone) : inner;
    const ip = parseIPv6(bare);
    if (!ip)
      throw malformed(
        `"${printable(raw)}" is not an IPv6 address`,
        'brackets are for IPv6 literals only; write a host name without them',
      );
    const canonical = unmap(ip);
    return { kind: 'ip', host: formatIp(canonical), ip: canonical };
  }
  if (raw.length > MAX_HOST_LENGTH * 4) throw malformed('host name too long');
  if (FORBIDDEN_IN_NAME.test(raw))
    throw malformed(`host "${printable(raw)}" contains a character not allowed in a host name`);
  const ascii = domainToASCII(raw);
  if (ascii === '')
    throw malformed(`host "${printable(raw)}" is not a valid host name (IDN conversion or IPv4 parsing failed)`);
  // domainToASCII applies the WHATWG IPv4 parser: "0x7f.1", "2130706433" and "0177.0.0.1" all
  // come back as "127.0.0.1" here.
  const v4 = parseStrictIPv4(ascii);
  if (v4) return { kind: 'ip', host: formatIp(v4), ip: v4 };
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (name.length === 0 || name.length > MAX_HOST_LENGTH)
    throw malformed(`host "${printable(raw)}" has an invalid length`);
  for (const label of name.split('.')) {
    if (!LABEL.test(label)) throw malformed(`host "${printable(raw)}" has an empty or invalid label`);
  }
  return { kind: 'name', host: name };
}

/** Split "host:port" (CONNECT authority, Host header) into host and port. Port 0 only for listening. */
export function splitHostPort(
  authority: string,
  defaultPort?: number,
  allowPortZero = false,
): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw malformed(`unbalanced bracket in "${printable(authority)}"`);
    host = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw malformed(`unexpected text after "]" in "${printable(authority)}"`);
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw malformed(`"${printable(authority)}" has no port`, 'CONNECT needs host:port');
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) throw malformed(`invalid port in "${printable(authority)}"`);
    port = Number(portText);
    if (port < (allowPortZero ? 0 : 1) || port > 65535)
      throw malformed(`port ${port} out of range in "${printable(authority)}"`);
  }
  return { host, port };
}

/** Parse "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addrText = slash >= 0 ? text.slice(0, slash) : text;
  const ip = parseStrictIPv4(addrText) ?? parseIPv6(addrText);
  if (!ip)
    throw new PcxError(
      'PCX_EGRESS_BAD_CIDR',
      `"${printable(text)}" is not a CIDR (expected e.g. 127.0.0.0/8 or ::1/128)`,
    );
  const width = ip.family === 4 ? 32 : 128;
  let bits = width;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > width)
      throw new PcxError('PCX_EGRESS_BAD_CIDR', `"${printable(text)}" has an invalid prefix length`);
    bits = Number(b);
  }
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    throw new PcxError('PCX_EGRESS_BAD_CIDR', `"${printable(text)}" has host bits set`, {
      hint: `did you mean ${formatIp({ family: ip.family, value: ip.value & ~hostMask })}/${bits}?`,
    });
  }
  // A mapped CIDR (::ffff:10.0.0.0/104) means the IPv4 range, as the policy language says.
  if (ip.family === 6 && bits >= 96 && ip.value >> 32n === 0xffffn) {
    return { family: 4, base: ip.value & 0xffffffffn, bits: bits - 96, text };
  }
  return { family: ip.family, base: ip.value, bits, text };
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family !== ip.family) return false;
  const width = ip.family === 4 ? 32 : 128;
  return ip.value >> BigInt(width - cidr.bits) === cidr.base >> BigInt(width - cidr.bits);
}

/** Make untrusted text safe to quote in a message or a log: control characters escaped, bounded. */
export function printable(s: string, max = 120): string {
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
  return cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
