/**
 * The verifier: streams the segments once, checking for every record that it is canonical JSON,
 * that its seq is the next one, that `prev` is the hash of the record before and that `hash` is
 * right; it rebuilds the Merkle tree as it goes and, at each checkpoint's size, compares the
 * recomputed root with the signed one. Successive checkpoints are then consistent by
 * construction (both roots come from one sequence of leaves); a checkpoint whose size is past
 * the end of the log means records were removed. Stops at the first bad record, since every
 * record after it is suspect anyway, and says where.
 */

import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { hash as oneShotHash } from 'node:crypto';
import { GENESIS_PREV, PcxError, canonicalize, type AuditRecord } from '@portcullis/protocol';
import {
  CHECKPOINTS,
  CHECKPOINT_RE,
  ORIGIN_FILE,
  PUBKEY_FILE,
  SEGMENTS,
  SEGMENT_RE,
  checkpointName,
  hashInputOf,
  readOrigin,
  segmentName,
} from './format.js';
import { CompactRange, leafHashInPlace } from './merkle.js';
import { openCheckpoint, parseVerifierKey, type Checkpoint, type VerifierKey } from './note.js';

export interface Problem {
  /** The seq of the first bad record, when the problem is a record. */
  seq?: number;
  /** File (and line) or checkpoint the problem is in. */
  where: string;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  checkpoints: number;
  /** Records after the last checkpoint: chained but not yet covered by a signature. */
  unsigned: number;
  problems: Problem[];
  warnings: string[];
  latest?: Checkpoint;
  /** How many of `against` the log matches. */
  kept: number;
  /** The log's origin (DIR/origin), when it has one. */
  origin?: string;
}

export interface VerifyOptions {
  /** The verifier key (note format). Default: DIR/pubkey, which only proves self-consistency. */
  publicKey?: string;
  /**
   * Checkpoints kept outside the log (copied off the machine, or from a witness), each with the
   * name to report it by. The log must hold their records unchanged. Default: none.
   */
  against?: { name: string; note: string }[];
}

export function loadVerifierKey(dir: string, publicKey: string | undefined): { key: VerifierKey; fromLog: boolean } {
  if (publicKey !== undefined) return { key: parseVerifierKey(publicKey), fromLog: false };
  const path = join(dir, PUBKEY_FILE);
  if (!existsSync(path))
    throw new PcxError('PCX_AUDIT_NO_KEY', `no public key given and ${path} does not exist`, {
      hint: 'pass --pubkey FILE (the .pub file written by "portcullis audit keygen")',
    });
  return { key: parseVerifierKey(readFileSync(path, 'utf8')), fromLog: true };
}

export function listSegments(dir: string): number[] {
  const segDir = join(dir, SEGMENTS);
  if (!existsSync(segDir))
    throw new PcxError('PCX_AUDIT_NOT_A_LOG', `${dir} is not an audit log directory (no ${SEGMENTS}/)`);
  return readdirSync(segDir)
    .filter((n) => SEGMENT_RE.test(n))
    .map((n) => Number(SEGMENT_RE.exec(n)![1]))
    .sort((a, b) => a - b);
}

