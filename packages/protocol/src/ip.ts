/**
 * IP addresses and CIDR ranges: parsing, canonical text, containment. The one implementation for
 * every package (the policy language's `ip` type, the egress proxy's address floor and target
 * canonicalisation). Pure: no node:net, no I/O, so the pure policy package loads it through the
 * subpath export `@portcullis/protocol/ip` without pulling in sockets.
 *
 * What it promises:
 * - IPv4 is a strict dotted quad: four decimal parts 0–255, no leading zeros (`010.0.0.1` is
 *   ambiguous, octal to some parsers, so it is refused), no shorthand (`127.1`).
 * - IPv6 is RFC 4291 text (groups of 1–4 hex digits, one `::`, an optional dotted-quad tail),
 *   without brackets. A zone id (`fe80::1%eth0`, RFC 6874: unreserved characters) is accepted
 *   and dropped: it names an interface, not a different address.
 * - An IPv4-mapped IPv6 address (`::ffff:0:0/96`) IS its IPv4 address, everywhere: parsing one
 *   gives family 4. The two families never mix otherwise: no IPv4 address is inside `::/0`.
 * - Text out is canonical: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, no leading
 *   zeros, the longest run of two or more zero groups as `::`, the first one on a tie).
 * - A CIDR's address has no host bits set; `::ffff:a.b.c.d/N` (N ≥ 96) is the IPv4 range
 *   `a.b.c.d/(N-96)`. Parsing never throws: failures are data with a message.
 *
 * Hot path (the policy engine normalises a request's ip and walks a bit trie per decision): an
 * address is a few 32-bit words, never a BigInt; `value` builds one only when asked.
 */

export type IpFamily = 4 | 6;

/** An IP address (immutable). Build one with parseIp/parseIpv4/parseIpv6. */
export class Ip {
  /** @internal Use the parse functions. */
  constructor(
    readonly family: IpFamily,
    /** The address in 32-bit words, most significant first: one word for IPv4, four for IPv6. */
    readonly words: readonly number[],
  ) {}

  /** Address width in bits: 32 or 128. */
  get width(): number {
    return this.family === 4 ? 32 : 128;
  }

  /** The address as one number (32 or 128 bits). Allocates: not for hot paths. */
  get value(): bigint {
    let v = 0n;
    for (const w of this.words) v = (v << 32n) | BigInt(w);
    return v;
  }

  /** Canonical text (formatIp). */
  toString(): string {
    return formatIp(this);
  }
}

/** A CIDR range: an address with no host bits set and a prefix length. */
export interface Cidr {
  readonly ip: Ip;
  /** Prefix length, 0–32 for IPv4, 0–128 for IPv6. */
  readonly bits: number;
}

/** Why a CIDR did not parse: `address` (not an IP), `prefix` (bad length), `host-bits` (set). */
export type CidrProblem = 'address' | 'prefix' | 'host-bits';
export type CidrResult =
  | { ok: true; cidr: Cidr }
  | {
      ok: false;
      problem: CidrProblem;
      /** Lower case, the input in double quotes. */
      message: string;
      /** For `host-bits`: the network the author probably meant. */
      network?: Cidr;
    };

/** Longer text is never an address (45 characters of IPv6 plus a zone id of reasonable length). */
const MAX_IP_TEXT = 100;

// ---- IPv4 ---------------------------------------------------------------------------------------

/** Strict dotted quad between from and to, as a 32-bit number; -1 when it is not one. */
function scanV4(s: string, from: number, to: number): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = from; i <= to; i++) {
    const c = i === to ? 46 : s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3) return -1;
    } else return -1;
  }
  return parts === 4 ? value : -1;
}

/** A strict dotted-quad IPv4 address, or undefined. */
export function parseIpv4(text: string): Ip | undefined {
  const n = scanV4(text, 0, text.length);
  return n < 0 ? undefined : new Ip(4, [n]);
}

