/**
 * The audit record (docs/architecture.md, "The audit log"): its shape, validation of what a PEP sends,
 * the redaction rules applied before anything is hashed or written, and RFC 8785 canonical JSON.
 *
 * Redaction runs in the client (so a secret never crosses the socket) and again in the sink
 * (so a careless client cannot put one in the log). It is idempotent.
 */
import { PcxError } from './errors.js';
import { leaseId, REDACTED } from './identity.js';
import type { Effect, ErrorInfo, Principal, Reason, RequestContext } from './types.js';

export interface AuditOutcome {
  /** What happened when the decision was enforced, e.g. an HTTP status or "forwarded". */
  status?: string | number;
  bytes?: number;
  error?: ErrorInfo;
}

/** What a PEP sends: the sink adds seq, prev and hash (and time when absent). */
export interface AuditRecordInput {
  /** RFC 3339 time of the decision; the sink fills it in when absent. */
  time?: string;
  /** Which PEP: egress, fsgate, comms, … */
  source: string;
  /** The caller's core event reference, when it has one. */
  event_id?: string;
  principal: Principal;
  action: string;
  resource: Record<string, unknown>;
  /** The request context, redacted: lease tokens become their jti. Kept so that `audit replay` can re-evaluate. */
  context?: RequestContext;
  decision: Effect;
  reasons: Reason[];
  /** The decision's policy_version, when a policy set made it: `audit replay` evaluates against that version. */
  policy_version?: string;
  outcome?: AuditOutcome;
}

/** A record as it stands in the log. `seq` is the 0-based position, which is also its Merkle leaf index. */
export interface AuditRecord extends AuditRecordInput {
  seq: number;
  time: string;
  /** Hex SHA-256 of the previous record (64 zeros for seq 0). */
  prev: string;
  /** Hex SHA-256 of the canonical JSON of this record without `hash`. */
  hash: string;
}

export { REDACTED };
export const GENESIS_PREV = '0'.repeat(64);

const INPUT_KEYS = new Set([
  'time',
  'source',
  'event_id',
  'principal',
  'action',
  'resource',
  'context',
  'decision',
  'reasons',
  'policy_version',
  'outcome',
]);
const EFFECTS = new Set(['allow', 'deny', 'ask']);
// A key that names a credential: its value is replaced wherever it appears in the record.
const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|api[-_]?key|private[-_]?key|credential/i;

