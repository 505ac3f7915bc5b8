/**
 * The on-disk format (packages/audit/README.md "Format"), shared by the writer and the verifier.
 *
 * A record line is the RFC 8785 canonical JSON of the whole record. `hash` is the hex SHA-256 of
 * the canonical JSON of the record without `hash`; both forms are built from the same
 * canonicalised top-level members, so a record is canonicalised once.
 */
import { hash as oneShotHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize, type AuditRecord, type AuditRecordInput } from '@portcullis/protocol';

export const SEGMENTS = 'segments';
export const CHECKPOINTS = 'checkpoints';
export const ORIGIN_FILE = 'origin';
export const PUBKEY_FILE = 'pubkey';
export const INDEX_FILE = 'index.sqlite';
export const LOCK_FILE = 'LOCK';

export function segmentName(n: number): string {
  return `${String(n).padStart(6, '0')}.log`;
}
export const SEGMENT_RE = /^(\d{6,})\.log$/;

export function checkpointName(size: number): string {
  return `${String(size).padStart(16, '0')}.note`;
}
export const CHECKPOINT_RE = /^(\d{16})\.note$/;

/** The origin line stored in DIR/origin: the file without its final newline, nothing trimmed. */
export function readOrigin(path: string): string {
  const text = readFileSync(path, 'utf8');
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

export function segmentPath(dir: string, n: number): string {
  return join(dir, SEGMENTS, segmentName(n));
}

// Top-level members in code-unit order; `hash` goes between event_id and outcome.
const BEFORE_HASH = ['action', 'context', 'decision', 'event_id'] as const;
const AFTER_HASH = [
  'outcome',
  'policy_version',
  'prev',
  'principal',
  'reasons',
  'resource',
  'seq',
  'source',
  'time',
] as const;

const MEMBERS = new Set<string>([...BEFORE_HASH, ...AFTER_HASH]);

/**
 * Canonical line and hash of a record given without `hash`, canonicalising each value once:
 * the members that sort before "hash" and those after it are canonicalised as two objects, B
 * and A. The hash input is B and A joined into one object, and the line is the same with the
 * hash member between them — no second serialisation, no search for where `hash` goes.
 */
export function encodeRecord(record: Omit<AuditRecord, 'hash'>): { line: string; hash: string } {
  return encodeAppended(record, record.seq, record.time, record.prev);
}

/**
 * encodeRecord of `input` with the writer's seq, time and prev (the writer's hot path: no merged copy of the record).
 */
export function encodeAppended(
  input: AuditRecordInput,
  seq: number,
  time: string,
  prev: string,
): { line: string; hash: string } {
  const r = input as unknown as Record<string, unknown>;
  for (const k in r) if (!MEMBERS.has(k)) throw new Error(`unknown record member "${k}"`);
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const k of BEFORE_HASH) if (r[k] !== undefined) before[k] = r[k];
  for (const k of AFTER_HASH) {
    const v = k === 'seq' ? seq : k === 'time' ? time : k === 'prev' ? prev : r[k];
    if (v !== undefined) after[k] = v;
  }
  const b = canonicalize(before); // "{…}" or "{}"
  const a = canonicalize(after);
  const head = b.length > 2 ? b.slice(0, -1) + ',' : '{';
  const tail = a.length > 2 ? ',' + a.slice(1) : '}';
  const hash = oneShotHash('sha256', a.length > 2 ? head + a.slice(1) : b.length > 2 ? b : '{}', 'hex');
  return { line: `${head}"hash":"${hash}"${tail}`, hash };
}

/**
 * The hash input of a canonical record line: the line without its top-level `hash` member.
 * Only for a line already known to be canonical. The member is found by its value: an earlier
 * occurrence of `"hash":"<that value>"` would have to sit inside the very text the value hashes
 * (a SHA-256 fixed point), so the first occurrence is the top-level member.
 */
export function hashInputOf<L extends string | Buffer>(line: L, hash: string): L | undefined {
  const member = `"hash":"${hash}"`;
  const i = line.indexOf(member);
  if (i < 1) return undefined;
  // Never the last member ("prev" and others follow it), so it is followed by a comma, and
  // preceded by one unless it is the first member. (The member is ASCII: as many bytes as characters.)
  const [head, tail] = i === 1 ? [1, i + member.length + 1] : [i - 1, i + member.length];
  if (typeof line === 'string') return (line.slice(0, head) + line.slice(tail)) as L;
  return Buffer.concat([line.subarray(0, head), line.subarray(tail)]) as L;
}