// ---- IPv6 ---------------------------------------------------------------------------------------

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** RFC 6874 ZoneID: 1*( unreserved ) (a percent-encoded zone is the URL's business, not ours). */
function validZone(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok =
      (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95;
    if (!ok && c !== 126 /* ~ */) return false;
  }
  return true;
}

/**
 * IPv6 text (zone id allowed) → eight 16-bit groups, or undefined. Scans once: groups before the
 * `::` go to the head, after it to the tail; a dotted quad may end the address.
 */
function scanV6(s: string): number[] | undefined {
  let end = s.indexOf('%');
  if (end >= 0) {
    if (!validZone(s, end + 1)) return undefined;
  } else end = s.length;
  if (end < 2) return undefined;
  const head: number[] = [];
  const tail: number[] = [];
  let groups = head;
  let gap = false;
  let i = 0;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return undefined; // a lone leading ':'
    gap = true;
    groups = tail;
    i = 2;
    if (i === end) return [0, 0, 0, 0, 0, 0, 0, 0];
  }
  for (;;) {
    // One group: hex digits up to ':' or the end; or a dotted quad that ends the address.
    const start = i;
    let g = 0;
    while (i < end) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      g = g * 16 + d;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 46 /* . */) {
      const v4 = scanV4(s, start, end);
      if (v4 < 0 || head.length + tail.length > 6) return undefined;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
      i = end;
      break;
    }
    const len = i - start;
    if (len === 0 || len > 4) return undefined;
    groups.push(g);
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return undefined;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap) return undefined; // a second '::'
      gap = true;
      groups = tail;
      i++;
      if (i === end) break;
    } else if (i === end) return undefined; // a trailing single ':'
    if (head.length + tail.length > 8) return undefined;
  }
  const total = head.length + tail.length;
  if (gap ? total > 7 : total !== 8) return undefined;
  const out = head.slice();
  for (let k = total; k < 8; k++) out.push(0);
  for (const t of tail) out.push(t);
  return out;
}

/** Groups → address; ::ffff:0:0/96 becomes its IPv4 address. */
function fromGroups(g: readonly number[]): Ip {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return new Ip(4, [g[6]! * 65536 + g[7]!]);
  return new Ip(6, [g[0]! * 65536 + g[1]!, g[2]! * 65536 + g[3]!, g[4]! * 65536 + g[5]!, g[6]! * 65536 + g[7]!]);
}

/** IPv6 text (no brackets; a zone id is dropped), or undefined. A mapped address comes back as IPv4. */
export function parseIpv6(text: string): Ip | undefined {
  if (text.length > MAX_IP_TEXT) return undefined;
  const g = scanV6(text);
  return g === undefined ? undefined : fromGroups(g);
}

/** A dotted-quad IPv4 or an IPv6 address (see parseIpv4, parseIpv6), or undefined. */
export function parseIp(text: string): Ip | undefined {
  const n = scanV4(text, 0, text.length);
  if (n >= 0) return new Ip(4, [n]);
  return text.includes(':') ? parseIpv6(text) : undefined;
}

// ---- text out -----------------------------------------------------------------------------------

function groupsOf(ip: Ip): number[] {
  const out: number[] = [];
  for (const w of ip.words) out.push(Math.floor(w / 65536), w % 65536);
  return out;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6. */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const n = ip.words[0]!;
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const g = groupsOf(ip);
  // RFC 5952 §4.2: compress the longest run of at least two zero groups; the first on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** `address/bits`, canonical. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.ip)}/${c.bits}`;
}

// ---- comparisons --------------------------------------------------------------------------------