function invalid(message: string): PcxError {
  return new PcxError('PCX_AUDIT_INVALID_RECORD', `invalid audit record: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check that `value` is a record a PEP may send, and return it redacted (a deep copy).
 * Throws PcxError PCX_AUDIT_INVALID_RECORD naming the first offending field.
 */
export function prepareAuditRecord(value: unknown): AuditRecordInput {
  if (!isObject(value)) throw invalid('expected a JSON object');
  for (const k of Object.keys(value)) {
    if (k === 'seq' || k === 'prev' || k === 'hash') throw invalid(`"${k}" is assigned by the sink; do not send it`);
    if (!INPUT_KEYS.has(k)) throw invalid(`unknown field "${k}" (allowed: ${[...INPUT_KEYS].join(', ')})`);
  }
  const v = value;
  if (v.time !== undefined && (typeof v.time !== 'string' || Number.isNaN(Date.parse(v.time))))
    throw invalid('"time" must be an RFC 3339 date-time string');
  if (typeof v.source !== 'string' || v.source.length === 0)
    throw invalid('"source" must be a non-empty string (egress, fsgate, comms, …)');
  if (v.event_id !== undefined && typeof v.event_id !== 'string') throw invalid('"event_id" must be a string');
  if (!isObject(v.principal) || typeof v.principal.id !== 'string')
    throw invalid('"principal" must be an object with a string "id"');
  if (typeof v.action !== 'string' || v.action.length === 0) throw invalid('"action" must be a non-empty string');
  if (!isObject(v.resource)) throw invalid('"resource" must be an object');
  if (v.context !== undefined && !isObject(v.context)) throw invalid('"context" must be an object');
  if (typeof v.decision !== 'string' || !EFFECTS.has(v.decision))
    throw invalid('"decision" must be "allow", "deny" or "ask"');
  if (!Array.isArray(v.reasons) || !v.reasons.every(isObject)) throw invalid('"reasons" must be an array of objects');
  if (v.outcome !== undefined && !isObject(v.outcome)) throw invalid('"outcome" must be an object');
  if (v.policy_version !== undefined && (typeof v.policy_version !== 'string' || v.policy_version.length > 128))
    throw invalid('"policy_version" must be a string of at most 128 characters (the decision\'s policy_version)');
  // Canonical JSON must be possible (finite numbers, well-formed strings, plain data), checked
  // here so that a bad value is refused with a reason instead of failing at write time. The
  // check is made by the redacting copy itself (one walk instead of two: this runs for every
  // record in the client and again in the sink); values that get redacted are not checked,
  // since they are not kept.
  try {
    return redact(v) as unknown as AuditRecordInput;
  } catch (e) {
    throw invalid((e as Error).message);
  }
}

function redact(record: Record<string, unknown>): Record<string, unknown> {
  const out = redactValue(record) as Record<string, unknown>;
  const context = record.context;
  // Tokens are secrets whatever their member is called: lease and identity tokens become their ids.
  if (isObject(context) && context.leases !== undefined) {
    (out.context as Record<string, unknown>).leases = Array.isArray(context.leases)
      ? context.leases.map(leaseId)
      : REDACTED;
  }
  if (isObject(context) && context.identity !== undefined)
    (out.context as Record<string, unknown>).identity = leaseId(context.identity);
  return out;
}

// Member names repeat from record to record: remember the verdicts (bounded, so that a client
// sending endless distinct names cannot grow it without limit).
const secretNames = new Map<string, boolean>();
function isSecretName(k: string): boolean {
  let v = secretNames.get(k);
  if (v === undefined) {
    v = SECRET_KEY.test(k);
    if (secretNames.size >= 4096) secretNames.clear();
    secretNames.set(k, v);
  }
  return v;
}

/** A checked, redacted deep copy; throws (as check does) on what canonical JSON cannot hold. */
function redactValue(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      check(v);
      return v;
    case 'object': {
      if (v === null) return v;
      if (Array.isArray(v)) {
        return v.map((x) => {
          if (x === undefined) throw new Error('an array holds undefined, which is not JSON data');
          return redactValue(x);
        });
      }
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function')
        throw new Error('an object with toJSON() is not plain JSON data');
      // Members are copied in code-unit order, so that canonicalising the record later takes the
      // fast path (see canonicalize).
      // (Array.prototype.sort's default order is by UTF-16 code units, as RFC 8785 wants.)
      // A null-prototype copy: member names are chosen by whoever sent the record, and assigning
      // "__proto__" on a plain object would set its prototype instead of adding the member, so
      // that subtree (and whatever it hides) would vanish from the record that gets hashed.
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const k of Object.keys(v).sort()) {
        if (ANY_SURROGATE.test(k) && LONE_SURROGATE.test(k))
          throw new Error('a member name contains a lone surrogate (not valid Unicode)');
        const x = (v as Record<string, unknown>)[k];
        // undefined: an absent member, as JSON.stringify
        if (x !== undefined) out[k] = isSecretName(k) ? REDACTED : redactValue(x);
      }
      return out;
    }
    default:
      return check(v); // throws: not JSON data
  }
}

// ---------------------------------------------------------------------------------------------
// RFC 8785 JSON Canonicalization Scheme.

const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * RFC 8785 canonical JSON of a JSON value: object members sorted by the UTF-16 code units of
 * their names, numbers in ECMAScript Number-to-String form, strings escaped as ECMAScript
 * JSON.stringify does, no whitespace. Throws on what I-JSON forbids: non-finite numbers, lone
 * surrogates, and values that are not JSON data (bigint, functions, symbols).
 *
 * Hot path (every record is canonicalised when written and again when verified): for a finite
 * number and a well-formed string JSON.stringify already emits the JCS form (-0 included), so
 * the value is checked and its keys' iteration order tested in one walk, and when every object
 * is already in order (always so for a record parsed from a canonical line) the native
 * JSON.stringify does the serialising.
 */
export function canonicalize(value: unknown): string {
  return check(value) ? JSON.stringify(value) : slowCanonical(value);
}

/** Validate; return whether every object's keys are already in code-unit order. */
function check(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      // Cheap test first: almost no string has any surrogate at all.
      if (ANY_SURROGATE.test(value) && LONE_SURROGATE.test(value))
        throw new Error('string contains a lone surrogate (not valid Unicode)');
      return true;
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`number ${value} has no JSON form`);
      return true;
    case 'boolean':
      return true;
    case 'object': {
      if (value === null) return true;
      let sorted = true;
      if (Array.isArray(value)) {
        for (const x of value) {
          if (x === undefined) throw new Error('an array holds undefined, which is not JSON data');
          if (!check(x)) sorted = false;
        }
        return sorted;
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
        throw new Error('an object with toJSON() is not plain JSON data');
      let prev: string | undefined;
      for (const k of Object.keys(value)) {
        if (ANY_SURROGATE.test(k) && LONE_SURROGATE.test(k))
          throw new Error('a member name contains a lone surrogate (not valid Unicode)');
        if (prev !== undefined && !(prev < k)) sorted = false;
        prev = k;
        const x = (value as Record<string, unknown>)[k];
        if (x !== undefined && !check(x)) sorted = false; // undefined: an absent member, as JSON.stringify
      }
      return sorted;
    }
    default:
      throw new Error(`a ${typeof value} is not JSON data`);
  }
}

/** The general path, for values with members out of order: serialise member by member. */
function slowCanonical(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(slowCanonical).join(',') + ']';
  const parts: string[] = [];
  for (const k of Object.keys(value).sort(compareCodeUnits)) {
    const x = (value as Record<string, unknown>)[k];
    if (x !== undefined) parts.push(JSON.stringify(k) + ':' + slowCanonical(x));
  }
  return '{' + parts.join(',') + '}';
}

/** Order of strings by UTF-16 code units (RFC 8785 §3.2.3), independent of locale. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
