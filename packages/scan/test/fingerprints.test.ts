// Fingerprint files: a secret is recognised in each of its encodings, wherever it sits in a
// longer text, from the file alone; the file holds no plaintext; broken files are refused.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { isPcxError } from '@portcullis/protocol';
import {
  buildFingerprints,
  encodedForms,
  fingerprint,
  MIN_FORM_BYTES,
  parseFingerprints,
  serializeFingerprints,
  type FingerprintFile,
} from '../src/fingerprints.js';

const key = new Uint8Array(randomBytes(32));
const secret = Buffer.from('sk-live-4f9a1c77e2b04d3a9e61f0c2aa85d3e1/+~ x');

function file(): FingerprintFile {
  return buildFingerprints({ workspace: 'alpha', key, secrets: [{ name: 'api/token', version: 2, value: secret }] });
}

/** What a scanner does: slide a window of each entry's length over the text, compare fingerprints. */
function found(f: FingerprintFile, text: string): Set<string> {
  const k = Buffer.from(f.key, 'base64');
  const bytes = Buffer.from(text, 'latin1');
  const hits = new Set<string>();
  for (const e of f.entries) {
    for (let i = 0; i + e.length <= bytes.length; i++) {
      if (fingerprint(k, bytes.subarray(i, i + e.length)) === e.fingerprint) hits.add(e.encoding);
    }
  }
  return hits;
}

t.test('a secret is found raw, in hex, URL-encoded and inside base64 at every alignment', async (t) => {
  const f = file();
  t.ok(found(f, `token=${secret.toString('latin1')};`).has('raw'));
  t.ok(found(f, `x${secret.toString('hex')}y`).has('hex'));
  t.ok(found(f, secret.toString('hex').toUpperCase()).has('hex-upper'));
  // The secret has none of !'()*, which encodeURIComponent keeps and RFC 3986 escapes.
  t.ok(found(f, `q=${encodeURIComponent(secret.toString('latin1'))}&`).has('url'));
  for (const prefix of ['', 'a', 'ab', 'abc', 'Authorization: Basic ']) {
    const b64 = Buffer.concat([Buffer.from(prefix), secret, Buffer.from(' tail')]);
    const std = found(f, b64.toString('base64'));
    const url = found(f, b64.toString('base64url'));
    t.ok(
      [...std].some((e) => e.startsWith('base64/')),
      `base64 with a ${prefix.length}-byte prefix`,
    );
    // Where the two alphabets give the same characters the form is kept once, as base64.
    t.ok(
      [...url].some((e) => e.startsWith('base64')),
      `base64url with a ${prefix.length}-byte prefix`,
    );
  }
  t.same(found(f, 'sk-live-4f9a1c77e2b04d3a9e61f0c2aa85d3e0/+~ x'), new Set(), 'one changed byte is not a match');
});

t.test('the file holds no plaintext and no encoding of it', async (t) => {
  const text = serializeFingerprints(file());
  for (const form of encodedForms(secret)) {
    t.notOk(text.includes(form.bytes.toString('latin1')), `no ${form.encoding} form in the file`);
  }
  t.notOk(text.includes(secret.subarray(0, 12).toString('latin1')), 'not even a prefix');
});

t.test('another key gives other fingerprints (workspaces are not linkable)', async (t) => {
  const other = buildFingerprints({
    workspace: 'beta',
    key: new Uint8Array(randomBytes(32)),
    secrets: [{ name: 'api/token', version: 2, value: secret }],
  });
  const mine = new Set(file().entries.map((e) => e.fingerprint));
  t.notOk(other.entries.some((e) => mine.has(e.fingerprint)));
});

t.test('forms shorter than the minimum are left out, and duplicates once', async (t) => {
  const forms = encodedForms(Buffer.from('abc'));
  t.ok(forms.every((f) => f.bytes.length >= MIN_FORM_BYTES));
  t.notOk(
    forms.some((f) => f.encoding === 'raw'),
    'a 3-byte raw form is too short',
  );
  const plain = encodedForms(Buffer.from('abcdefghijkl')).map((f) => f.encoding);
  t.notOk(plain.includes('url'), 'URL-encoding equal to the raw form is not repeated');
});

t.test('serialize and parse round-trip', async (t) => {
  const f = file();
  t.same(parseFingerprints(serializeFingerprints(f), 'fp.json'), f);
  const empty = buildFingerprints({ workspace: 'alpha', key, secrets: [] });
  t.same(parseFingerprints(serializeFingerprints(empty), 'fp.json'), empty);
});

t.test('broken files are refused with the source and the field', async (t) => {
  const good = JSON.parse(serializeFingerprints(file())) as Record<string, unknown>;
  const entry = (good.entries as Record<string, unknown>[])[0]!;
  const cases: [string, string, RegExp][] = [
    ['not json', '{', /fp\.json: not JSON/],
    ['array', '[]', /not a JSON object/],
    ['format', JSON.stringify({ ...good, format: 'x' }), /"format" is "x"/],
    ['key', JSON.stringify({ ...good, key: 'AAAA' }), /"key" must be 32 bytes/],
    ['entries', JSON.stringify({ ...good, entries: {} }), /"entries" must be an array/],
    [
      'encoding',
      JSON.stringify({ ...good, entries: [{ ...entry, encoding: 'rot13' }] }),
      /entries\[0\]\.encoding "rot13"/,
    ],
    ['length', JSON.stringify({ ...good, entries: [{ ...entry, length: 2 }] }), /entries\[0\]\.length/],
    ['fingerprint', JSON.stringify({ ...good, entries: [{ ...entry, fingerprint: 'abc' }] }), /fingerprint must be 16/],
  ];
  for (const [what, text, message] of cases) {
    try {
      parseFingerprints(text, 'fp.json');
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.ok(isPcxError(e) && e.code === 'PCX_SCAN_BAD_FINGERPRINTS', `${what}: PCX_SCAN_BAD_FINGERPRINTS`);
      t.match((e as Error).message, message, what);
    }
  }
});

t.test('a key of the wrong size is a programming error', async (t) => {
  t.throws(() => buildFingerprints({ workspace: 'a', key: new Uint8Array(16), secrets: [] }), TypeError);
});
