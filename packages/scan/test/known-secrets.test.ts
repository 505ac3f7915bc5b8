// Known secrets through fingerprints: each secret is found, with its byte span in the original
// text, in every encoding the file covers and however the text wraps, escapes or splits it; a
// text without the secret (or with a near miss) yields nothing; the redacted copy hides each one.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { buildFingerprints, createScanner, parseFingerprints, serializeFingerprints } from '../src/index.js';

const token = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const password = 'c0rrect "horse" \\ battery/staple';
const binary = randomBytes(33);
const file = parseFingerprints(
  serializeFingerprints(
    buildFingerprints({
      workspace: 'acme',
      key: randomBytes(32),
      secrets: [
        { name: 'stripe', version: 3, value: Buffer.from(token) },
        { name: 'db', version: 1, value: Buffer.from(password) },
        { name: 'blob', version: 1, value: binary },
      ],
    }),
  ),
  'fp.json',
);
const scanner = createScanner({ fingerprints: file });

function wrap(s: string, width: number): string {
  return s.replace(new RegExp(`(.{${width}})`, 'g'), '$1\n');
}

const forms: [string, string, string][] = [
  ['raw in a log line', `2026-01-01 INFO key=${token} ok`, 'stripe'],
  ['inside a JSON string', JSON.stringify({ password }), 'db'],
  ['URL-encoded in a query', `GET /login?p=${encodeURIComponent(password)} HTTP/1.1`, 'db'],
  ['hex, upper case', `blob: ${binary.toString('hex').toUpperCase()}`, 'blob'],
  ['base64url', `x=${Buffer.from(token).toString('base64url')}`, 'stripe'],
  ['split across lines of code', `const k = "${token.slice(0, 13)}" +\n  "${token.slice(13)}";`, 'stripe'],
  ['in a shell line continuation', `export K="${token.slice(0, 9)}\\\n${token.slice(9)}"`, 'stripe'],
];
for (const prefix of [0, 1, 2]) {
  const b64 = Buffer.concat([randomBytes(prefix), binary, randomBytes(2)]).toString('base64');
  forms.push([`base64 at alignment ${prefix}, wrapped at 76 columns`, `data:\n${wrap(b64, 76)}\n`, 'blob']);
}

t.test('a known secret is found in every encoding and wrapping, with its span', async (t) => {
  for (const [what, text, name] of forms) {
    const { findings, redacted } = scanner.scan(text);
    t.equal(findings.length >= 1, true, `${what}: found`);
    t.ok(
      findings.every((f) => f.kind === 'known-secret' && f.secret?.name === name),
      `${what}: the right secret`,
    );
    const f = findings[0];
    if (!f) continue;
    const bytes = Buffer.from(text);
    t.ok(f.start >= 0 && f.end <= bytes.length && f.start < f.end, `${what}: a span inside the text`);
    t.match(String(redacted), /\[REDACTED:known-secret\]/, `${what}: redacted`);
    t.notOk(String(redacted).includes(token.slice(8)), `${what}: the token is gone from the redacted copy`);
  }
});

t.test('the span of a raw secret is exactly its bytes', async (t) => {
  const text = `héllo ${token} wörld`;
  const [f] = scanner.scan(text).findings;
  const bytes = Buffer.from(text);
  t.equal(bytes.subarray(f?.start, f?.end).toString(), token);
  t.equal(scanner.scan(text).redacted, 'héllo [REDACTED:known-secret] wörld');
});

t.test('a text without the secret, or with one character changed, has no finding', async (t) => {
  const near = `${token.slice(0, -1)}X`;
  for (const text of [near, 'nothing here', '', token.slice(0, 20), Buffer.from(near).toString('base64')]) {
    t.same(scanner.scan(text).findings, [], JSON.stringify(text));
  }
  t.same(createScanner().scan(token).findings, [], 'no fingerprints: no known secrets');
});
