import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { canonicalize, GENESIS_PREV, type AuditRecord } from '@portcullis/protocol';
import { encodeRecord, hashInputOf } from '../src/format.js';

const base: Omit<AuditRecord, 'hash'> = {
  seq: 3,
  time: '2026-01-01T00:00:00.000Z',
  prev: GENESIS_PREV,
  source: 'egress',
  principal: { id: 'a' },
  action: 'x',
  resource: {},
  decision: 'allow',
  reasons: [],
};

type Equal = (found: unknown, wanted: unknown, message?: string) => void;

function expectCanonical(equal: Equal, rec: Omit<AuditRecord, 'hash'>): void {
  const { line, hash } = encodeRecord(rec);
  // Independent of encodeRecord's splicing: hash over the canonical record without hash,
  // line = canonical record with it.
  equal(hash, createHash('sha256').update(canonicalize(rec)).digest('hex'));
  equal(line, canonicalize({ ...rec, hash }));
  equal(hashInputOf(line, hash), canonicalize(rec), 'the verifier recovers the hash input from the line');
}

const eq =
  (t: Test): Equal =>
  (found, wanted, message) =>
    void t.equal(found, wanted, message ?? 'equal');

t.test('line and hash are the canonical forms, with members out of order and index-like keys', async (t) => {
  expectCanonical(eq(t), base);
  expectCanonical(eq(t), {
    ...base,
    event_id: 'e',
    outcome: { status: 200 },
    context: { '10': 1, '9': 2, b: { z: 1, a: [{ y: 1, x: 2 }] }, hash: 'nested "hash" member' },
  });
  expectCanonical(eq(t), {
    ...base,
    resource: { '€': 1, '\r': 2, '😀': 3, '\ufb33': 4 },
    context: { prev: GENESIS_PREV, principal: 'x' },
  });
  t.throws(() => encodeRecord({ ...base, extra: 1 } as never), /unknown record member/);
});

t.test('property: any JSON context and resource', async () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string(), fc.jsonValue()),
      fc.dictionary(fc.string(), fc.jsonValue()),
      (context, resource) => {
        const rec = { ...base, context, resource };
        let ok = true;
        expectCanonical((a, b) => void (ok &&= a === b), rec);
        return ok;
      },
    ),
    { numRuns: 300 },
  );
});
