/**
 * Host and address canonicalisation: pure, no I/O.
 *
 * Every spelling a client can use for a destination is reduced to one canonical text before the
 * PDP sees it, so that a policy written against "127.0.0.1" or "api.github.com" cannot be side-
 * stepped by "2130706433", "0x7f.1", "[::ffff:127.0.0.1]" or "API.GitHub.com.". The rules are
 * the WHATWG URL host parser's (IPv4 shorthand, hex and octal parts; IDN via UTS #46, which
 * url.domainToASCII implements) plus the policy language's host normalisation (lower case, one
 * trailing dot removed, labels of letters, digits, '-' and '_'), and RFC 5952 text for IPv6
 * (addresses themselves are @portcullis/protocol/ip's, shared with the policy language).
 */
import { domainToASCII } from 'node:url';
import { PcxError } from '@portcullis/protocol';
import { type Cidr, formatCidr, formatIp, type Ip, parseCidr, parseIpv4, parseIpv6 } from '@portcullis/protocol/ip';

export type CanonicalHost = { kind: 'ip'; host: string; ip: Ip } | { kind: 'name'; host: string };

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
    const ip = parseIpv6(inner);
    if (!ip)
      throw malformed(
        `"${printable(raw)}" is not an IPv6 address`,
        'brackets are for IPv6 literals only; write a host name without them',
      );
    return { kind: 'ip', host: formatIp(ip), ip };
  }
  if (raw.length > MAX_HOST_LENGTH * 4) throw malformed('host name too long');
  if (FORBIDDEN_IN_NAME.test(raw))
    throw malformed(`host "${printable(raw)}" contains a character not allowed in a host name`);
  const ascii = domainToASCII(raw);
  if (ascii === '')
    throw malformed(`host "${printable(raw)}" is not a valid host name (IDN conversion or IPv4 parsing failed)`);
  // domainToASCII applies the WHATWG IPv4 parser: "0x7f.1", "2130706433" and "0177.0.0.1" all
  // come back as "127.0.0.1" here.
  const v4 = parseIpv4(ascii);
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

/**
 * An operator's CIDR option (`--allow-cidr`, "10.0.0.0/8", "::1/128" or a bare address) through the
 * shared parser; a mistake is a PCX_EGRESS_BAD_CIDR naming the network the operator probably meant.
 */
export function parseCidrOption(text: string): Cidr {
  const r = parseCidr(text);
  if (r.ok) return r.cidr;
  const hint = r.network ? `did you mean ${formatCidr(r.network)}?` : 'expected e.g. 127.0.0.0/8 or ::1/128';
  throw new PcxError('PCX_EGRESS_BAD_CIDR', r.message, { hint });
}

/** Make untrusted text safe to quote in a message or a log: control characters escaped, bounded. */
export function printable(s: string, max = 120): string {
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
  return cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