export async function verifyLog(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  listSegments(dir); // "not a log" before "no key"
  const { key, fromLog } = loadVerifierKey(dir, options.publicKey);
  const problems: Problem[] = [];
  const warnings: string[] = [];
  if (fromLog)
    warnings.push(
      `using the public key stored in the log (${join(dir, PUBKEY_FILE)}): this proves the log is self-consistent, ` +
        `not who signed it; pass --pubkey to check against a key you trust`,
    );

  const originPath = join(dir, ORIGIN_FILE);
  const origin = existsSync(originPath) ? readOrigin(originPath) : undefined;
  if (origin === undefined) problems.push({ where: originPath, message: 'the origin file is missing' });

  // Checkpoints: signatures and origins first; roots are compared while streaming the records.
  const ckDir = join(dir, CHECKPOINTS);
  const names = existsSync(ckDir)
    ? readdirSync(ckDir)
        .filter((n) => !n.startsWith('.'))
        .sort()
    : [];
  const foreign = (c: Checkpoint): string | undefined =>
    origin !== undefined && c.origin !== origin
      ? `origin "${c.origin}" is not this log's origin "${origin}" (a checkpoint of another log)`
      : undefined;
  // Every checkpoint whose root is to be compared, in the log or kept elsewhere, with where it is.
  const pending: { c: Checkpoint; where: string; kept: boolean }[] = [];
  for (const name of names) {
    const where = `checkpoint ${join(CHECKPOINTS, name)}`;
    if (!CHECKPOINT_RE.test(name)) {
      problems.push({ where, message: 'unexpected file in the checkpoints directory' });
      continue;
    }
    const opened = await openCheckpoint(readFileSync(join(ckDir, name), 'utf8'), key);
    if ('error' in opened) problems.push({ where, message: opened.error });
    else if (foreign(opened)) problems.push({ where, message: foreign(opened)! });
    else if (checkpointName(opened.size) !== name)
      problems.push({
        where,
        message:
          `says tree size ${opened.size}, but its file name says ${Number(CHECKPOINT_RE.exec(name)![1])} (a ` +
          `copied or replayed checkpoint)`,
      });
    else pending.push({ c: opened, where, kept: false });
  }
  const checkpoints = pending.length;
  for (const { name, note } of options.against ?? []) {
    const where = `kept checkpoint ${name}`;
    const opened = await openCheckpoint(note, key);
    if ('error' in opened) problems.push({ where, message: opened.error });
    else if (foreign(opened)) problems.push({ where, message: foreign(opened)! });
    else pending.push({ c: opened, where, kept: true });
  }
  pending.sort((a, b) => a.c.size - b.c.size);
  let latest: Checkpoint | undefined;
  let lastVerifiedSize = 0;
  let kept = 0;

  const tree = new CompactRange();
  let seq = 0;
  let prev = GENESIS_PREV;
  const checkRoot = (): void => {
    while (pending.length > 0 && pending[0]!.c.size === seq) {
      const { c, where, kept: isKept } = pending.shift()!;
      if (tree.root().equals(c.root)) {
        if (isKept) kept++;
        else latest = c;
        lastVerifiedSize = Math.max(lastVerifiedSize, c.size);
      } else {
        problems.push({
          where,
          message:
            `signed root does not match records 0..${c.size - 1}: a record between seq ${lastVerifiedSize} ` +
            `and ${c.size - 1} was changed, removed, inserted or reordered (and the chain rewritten to hide it)`,
        });
      }
    }
  };
  checkRoot();

  const segments = listSegments(dir);
  let stop = false;
  let buf = Buffer.allocUnsafe(4 << 20);
  for (let i = 0; i < segments.length && !stop; i++) {
    const n = segments[i]!;
    if (n !== i + 1) {
      problems.push({
        seq,
        where: join(SEGMENTS, segmentName(n)),
        message: `segment ${segmentName(i + 1)} is missing`,
      });
      break;
    }
    const file = join(SEGMENTS, segmentName(n));
    // Streamed in large reads into one reused buffer (reading a whole 64 MiB segment at once
    // costs more in page faults than the reads themselves); a line cut by the buffer's end is
    // moved to the front and completed by the next read.
    const fd = openSync(join(dir, file), 'r');
    try {
      let filled = 0;
      let eof = false;
      let lineNo = 0;
      while (!stop && !(eof && filled === 0)) {
        if (!eof) {
          // a line longer than the buffer
          if (filled === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(buf.length)]);
          const got = readSync(fd, buf, filled, buf.length - filled, null);
          if (got === 0) eof = true;
          filled += got;
        }
        let start = 0;
        for (let nl = buf.indexOf(0x0a, start); nl >= 0 && nl < filled; nl = buf.indexOf(0x0a, start)) {
          lineNo++;
          // Fast path first (plain-ASCII canonical lines, i.e. nearly all); anything it does not
          // accept goes through the reference check, which also says what is wrong.
          let hash = fastCheck(buf.toString('latin1', start, nl), seq, prev);
          if (hash === undefined) {
            const bad = checkRecord(buf.subarray(start, nl), seq, prev);
            if (typeof bad === 'string') {
              problems.push({ seq, where: `${file}:${lineNo}`, message: bad });
              stop = true;
              break;
            }
            hash = bad.hash;
          }
          prev = hash;
          tree.append(leafHashInPlace(buf, start, nl));
          seq++;
          checkRoot();
          start = nl + 1;
        }
        if (stop) break;
        if (eof && filled > start) {
          lineNo++;
          if (i === segments.length - 1)
            warnings.push(
              `${file}: the last line is incomplete (${filled - start} bytes): a write cut short by a crash, or ` +
                `one in progress; the sink cuts it off when it starts`,
            );
          else {
            problems.push({ seq, where: `${file}:${lineNo}`, message: 'incomplete line in the middle of the log' });
            stop = true;
          }
          break;
        }
        buf.copy(buf, 0, start, filled);
        filled -= start;
      }
    } finally {
      closeSync(fd);
    }
  }
  for (const { c, where } of pending) {
    if (!stop) {
      problems.push({
        where,
        message:
          `covers ${c.size} records but the log has only ${seq}: records ${seq}..${c.size - 1} were removed ` +
          `(truncated)`,
      });
    }
  }
  const result: VerifyResult = {
    ok: problems.length === 0,
    records: seq,
    checkpoints,
    unsigned: seq - lastVerifiedSize,
    problems,
    warnings,
    kept,
  };
  if (latest) result.latest = latest;
  if (origin !== undefined) result.origin = origin;
  return result;
}

