/**
 * RFC 6962 / RFC 9162 Merkle tree hashing: leaf and node hashes, an incremental compact range
 * (the stack of perfect-subtree roots) so that the root after each append costs O(log n), the
 * inclusion and consistency proofs of RFC 6962 §2.1, and their verifiers (RFC 9162 §2.1.3.2 and
 * §2.1.4.2). Pure: no I/O.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';

export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

const LEAF_PREFIX = Buffer.from([0x00]);
const scratch = Buffer.allocUnsafe(65);

export function leafHash(data: Uint8Array | string): Buffer {
  // One-shot hashes: this runs once per record when writing and when verifying.
  if (typeof data === 'string') return oneShotHash('sha256', '\u0000' + data, 'buffer') as unknown as Buffer;
  return oneShotHash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer') as unknown as Buffer;
}

/**
 * Leaf hash of the line buf[start, end) where buf[start - 1] is the newline that ends the
 * previous line: that byte is set to the 0x00 prefix for the hash and put back, so a segment is
 * hashed line by line without copying.
 */
export function leafHashInPlace(buf: Buffer, start: number, end: number): Buffer {
  if (start === 0) return leafHash(buf.subarray(0, end));
  const saved = buf[start - 1]!;
  buf[start - 1] = 0x00;
  try {
    return oneShotHash('sha256', buf.subarray(start - 1, end), 'buffer') as unknown as Buffer;
  } finally {
    buf[start - 1] = saved;
  }
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  // One-shot hash over a reused 65-byte buffer: this runs once per leaf on the write and verify paths.
  scratch[0] = 0x01;
  scratch.set(left, 1);
  scratch.set(right, 33);
  return oneShotHash('sha256', scratch, 'buffer') as unknown as Buffer;
}

/** The roots of the perfect subtrees that make up a tree of `size` leaves, largest first. */
export class CompactRange {
  private stack: Buffer[];
  private n: number;

  constructor(size = 0, stack: Buffer[] = []) {
    this.n = size;
    this.stack = stack;
  }

  get size(): number {
    return this.n;
  }

  append(leaf: Buffer): void {
    this.stack.push(leaf);
    // Merge equal-sized subtrees: one merge per trailing 1 bit of the old size.
    for (let m = this.n; m & 1; m = Math.floor(m / 2)) {
      const right = this.stack.pop()!;
      const left = this.stack.pop()!;
      this.stack.push(nodeHash(left, right));
    }
    this.n++;
  }

  root(): Buffer {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let h = this.stack[this.stack.length - 1]!;
    for (let i = this.stack.length - 2; i >= 0; i--) h = nodeHash(this.stack[i]!, h);
    return h;
  }

  clone(): CompactRange {
    return new CompactRange(this.n, this.stack.slice());
  }
}

/** Largest power of two strictly smaller than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[lo:hi]) over leaf hashes. */
export function subtreeRoot(leaves: readonly Buffer[], lo = 0, hi = leaves.length): Buffer {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[lo]!;
  const k = split(n);
  return nodeHash(subtreeRoot(leaves, lo, lo + k), subtreeRoot(leaves, lo + k, hi));
}

/** RFC 6962 PATH(m, D[0:size]): the audit path of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(leaves: readonly Buffer[], index: number, size: number): Buffer[] {
  if (!(index >= 0 && index < size && size <= leaves.length))
    throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  const path = (m: number, lo: number, hi: number): Buffer[] => {
    const n = hi - lo;
    if (n === 1) return [];
    const k = split(n);
    return m < k
      ? [...path(m, lo, lo + k), subtreeRoot(leaves, lo + k, hi)]
      : [...path(m - k, lo + k, hi), subtreeRoot(leaves, lo, lo + k)];
  };
  return path(index, 0, size);
}

/** RFC 6962 PROOF(m, D[0:n]): consistency of the tree of `m` leaves with the tree of `n` leaves. */
export function consistencyProof(leaves: readonly Buffer[], m: number, n: number): Buffer[] {
  if (!(m >= 0 && m <= n && n <= leaves.length)) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  if (m === 0 || m === n) return [];
  const sub = (m: number, lo: number, hi: number, whole: boolean): Buffer[] => {
    const n = hi - lo;
    if (m === n) return whole ? [] : [subtreeRoot(leaves, lo, hi)];
    const k = split(n);
    return m <= k
      ? [...sub(m, lo, lo + k, whole), subtreeRoot(leaves, lo + k, hi)]
      : [...sub(m - k, lo + k, hi, false), subtreeRoot(leaves, lo, lo + k)];
  };
  return sub(m, 0, n, true);
}

/** RFC 9162 §2.1.3.2. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false; // a hash left over: the proof is not the one for this position
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(r).equals(root);
}

/** RFC 9162 §2.1.4.2. Rejects a proof with hashes it does not use. */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(second) && first >= 0 && first <= second)) return false;
  if (first === second) return proof.length === 0 && Buffer.from(firstRoot).equals(secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  // When `first` is a perfect tree its root is the proof's implicit first element.
  const path = isPow2(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(fr).equals(firstRoot) && Buffer.from(sr).equals(secondRoot);
}

function isPow2(n: number): boolean {
  return Number.isInteger(Math.log2(n));
}
