// The one IP/CIDR module (src/ip.ts) against implementations that are not ours: node:net's isIP
// (which spellings are addresses), the WHATWG URL host serialiser (RFC 5952 text for IPv6) and
// node:net's BlockList (CIDR containment), plus the decisions that are ours alone (mapped
// addresses are IPv4, no IPv4 address is inside an IPv6 range, leading zeros are refused).
import fc from 'fast-check';
import t from 'tap';
import { BlockList, isIP } from 'node:net';
import {
  type Ip,
  cidrContains,
  embeddedIpv4,
  formatCidr,
  formatIp,
  ipBit,
  ipEqual,
  parseCidr,
  parseIp,
  parseIpv4,
  parseIpv6,
} from '../src/ip.js';

const RUNS = 2000;
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const dotted = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** Eight 16-bit groups, zero-heavy so that runs of zeros (and their compression) are common. */
const groups = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8,
});
const isMapped = (g: number[]): boolean => g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;

/** One of the many RFC 4291 spellings of the groups: any zero run as `::`, any case, padding, a dotted tail. */
const spelling = (g: number[]) =>
  fc
    .record({
      gapAt: fc.integer({ min: -1, max: 7 }),
      gapLen: fc.integer({ min: 1, max: 8 }),
      upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      dottedTail: fc.boolean(),
    })
    .map(({ gapAt, gapLen, upper, pad, dottedTail }) => {
      const text = (i: number): string => {
        const h = g[i]!.toString(16).padStart(Math.min(4, g[i]!.toString(16).length + pad[i]!), '0');
        return upper[i] ? h.toUpperCase() : h;
      };
      const cells: string[] = [];
      const last = dottedTail ? 6 : 8;
      for (let i = 0; i < last; i++) cells.push(text(i));
      if (dottedTail) cells.push(dotted(g[6]! * 65536 + g[7]!));
      // Compress a run of zero groups that starts at gapAt (if there is one there).
      let len = 0;
      while (gapAt >= 0 && len < gapLen && gapAt + len < last && g[gapAt + len] === 0) len++;
      if (len === 0) return cells.join(':');
      return `${cells.slice(0, gapAt).join(':')}::${cells.slice(gapAt + len).join(':')}`;
    });