const HEX64 = /^[0-9a-f]{64}$/;
// Bytes a line may hold for the fast path: printable ASCII without a backslash. Such a string
// needs no escape in JSON, so its canonical form is simply its text between quotes.
const NOT_PLAIN = /[^\x20-\x5b\x5d-\x7e]/;

/**
 * The verifier's hot path: accepts a line only if it is canonical JSON (RFC 8785) whose
 * top-level `seq` is `seq`, `prev` is `prev` and `hash` is the SHA-256 of the line without its
 * `hash` member, and returns that hash; otherwise undefined, and checkRecord (JSON.parse +
 * re-canonicalise, the reference) decides and explains. It never accepts what checkRecord
 * rejects: it only handles lines of plain ASCII without backslashes, where canonical form is a
 * syntactic property that one pass can check — no whitespace, members in strictly increasing
 * code-unit order (so no duplicates), numbers in ECMAScript Number-to-String form, and strings
 * that need no escapes — without building the record and serialising it again.
 */
function fastCheck(s: string, seq: number, prev: string): string | undefined {
  if (s.charCodeAt(0) !== 0x7b /* { */ || NOT_PLAIN.test(s)) return undefined;
  const top = { seqText: '', prevText: '', hashText: '', hashStart: -1, hashEnd: -1 };
  let end: number;
  try {
    end = scanValue(s, 0, top);
  } catch {
    return undefined;
  }
  // (No format check of the stored hash: the comparison with a computed hex digest implies it.)
  if (end !== s.length || top.seqText !== String(seq) || top.prevText !== prev || top.hashStart < 0) return undefined;
  // The hash input is the canonical record without `hash`: cut the member and one comma.
  const { hashStart: a, hashEnd: b } = top;
  const input =
    s.charCodeAt(a - 1) === 0x2c
      ? s.slice(0, a - 1) + s.slice(b)
      : s.charCodeAt(b) === 0x2c
        ? s.slice(0, a) + s.slice(b + 1)
        : s.slice(0, a) + s.slice(b);
  return oneShotHash('sha256', input, 'hex') === top.hashText ? top.hashText : undefined;
}

interface TopLevel {
  seqText: string;
  prevText: string;
  hashText: string;
  hashStart: number;
  hashEnd: number;
}

/**
 * Scan one canonical JSON value at s[i]; returns the index after it, throws if not canonical. `top` collects the
 * top-level seq/prev/hash.
 */
function scanValue(s: string, i: number, top: TopLevel | undefined): number {
  const c = s.charCodeAt(i);
  if (c === 0x22 /* " */) {
    const q = s.indexOf('"', i + 1);
    if (q < 0) throw new Error();
    return q + 1;
  }
  if (c === 0x7b /* { */) {
    if (s.charCodeAt(i + 1) === 0x7d) return i + 2;
    let prevKey: string | undefined;
    for (i++; ; ) {
      if (s.charCodeAt(i) !== 0x22) throw new Error();
      const q = s.indexOf('"', i + 1);
      if (q < 0 || s.charCodeAt(q + 1) !== 0x3a /* : */) throw new Error();
      const key = s.slice(i + 1, q);
      if (prevKey !== undefined && !(prevKey < key)) throw new Error();
      prevKey = key;
      const v = q + 2;
      const after = scanValue(s, v, undefined);
      if (top !== undefined) {
        if (key === 'seq') top.seqText = s.slice(v, after);
        else if (key === 'prev' && s.charCodeAt(v) === 0x22) top.prevText = s.slice(v + 1, after - 1);
        else if (key === 'hash' && s.charCodeAt(v) === 0x22) {
          top.hashText = s.slice(v + 1, after - 1);
          top.hashStart = i;
          top.hashEnd = after;
        }
      }
      i = after;
      const d = s.charCodeAt(i);
      if (d === 0x7d /* } */) return i + 1;
      if (d !== 0x2c /* , */) throw new Error();
      i++;
    }
  }
  if (c === 0x5b /* [ */) {
    if (s.charCodeAt(i + 1) === 0x5d) return i + 2;
    for (i++; ; ) {
      i = scanValue(s, i, undefined);
      const d = s.charCodeAt(i);
      if (d === 0x5d /* ] */) return i + 1;
      if (d !== 0x2c) throw new Error();
      i++;
    }
  }
  if (s.startsWith('true', i)) return i + 4;
  if (s.startsWith('false', i)) return i + 5;
  if (s.startsWith('null', i)) return i + 4;
  // A number: its text must be what ECMAScript's Number-to-String gives for its value.
  let j = i;
  for (
    let d = s.charCodeAt(j);
    (d >= 0x30 && d <= 0x39) || d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65 || d === 0x45;
    d = s.charCodeAt(++j)
  );
  const text = s.slice(i, j);
  if (j === i || String(Number(text)) !== text) throw new Error();
  return j;
}

