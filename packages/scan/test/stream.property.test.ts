// Streaming: for any text carrying known secrets and credentials at random places, cut into random
// chunks (so that secrets cross chunk boundaries), the stream reports the same findings with the
// same absolute spans as a one-shot scan, and its concatenated output is the one-shot redacted copy;
// it never holds more than about two windows plus a chunk.
import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { buildFingerprints, createScanner } from '../src/index.js';

const secrets = Array.from({ length: 5 }, (_, i) => ({
  name: `s${i}`,
  version: 1,
  value: Buffer.from(randomBytes(18 + i * 7).toString('base64url')),
}));
const scanner = createScanner({
  fingerprints: buildFingerprints({ workspace: 'w', key: randomBytes(32), secrets }),
});
const words = ['the ', 'log ', 'line\n', '{"a": 1}\n', 'x=y ', 'GET /path HTTP/1.1\r\n', 'é ', '  '];

const piece = fc.oneof(
  fc.constantFrom(...words),
  fc.constantFrom(...secrets.map((s) => s.value.toString())),
  fc.constantFrom(...secrets.map((s) => s.value.toString('hex'))),
  fc.constant('ghp_R4nd0mT0k3nV4lu3xYz9Qw8Er7Ty6Ui5Op4A '),
  fc.constant('-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n'),
);
// Long enough that many texts exceed two windows (about 25 KB), so windows really roll.
const filler = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.tuple(fc.constantFrom(...words), fc.integer({ min: 50, max: 1500 })).map(([w, n]) => w.repeat(n)),
);

let rolled = 0;

t.test('a stream in random chunks finds what a one-shot scan finds, with the same spans', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(piece, filler), { minLength: 20, maxLength: 80 }),
      fc.array(fc.nat(90_000), { maxLength: 30 }),
      (parts, cuts) => {
        const bytes = Buffer.from(parts.join(''));
        if (bytes.length > 2 * scanner.windowBytes) rolled++;
        const whole = scanner.scan(bytes);
        const stream = scanner.stream();
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const found = [];
        const out: Uint8Array[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          const r = stream.write(bytes.subarray(at, p));
          found.push(...r.findings);
          out.push(r.output);
          at = p;
        }
        const last = stream.end();
        found.push(...last.findings);
        out.push(last.output);
        // One-shot findings may overlap (a stream reports the first of overlapping ones).
        const expected = [];
        let end = 0;
        for (const f of whole.findings)
          if (f.start >= end) {
            expected.push(f);
            end = f.end;
          }
        t.same(found, expected);
        t.equal(Buffer.concat(out).toString('latin1'), Buffer.from(whole.redacted).toString('latin1'));
      },
    ),
    { numRuns: 150 },
  );
  t.ok(scanner.windowBytes >= 12_288);
  t.ok(rolled > 10, `${rolled} texts longer than two windows`);
});
