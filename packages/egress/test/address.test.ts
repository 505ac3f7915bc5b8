import fc from 'fast-check';
import t from 'tap';
import { isIP } from 'node:net';
import { formatIp, parseIp } from '@portcullis/protocol/ip';
import { canonicalHost, parseCidrOption, splitHostPort } from '../src/address.js';
import { Floor } from '../src/floor.js';

const hostOf = (raw: string): string => canonicalHost(raw).host;
const code = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

t.test('IPv4 spellings follow the WHATWG host parser', async (tt) => {
  const cases: Array<[string, string]> = [
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'],
    ['0x7F000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['169.254.43518', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11', '127.0.0.1'], // full-width digits and dots
  ];
  for (const [raw, want] of cases) tt.equal(hostOf(raw), want, raw);
  for (const bad of ['256.0.0.1', '1.2.3.4.5', '09.1.1.1', '0x100000000', '1.2.3.256', '4294967296']) {
    tt.equal(
      code(() => canonicalHost(bad)),
      'PCX_EGRESS_BAD_HOST',
      bad,
    );
  }
});

t.test('IPv6 literals: brackets required, zone ids dropped, mapped unwrapped, RFC 5952 output', async (tt) => {
  const cases: Array<[string, string]> = [
    ['[::1]', '::1'],
    ['[0:0:0:0:0:0:0:1]', '::1'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[::FFFF:7F00:1]', '127.0.0.1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['[fe80::1%eth0]', 'fe80::1'],
    ['[2001:DB8:0:0:1:0:0:1]', '2001:db8::1:0:0:1'],
    ['[2001:db8::0:1]', '2001:db8::1'],
    ['[2001:0db8:0000:0000:0000:0000:0002:0001]', '2001:db8::2:1'],
    ['[64:ff9b::127.0.0.1]', '64:ff9b::7f00:1'],
  ];
  for (const [raw, want] of cases) tt.equal(hostOf(raw), want, raw);
  for (const bad of ['[allowed.com]', '[::1', '[1::2::3]', '[]', '::1'])
    tt.equal(
      code(() => canonicalHost(bad)),
      'PCX_EGRESS_BAD_HOST',
      bad,
    );
});

t.test('names: lower case, one trailing dot, IDN to punycode, refusals', async (tt) => {
  tt.equal(hostOf('API.GitHub.com.'), 'api.github.com');
  tt.equal(hostOf('B\u00fccher.example'), 'xn--bcher-kva.example');
  tt.equal(hostOf('\uff41\uff50\uff49\uff0egithub\uff0ecom'), 'api.github.com', 'full-width letters and dots');
  tt.equal(hostOf('my_host.internal'), 'my_host.internal');
  for (const bad of [
    'evil.com:443.allowed.com',
    'a..b',
    '.a',
    'a b.com',
    'a%2ec.com',
    'xn--zz.com',
    'allowed.com@evil.com',
    'a/b',
    'a\\b',
    'x\u0000y.com',
    '',
    'a.com..',
    'a'.repeat(300),
  ]) {
    tt.equal(
      code(() => canonicalHost(bad)),
      'PCX_EGRESS_BAD_HOST',
      JSON.stringify(bad),
    );
  }
});

t.test('splitHostPort', async (tt) => {
  tt.same(splitHostPort('a.com:443'), { host: 'a.com', port: 443 });
  tt.same(splitHostPort('[::1]:80'), { host: '[::1]', port: 80 });
  tt.same(splitHostPort('a.com', 80), { host: 'a.com', port: 80 });
  tt.same(splitHostPort('127.0.0.1:0', undefined, true), { host: '127.0.0.1', port: 0 });
  for (const bad of ['a.com', 'a.com:', 'a.com:0', 'a.com:65536', 'a.com:+80', 'a.com:0x50', '[::1]x:80', '[::1'])
    tt.ok(
      code(() => splitHostPort(bad)),
      bad,
    );
});

t.test('an operator CIDR option that is wrong is a PCX_EGRESS_BAD_CIDR naming the network meant', async (tt) => {
  tt.equal(
    code(() => parseCidrOption('10.0.0.0/33')),
    'PCX_EGRESS_BAD_CIDR',
  );
  tt.equal(
    code(() => parseCidrOption('ten/8')),
    'PCX_EGRESS_BAD_CIDR',
  );
  try {
    parseCidrOption('10.0.0.1/8');
    tt.fail('host bits accepted');
  } catch (e) {
    tt.match(e, { code: 'PCX_EGRESS_BAD_CIDR', hint: 'did you mean 10.0.0.0/8?' });
  }
});

t.test('the floor', async (tt) => {
  const floor = new Floor();
  const refused = (s: string, port = 80): boolean => floor.check(parseIp(s)!, port) !== undefined;
  for (const a of [
    '127.0.0.1',
    '127.9.9.9',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '::',
    '::1',
    'fe80::1',
    'fd00:ec2::254',
    '64:ff9b::7f00:1',
    '2002:a9fe:a9fe::',
    '224.0.0.1',
    '255.255.255.255',
  ]) {
    tt.ok(refused(a), `${a} refused`);
  }
  for (const a of ['93.184.216.34', '2606:2800:220:1::', '10.0.0.1', '100.100.100.201'])
    tt.notOk(refused(a), `${a} passes to policy`);
  const opened = new Floor({
    allow: [parseCidrOption('127.0.0.0/8')],
    ownEndpoints: [{ cidr: parseCidrOption('127.0.0.1/32'), port: 3128 }],
  });
  tt.equal(opened.check(parseIp('127.0.0.1')!, 80), undefined, 'an opted-out range passes');
  tt.equal(opened.check(parseIp('127.0.0.1')!, 3128)?.rule, 'floor:self', 'the proxy itself never does');
  tt.ok(opened.check(parseIp('169.254.169.254')!, 80), 'other ranges stay refused');
});

// ---- properties ----

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const dotted = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

t.test('property: every WHATWG spelling of an IPv4 address canonicalises to its dotted quad', async (tt) => {
  fc.assert(
    fc.property(
      u32,
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.constantFrom(10, 16, 8), { minLength: 4, maxLength: 4 }),
      (n, parts, radices) => {
        // Split n into `parts` numbers: the last one takes the remaining bytes (WHATWG shorthand).
        const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
        const nums = [...bytes.slice(0, parts - 1), bytes.slice(parts - 1).reduce((a, b) => a * 256 + b, 0)];
        const text = nums
          .map((x, i) =>
            radices[i] === 16 ? `0x${x.toString(16)}` : radices[i] === 8 ? `0${x.toString(8)}` : String(x),
          )
          .join('.');
        const c = canonicalHost(text);
        return c.kind === 'ip' && c.host === dotted(n);
      },
    ),
    { numRuns: 2000 },
  );
  tt.pass();
});

t.test("property: a bracketed IPv6 host is the shared module's canonical text of the address", async (tt) => {
  const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  });
  fc.assert(
    fc.property(groups, (g) => {
      const full = g.map((x) => x.toString(16).toUpperCase()).join(':');
      const c = canonicalHost(`[${full}]`);
      return c.kind === 'ip' && c.host === formatIp(parseIp(full)!) && isIP(c.host) !== 0;
    }),
    { numRuns: 1000 },
  );
  tt.pass();
});

t.test('property: canonicalHost is idempotent and never throws anything but PCX_EGRESS_BAD_HOST', async (tt) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.domain(),
        fc.ipV4().map(String),
        fc.ipV6().map((s) => `[${s}]`),
        fc.ipV4Extended(),
      ),
      (raw) => {
        let first: string;
        try {
          first = canonicalHost(raw).host;
        } catch (e) {
          return (e as { code?: string }).code === 'PCX_EGRESS_BAD_HOST';
        }
        const again = canonicalHost(isIP(first) === 6 ? `[${first}]` : first).host;
        return again === first;
      },
    ),
    { numRuns: 3000 },
  );
  tt.pass();
});