/**
 * Check one record line (its bytes, without the newline); returns the parsed record, or what is
 * wrong with it. The bytes must be UTF-8: decoding replaces a malformed sequence with U+FFFD, so a
 * check of the decoded text alone would accept a line whose bytes were changed (0xFF for the
 * three bytes of U+FFFD: same text, same hash over the text, different line). With valid UTF-8
 * the text encodes back to exactly these bytes, and the hash is taken over the bytes.
 */
function checkRecord(bytes: Buffer, seq: number, prev: string): AuditRecord | string {
  if (!isUtf8(bytes)) return `record ${seq} is not valid UTF-8 (the line's bytes were edited)`;
  const text = bytes.toString('utf8');
  let r: AuditRecord;
  try {
    r = JSON.parse(text) as AuditRecord;
  } catch {
    return `record ${seq} is not valid JSON`;
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return `record ${seq} is not a JSON object`;
  if (r.seq !== seq) {
    return typeof r.seq === 'number' && r.seq > seq
      ? `expected seq ${seq}, found seq ${r.seq}: records ${seq}..${r.seq - 1} are missing (deleted) or the ` +
          `records were reordered`
      : `expected seq ${seq}, found seq ${String(r.seq)}: a record was inserted, duplicated or reordered`;
  }
  if (r.prev !== prev)
    return (
      `record ${seq}: prev does not match the hash of record ${seq - 1} (a record was changed, inserted, ` +
      `removed or reordered here)`
    );
  // Canonical first (the parsed record re-serialises to exactly the line), then the hash over
  // the line without its hash member: no second serialisation needed.
  let canonical: string;
  try {
    canonical = canonicalize(r);
  } catch (e) {
    return `record ${seq} cannot be canonicalised: ${(e as Error).message}`;
  }
  if (canonical !== text) return `record ${seq} is not in canonical form (the line was edited)`;
  const input = typeof r.hash === 'string' && HEX64.test(r.hash) ? hashInputOf(bytes, r.hash) : undefined;
  if (input === undefined || oneShotHash('sha256', input, 'hex') !== r.hash)
    return `record ${seq}: hash does not match its content (the record was edited)`;
  return r;
}

/** Every leaf hash of the log, in order (for proofs). */
export function readLeaves(dir: string): Buffer[] {
  const leaves: Buffer[] = [];
  for (const n of listSegments(dir)) {
    const buf = readFileSync(join(dir, SEGMENTS, segmentName(n)));
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      leaves.push(leafHashInPlace(buf, start, nl));
      start = nl + 1;
    }
  }
  return leaves;
}

/** Records of the log in order, parsed (complete lines only). */
export function* readRecords(dir: string): Generator<AuditRecord> {
  for (const n of listSegments(dir)) {
    const buf = readFileSync(join(dir, SEGMENTS, segmentName(n)));
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      let r: AuditRecord;
      try {
        r = JSON.parse(buf.toString('utf8', start, nl)) as AuditRecord;
      } catch {
        throw new PcxError('PCX_AUDIT_LOG_CORRUPT', `${join(SEGMENTS, segmentName(n))} has a line that is not JSON`, {
          hint: `run "portcullis audit verify ${dir}" to find where`,
        });
      }
      yield r;
      start = nl + 1;
    }
  }
}