t.test(
  'RFC 5952 text: lower case, no leading zeros, the longest zero run compressed (the first on a tie)',
  async (tt) => {
    const cases: Array<[string, string]> = [
      ['2001:0DB8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // tie: the first run
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is never "::"
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longer run, not the first
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['fe80::1%eth0', 'fe80::1'], // a zone names an interface, not another address
      ['::ffff:127.0.0.1', '127.0.0.1'], // mapped: the IPv4 address
      ['::FFFF:7F00:1', '127.0.0.1'],
      ['64:ff9b::127.0.0.1', '64:ff9b::7f00:1'],
      ['::1.2.3.4', '::102:304'],
    ];
    for (const [text, want] of cases) tt.equal(parseIp(text)?.toString(), want, text);
  },
);

t.test('refused spellings: leading zeros, shorthand, a second "::", too many groups, bad zones', async (tt) => {
  for (const bad of [
    '010.0.0.1',
    '127.1',
    '1.2.3.256',
    '1.2.3.4.5',
    ' 1.2.3.4',
    '1::2::3',
    '12345::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    ':1::',
    '1::2:',
    '::01.2.3.4',
    '1:2:3:4:5:6:7:1.2.3.4',
    'fe80::1%',
    'fe80::1%a b',
    '[::1]',
    '',
    `${'0:'.repeat(60)}1`,
  ])
    tt.equal(parseIp(bad), undefined, JSON.stringify(bad));
  tt.equal(parseIpv4('::1'), undefined, 'parseIpv4 is IPv4 only');
  tt.equal(parseIpv6('1.2.3.4'), undefined, 'parseIpv6 is IPv6 text only');
});

t.test('CIDRs: mapped ranges are IPv4, host bits are refused with the network, families never mix', async (tt) => {
  const ok = (s: string) => {
    const r = parseCidr(s);
    return r.ok ? formatCidr(r.cidr) : `${r.problem}: ${r.message}`;
  };
  tt.equal(ok('10.0.0.0/8'), '10.0.0.0/8');
  tt.equal(ok('10.0.0.7'), '10.0.0.7/32', 'a bare address is a /32');
  tt.equal(ok('2001:DB8::/32'), '2001:db8::/32');
  tt.equal(ok('::ffff:10.0.0.0/104'), '10.0.0.0/8');
  tt.equal(ok('::ffff:0:0/96'), '0.0.0.0/0');
  tt.equal(ok('10.0.0.1/8'), 'host-bits: CIDR "10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)');
  tt.equal(ok('2001:db8::1/32'), 'host-bits: CIDR "2001:db8::1/32" has host bits set (the network is 2001:db8::/32)');
  tt.equal(ok('10.0.0.0/33'), 'prefix: "10.0.0.0/33" has an invalid prefix length (0 to 32)');
  tt.equal(ok('::/129'), 'prefix: "::/129" has an invalid prefix length (0 to 128)');
  tt.equal(ok('10.0.0.0/+8'), 'prefix: "10.0.0.0/+8" has an invalid prefix length (0 to 32)');
  tt.equal(ok('ten/8'), 'address: "ten/8" is not an IP address or CIDR');
  const all6 = parseCidr('::/0');
  const all4 = parseCidr('0.0.0.0/0');
  if (!all6.ok || !all4.ok) throw new Error('unreachable');
  tt.notOk(cidrContains(all6.cidr, parseIp('1.2.3.4')!), 'an IPv4 address is not inside ::/0');
  tt.notOk(cidrContains(all6.cidr, parseIp('::ffff:1.2.3.4')!), 'nor is a mapped one (it is IPv4)');
  tt.notOk(cidrContains(all4.cidr, parseIp('::1')!), 'an IPv6 address is not inside 0.0.0.0/0');
  tt.ok(cidrContains(all4.cidr, parseIp('::ffff:1.2.3.4')!), 'a mapped address is inside IPv4 ranges');
});

t.test('embedded IPv4: NAT64, 6to4 and IPv4-compatible addresses carry one; :: and ::1 do not', async (tt) => {
  const e = (s: string): string | undefined => {
    const x = embeddedIpv4(parseIp(s)!);
    return x && formatIp(x);
  };
  tt.equal(e('64:ff9b::a9fe:a9fe'), '169.254.169.254');
  tt.equal(e('2002:7f00:1::1'), '127.0.0.1');
  tt.equal(e('::127.0.0.1'), '127.0.0.1');
  tt.equal(e('::1'), undefined);
  tt.equal(e('::'), undefined);
  tt.equal(e('2001:db8::1'), undefined);
  tt.equal(e('10.0.0.1'), undefined, 'an IPv4 address embeds nothing');
});

t.test(
  'property: every spelling of an IPv6 address parses, node:net agrees, and the text is the URL host',
  async (tt) => {
    fc.assert(
      fc.property(
        groups.chain((g) => fc.tuple(fc.constant(g), spelling(g))),
        ([g, text]) => {
          if (isIP(text) !== 6) return false;
          const ip = parseIp(text);
          if (ip === undefined) return false;
          // The WHATWG serialiser compresses like RFC 5952 but prints mapped addresses in hex;
          // ours are IPv4 by decision.
          const want = isMapped(g) ? dotted(g[6]! * 65536 + g[7]!) : new URL(`http://[${text}]/`).hostname.slice(1, -1);
          const out = formatIp(ip);
          return out === want && ipEqual(parseIp(out)!, ip) && formatIp(parseIp(out)!) === out;
        },
      ),
      { numRuns: RUNS },
    );
    tt.pass();
  },
);

t.test('property: a string is an address for us exactly when node:net says so (zone ids aside)', async (tt) => {
  const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''));
  const mutated = groups
    .chain((g) => spelling(g))
    .chain((s) =>
      fc.tuple(fc.integer({ min: 0, max: s.length }), fc.integer({ min: 0, max: 2 }), chars).map(([i, op, c]) => {
        if (op === 0) return s.slice(0, i) + s.slice(i + 1); // drop a character
        if (op === 1) return s.slice(0, i) + c + s.slice(i); // insert one
        return s.slice(0, i) + c + s.slice(i + 1); // replace one
      }),
    );
  const v4ish = fc
    .array(fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '0x1', '')), {
      minLength: 1,
      maxLength: 5,
    })
    .map((p) => p.join('.'));
  fc.assert(
    fc.property(fc.oneof(mutated, v4ish, fc.string({ unit: chars, maxLength: 45 })), (s) => {
      const ours = parseIp(s);
      const theirs = isIP(s);
      if (theirs === 0) return ours === undefined;
      // node:net keeps mapped addresses as IPv6; ours are IPv4.
      return ours !== undefined && (ours.family === theirs || (theirs === 6 && ours.family === 4));
    }),
    { numRuns: RUNS },
  );
  tt.pass();
});