export function ipEqual(a: Ip, b: Ip): boolean {
  if (a.family !== b.family) return false;
  const x = a.words;
  const y = b.words;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Bit i of the address, 0 being the most significant. */
export function ipBit(ip: Ip, i: number): number {
  return (ip.words[i >>> 5]! >>> (31 - (i & 31))) & 1;
}

/** The top `bits` bits of a 32-bit word as a mask (bits 0–32). */
function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** The address with everything after the first `bits` bits cleared. */
function maskIp(ip: Ip, bits: number): Ip {
  return new Ip(
    ip.family,
    ip.words.map((w, k) => (w & wordMask(bits - 32 * k)) >>> 0),
  );
}

/** True when ip is inside the range; never across families. */
export function cidrContains(c: Cidr, ip: Ip): boolean {
  if (c.ip.family !== ip.family) return false;
  const a = c.ip.words;
  const b = ip.words;
  for (let k = 0; k < a.length; k++) {
    const m = wordMask(c.bits - 32 * k);
    if (m === 0) return true;
    if (((a[k]! ^ b[k]!) & m) !== 0) return false;
  }
  return true;
}

// ---- CIDRs --------------------------------------------------------------------------------------

/**
 * "addr/bits" or a bare address (a /32 or /128). A zone id is dropped; `::ffff:a.b.c.d/N` with
 * N ≥ 96 is the IPv4 range `a.b.c.d/(N-96)` (a shorter prefix has the ffff bits as host bits).
 */
export function parseCidr(text: string): CidrResult {
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  let groups: number[] | undefined;
  let family: IpFamily = 4;
  const v4 = scanV4(addr, 0, addr.length);
  if (v4 < 0) {
    groups = addr.includes(':') && addr.length <= MAX_IP_TEXT ? scanV6(addr) : undefined;
    if (groups === undefined)
      return { ok: false, problem: 'address', message: `"${text}" is not an IP address or CIDR` };
    family = 6;
  }
  const width = family === 4 ? 32 : 128;
  let bits = width;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > width)
      return { ok: false, problem: 'prefix', message: `"${text}" has an invalid prefix length (0 to ${width})` };
    bits = Number(b);
  }
  // Host bits are judged on the address as written (128 bits for IPv6 text), then a mapped
  // range is unwrapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
  const raw = family === 4 ? new Ip(4, [v4]) : fromGroups(groups!);
  const written = family === 4 || raw.family === 6 ? raw : new Ip(6, [0, 0, 0xffff, raw.words[0]!]);
  const net = maskIp(written, bits);
  const unwrap = (c: Cidr): Cidr =>
    c.ip.family === 6 && bits >= 96 && raw.family === 4 ? { ip: new Ip(4, [c.ip.words[3]!]), bits: bits - 96 } : c;
  if (!ipEqual(net, written)) {
    const network = unwrap({ ip: net, bits });
    return {
      ok: false,
      problem: 'host-bits',
      message: `CIDR "${text}" has host bits set (the network is ${formatCidr(network)})`,
      network,
    };
  }
  return { ok: true, cidr: unwrap({ ip: raw.family === 4 && family === 6 ? written : raw, bits }) };
}

// ---- addresses inside addresses -----------------------------------------------------------------

/**
 * The IPv4 address an IPv6 address carries for the transition mechanisms that route to it:
 * NAT64 (64:ff9b::/96, RFC 6052), 6to4 (2002::/16, RFC 3056) and the deprecated IPv4-compatible
 * form (::a.b.c.d, except :: and ::1, which are addresses in their own right). A gate checks that
 * address too, so that 64:ff9b::7f00:1 cannot reach 127.0.0.1 through a NAT64 gateway.
 */
export function embeddedIpv4(ip: Ip): Ip | undefined {
  if (ip.family !== 6) return undefined;
  const [w0, w1, w2, w3] = ip.words as [number, number, number, number];
  if (w0 === 0x0064ff9b && w1 === 0 && w2 === 0) return new Ip(4, [w3]);
  if (w0 >>> 16 === 0x2002) return new Ip(4, [((w0 & 0xffff) * 65536 + (w1 >>> 16)) >>> 0]);
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 > 1) return new Ip(4, [w3]);
  return undefined;
}
