/**
 * The on-disk format (packages/audit/README.md "Format"), shared by the writer and the verifier.
 *
 * A record line is the RFC 8785 canonical JSON of the whole record. `hash` is the hex SHA-256 of
 * the canonical JSON of the record without `hash`; both forms are built from the same
 * canonicalised top-level members, so a record is canonicalised once.
 */
import { hash as oneShotHash } from 'node:crypto';
import { join } from 'node:path';
import { canonicalize, type AuditRecord } from '@portcullis/protocol';

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

export function segmentPath(dir: string, n: number): string {
  return join(dir, SEGMENTS, segmentName(n));
}

// Top-level members in code-unit order; `hash` goes between event_id and outcome.
const BEFORE_HASH = ['action', 'context', 'decision', 'event_id'] as const;
const AFTER_HASH = ['outcome', 'prev', 'principal', 'reasons', 'resource', 'seq', 'source', 'time'] as const;

const MEMBERS = new Set<string>([...BEFORE_HASH, ...AFTER_HASH]);

/**
 * Canonical line and hash of a record given without `hash`. The record is canonicalised once
 * (S, the hash input); the line is S with the hash member spliced in after the members that
 * sort before "hash". Where that is: the canonical text of those members is as long as their
 * plain JSON.stringify text (the same members and values, at most in another order inside an
 * object), so the plain text of the prefix gives the offset without a second canonicalisation.
 */
export function encodeRecord(record: Omit<AuditRecord, 'hash'>): { line: string; hash: string } {
  const r = record as unknown as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!MEMBERS.has(k)) throw new Error(`unknown record member "${k}"`);
  const ordered: Record<string, unknown> = {};
  const prefix: Record<string, unknown> = {};
  for (const k of BEFORE_HASH) if (r[k] !== undefined) ordered[k] = prefix[k] = r[k];
  for (const k of AFTER_HASH) if (r[k] !== undefined) ordered[k] = r[k];
  const s = canonicalize(ordered); // validates every value, so the JSON.stringify below is exact
  const hash = oneShotHash('sha256', s, 'hex');
  const end = JSON.stringify(prefix).length - 1;
  // `action` and `decision` are always present, so the prefix has members; `prev` always follows.
  return { line: s.slice(0, end) + `,"hash":"${hash}",` + s.slice(end + 1), hash };
}

/**
 * The hash input of a canonical record line: the line without its top-level `hash` member.
 * Only for a line already known to be canonical. The member is found by its value: an earlier
 * occurrence of `"hash":"<that value>"` would have to sit inside the very text the value hashes
 * (a SHA-256 fixed point), so the first occurrence is the top-level member.
 */
export function hashInputOf(line: string, hash: string): string | undefined {
  const member = `"hash":"${hash}"`;
  const i = line.indexOf(member);
  if (i < 1) return undefined;
  // Never the last member ("prev" and others follow it), so it is followed by a comma, and
  // preceded by one unless it is the first member.
  return i === 1 ? '{' + line.slice(i + member.length + 1) : line.slice(0, i - 1) + line.slice(i + member.length);
}
