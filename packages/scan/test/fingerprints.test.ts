// Fingerprint files: built from secret values, they carry no plaintext and no unkeyed encoding of
// any secret, differ per salt, round-trip through serialize/parse, and a damaged file is refused
// with a coded error that says where and how to fix it.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import {
  buildFingerprints,
  ENCODINGS,
  type FingerprintFile,
  parseFingerprints,
  serializeFingerprints,
} from '../src/index.js';

const key = new Uint8Array(32).fill(7);
const value = Buffer.from('sk_live_4eC39HqLyjWDarjtT1zdp7dc');
const secrets = [
  { name: 'stripe', version: 1, value },
  { name: 'pin', version: 2, value: Buffer.from('1234') },
  { name: 'binary', version: 1, value: randomBytes(48) },
  // All ones: "/" at every base64 alignment, "_" in base64url, so those forms differ.
  { name: 'ones', version: 1, value: Buffer.alloc(24, 0xff) },
];

function build(salt = new Uint8Array(16)): FingerprintFile {
  return buildFingerprints({ workspace: 'acme', key, secrets, salt, now: new Date('2026-01-02T03:04:05Z') });
}

t.test('a fingerprint file carries no plaintext and no unkeyed encoding of a secret', async (t) => {
  const text = serializeFingerprints(build());
  for (const s of secrets) {
    const v = Buffer.from(s.value);
    for (const enc of [v.toString('latin1'), v.toString('hex'), v.toString('base64'), v.toString('base64url')]) {
      if (enc.length >= 4 && s.name !== 'pin') t.notOk(text.includes(enc.slice(0, 12)), `${s.name} as ${enc}`);
    }
  }
  t.notOk(text.includes(Buffer.from(key).toString('base64url')), 'the workspace key is not in the file');
  t.notOk(text.includes(Buffer.from(key).toString('hex')), 'the workspace key is not in the file (hex)');
});

t.test('every encoding of a secret gets a distinct form; a short secret is omitted with a reason', async (t) => {
  const file = build();
  t.same(file.omitted, [{ name: 'pin', version: 2, reason: 'too-short' }]);
  const stripe = file.secrets.find((s) => s.name === 'stripe');
  t.ok(stripe);
  const encodings = stripe?.forms.map((f) => f.encoding) ?? [];
  // An ASCII token with no characters to escape: url and json fold to the raw form, and its base64
  // has no "+" or "/", so base64url folds to base64: all are left out.
  t.same(encodings, ['raw', 'base64-0', 'base64-1', 'base64-2', 'hex']);
  const ones = file.secrets.find((s) => s.name === 'ones');
  const onesEncodings = ones?.forms.map((f) => f.encoding) ?? [];
  // Alignments whose core is the same run of "/" are one form; each has its base64url twin; the
  // percent-encoding folds back to the raw bytes, so it is no form of its own.
  t.same(onesEncodings, ['raw', 'base64-0', 'base64-1', 'base64url-0', 'base64url-1', 'hex']);
  t.ok(ENCODINGS.includes('base64-2'));
  const digests = new Set(stripe?.forms.map((f) => f.digest));
  t.equal(digests.size, encodings.length);
  const binary = file.secrets.find((s) => s.name === 'binary');
  t.notOk(
    binary?.forms.some((f) => f.encoding === 'json'),
    'a value that is not UTF-8 has no json form',
  );
  t.ok(file.window >= 8 && file.window <= 16);
});

t.test('the same secrets under another salt or another workspace key share no fingerprint', async (t) => {
  const a = build(new Uint8Array(16));
  const b = build(new Uint8Array(16).fill(1));
  const c = buildFingerprints({ workspace: 'acme', key: randomBytes(32), secrets, salt: new Uint8Array(16) });
  const digests = (f: FingerprintFile) => new Set(f.secrets.flatMap((s) => s.forms.map((x) => x.digest)));
  for (const other of [b, c]) {
    t.not(other.scanKey, a.scanKey);
    t.equal([...digests(a)].filter((d) => digests(other).has(d)).length, 0);
  }
  t.same(build(new Uint8Array(16)), a, 'deterministic for a given salt and time');
});

t.test('a file round-trips through serializeFingerprints and parseFingerprints', async (t) => {
  const file = build();
  const text = serializeFingerprints(file);
  t.ok(text.endsWith('\n'));
  t.same(parseFingerprints(text, 'fp.json'), file);
});

t.test('a damaged file is refused with its code, where, and how to fix it', async (t) => {
  const good = JSON.parse(serializeFingerprints(build()));
  const hint = /portcullis vault fingerprints/;
  const cases: [string, string, RegExp][] = [
    ['{"format": ', 'PCX_SCAN_BAD_FINGERPRINTS', /^fp\.json:1:\d+: not valid JSON/],
    ['[]', 'PCX_SCAN_BAD_FINGERPRINTS', /not a fingerprint file/],
    [JSON.stringify({ ...good, version: 1 }), 'PCX_SCAN_FINGERPRINTS_VERSION', /format version 1 is not supported/],
    [JSON.stringify({ ...good, scanKey: 'abc' }), 'PCX_SCAN_BAD_FINGERPRINTS', /scanKey: must be 32 bytes/],
    [JSON.stringify({ ...good, extra: 1 }), 'PCX_SCAN_BAD_FINGERPRINTS', /unknown field "extra"/],
    [JSON.stringify({ ...good, window: 99 }), 'PCX_SCAN_BAD_FINGERPRINTS', /window: must be a whole number/],
  ];
  const broken = structuredClone(good);
  broken.secrets[0].forms[1].encoding = 'rot13';
  cases.push([JSON.stringify(broken), 'PCX_SCAN_BAD_FINGERPRINTS', /secrets\[0\]\.forms\[1\]\.encoding: unknown/]);
  const outside = structuredClone(good);
  outside.secrets[0].forms[0].anchorOffset = outside.secrets[0].forms[0].length;
  cases.push([JSON.stringify(outside), 'PCX_SCAN_BAD_FINGERPRINTS', /anchorOffset: must leave the anchor/]);
  const digest = structuredClone(good);
  digest.secrets[1].forms[0].digest = 'not base64!';
  cases.push([JSON.stringify(digest), 'PCX_SCAN_BAD_FINGERPRINTS', /secrets\[1\]\.forms\[0\]\.digest/]);
  for (const [text, code, message] of cases) {
    t.throws(() => parseFingerprints(text, 'fp.json'), { code, message, hint }, message.source);
  }
});

t.test('a key that is not 32 bytes is a programming error', async (t) => {
  t.throws(() => buildFingerprints({ workspace: 'acme', key: new Uint8Array(16), secrets: [] }), TypeError);
});