function bitsOf(ip: Ip): boolean[] {
  return Array.from({ length: ip.width }, (_, i) => ipBit(ip, i) === 1);
}

function fromBits(family: 4 | 6, bits: boolean[]): Ip {
  const words: number[] = [];
  for (let w = 0; w < bits.length / 32; w++) {
    let n = 0;
    for (let i = 0; i < 32; i++) n = n * 2 + (bits[w * 32 + i] ? 1 : 0);
    words.push(n);
  }
  const text =
    family === 4
      ? dotted(words[0]!)
      : words.map((n) => `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`).join(':');
  return parseIp(text)!;
}

t.test('property: CIDR containment agrees with node:net BlockList (same family, mapped range aside)', async (tt) => {
  const family = fc.constantFrom<4 | 6>(4, 6);
  fc.assert(
    fc.property(
      family.chain((f) => {
        const width = f === 4 ? 32 : 128;
        return fc.tuple(
          fc.constant(f),
          fc.array(fc.boolean(), { minLength: width, maxLength: width }),
          fc.integer({ min: 0, max: width }),
          // The probe keeps the network's first `keep` bits and takes the rest at random, so that
          // both answers of containment are common.
          fc.integer({ min: 0, max: width }),
          fc.array(fc.boolean(), { minLength: width, maxLength: width }),
        );
      }),
      ([f, netBits, prefix, keep, noise]) => {
        // The IPv6 side stays outside ::ffff:0:0/96 (those addresses are IPv4 for us).
        if (f === 6) netBits[0] = true;
        const base = fromBits(
          f,
          netBits.map((b, i) => b && i < prefix),
        );
        const probe = fromBits(
          f,
          netBits.map((b, i) => (i < keep ? b : noise[i]!)),
        );
        const parsed = parseCidr(`${formatIp(base)}/${prefix}`);
        if (!parsed.ok) return false;
        const list = new BlockList();
        list.addSubnet(formatIp(base), prefix, f === 4 ? 'ipv4' : 'ipv6');
        const theirs = list.check(formatIp(probe), f === 4 ? 'ipv4' : 'ipv6');
        // Host bits: parseCidr refuses exactly the addresses that are not their own network.
        const withHost = parseCidr(`${formatIp(probe)}/${prefix}`);
        const isNetwork = bitsOf(probe).every((b, i) => i < prefix || !b);
        return cidrContains(parsed.cidr, probe) === theirs && withHost.ok === isNetwork;
      },
    ),
    { numRuns: RUNS },
  );
  tt.pass();
});

t.test('property: an IPv4 address and its mapped IPv6 spelling are the same address, in ranges too', async (tt) => {
  fc.assert(
    fc.property(u32, fc.integer({ min: 0, max: 32 }), (n, bits) => {
      const v4 = parseIp(dotted(n))!;
      const mapped = parseIp(`::ffff:${dotted(n)}`)!;
      const hex = parseIp(`0:0:0:0:0:FFFF:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`)!;
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      const a = parseCidr(`${dotted((n & mask) >>> 0)}/${bits}`);
      const b = parseCidr(`::ffff:${dotted((n & mask) >>> 0)}/${bits + 96}`);
      return (
        ipEqual(v4, mapped) &&
        ipEqual(v4, hex) &&
        a.ok &&
        b.ok &&
        formatCidr(a.cidr) === formatCidr(b.cidr) &&
        cidrContains(b.cidr, v4)
      );
    }),
    { numRuns: RUNS },
  );
  tt.pass();
});
