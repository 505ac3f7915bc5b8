import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  CompactRange,
  EMPTY_ROOT,
  consistencyProof,
  inclusionProof,
  leafHash,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.js';

// Known-answer vectors of RFC 6962 as used by Certificate Transparency (see the file's "source").
const v = JSON.parse(
  readFileSync(new URL('../../../testdata/audit/rfc6962-vectors.json', import.meta.url), 'utf8'),
) as {
  leaves: string[];
  empty_root: string;
  roots: string[];
  inclusion: { index: number; size: number; proof: string[] }[];
  consistency: { first: number; second: number; proof: string[] }[];
};
const hex = (h: string): Buffer => Buffer.from(h, 'hex');
const leaves = v.leaves.map((d) => leafHash(hex(d)));
const root = (n: number): Buffer => hex(v.roots[n - 1]!);

t.test('roots of every prefix of the 8 reference leaves, batch and incremental', async (t) => {
  t.equal(EMPTY_ROOT.toString('hex'), v.empty_root);
  const range = new CompactRange();
  t.equal(range.root().toString('hex'), v.empty_root);
  for (let n = 1; n <= 8; n++) {
    t.equal(subtreeRoot(leaves, 0, n).toString('hex'), v.roots[n - 1], `MTH of ${n}`);
    range.append(leaves[n - 1]!);
    t.equal(range.root().toString('hex'), v.roots[n - 1], `compact range of ${n}`);
  }
});

t.test('inclusion proofs: generated equal the reference, verify, and tampering fails', async (t) => {
  for (const c of v.inclusion) {
    const proof = c.proof.map(hex);
    t.same(
      inclusionProof(leaves, c.index, c.size).map((b) => b.toString('hex')),
      c.proof,
      `path ${c.index}/${c.size}`,
    );
    t.ok(verifyInclusion(c.index, c.size, leaves[c.index]!, proof, root(c.size)), `verifies ${c.index}/${c.size}`);
    t.notOk(verifyInclusion(c.index, c.size, leaves[(c.index + 1) % 8]!, proof, root(c.size)), 'wrong leaf');
    t.notOk(
      verifyInclusion(c.index, c.size, leaves[c.index]!, [...proof, proof[0] ?? leaves[0]!], root(c.size)),
      'extra hash',
    );
    if (proof.length > 0) {
      t.notOk(verifyInclusion(c.index, c.size, leaves[c.index]!, proof.slice(1), root(c.size)), 'missing hash');
      t.notOk(verifyInclusion(c.index + 1, c.size + 1, leaves[c.index]!, proof, root(c.size)), 'wrong position');
    }
  }
});

t.test(
  'consistency proofs: generated equal the reference, verify, and a proof with unused hashes is rejected',
  async (t) => {
    for (const c of v.consistency) {
      const proof = c.proof.map(hex);
      t.same(
        consistencyProof(leaves, c.first, c.second).map((b) => b.toString('hex')),
        c.proof,
        `proof ${c.first}→${c.second}`,
      );
      t.ok(
        verifyConsistency(c.first, c.second, root(c.first), root(c.second), proof),
        `verifies ${c.first}→${c.second}`,
      );
      // A proof that does not use up all its hashes must be rejected (RFC 9162 §2.1.4.2 step 6/7).
      t.notOk(
        verifyConsistency(c.first, c.second, root(c.first), root(c.second), [...proof, leaves[3]!]),
        `extra trailing hash ${c.first}→${c.second}`,
      );
      if (proof.length > 0)
        t.notOk(
          verifyConsistency(c.first, c.second, root(c.first), root(c.second), proof.slice(0, -1)),
          'truncated proof',
        );
    }
    t.notOk(verifyConsistency(2, 5, root(2), root(6), v.consistency[3]!.proof.map(hex)), 'wrong second root');
    t.notOk(verifyConsistency(6, 8, root(5), root(8), v.consistency[2]!.proof.map(hex)), 'wrong first root');
  },
);

t.test('property: proofs from random trees verify, and fail against other roots', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (n, a, b) => {
      const ls = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
      const r = new CompactRange();
      for (const l of ls) r.append(l);
      const full = subtreeRoot(ls);
      if (!r.root().equals(full)) return false;
      const i = a % n;
      if (!verifyInclusion(i, n, ls[i]!, inclusionProof(ls, i, n), full)) return false;
      const m = (b % n) + 1;
      const p = consistencyProof(ls, m, n);
      if (!verifyConsistency(m, n, subtreeRoot(ls, 0, m), full, p)) return false;
      if (m < n && verifyConsistency(m, n, subtreeRoot(ls, 0, m), subtreeRoot(ls, 0, n - 1), p)) return false;
      return !verifyConsistency(m, n, subtreeRoot(ls, 0, m), full, [...p, full]);
    }),
    { numRuns: 300 },
  );
});
