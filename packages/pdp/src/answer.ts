/**
 * The PDP's answer lines: `{"id":…,"decision":…,"reasons":[…],"policy_version":…,"error":…}`.
 *
 * Promise: an answer never exceeds the frame limit (MAX_FRAME_BYTES), whatever the policy and
 * the request hold. A client drops a connection that sends a larger line, and with it every
 * call pipelined on it; so a decision whose reasons would not fit (thousands of matching rules,
 * an error message that quotes a 900 KiB attribute) keeps its decision and error code, long
 * strings are cut (protocol's truncateText marks the cut), and the reasons that still do not fit
 * are replaced by one marker reason `{"truncated": N, "because": "…"}` saying how many were left out.
 */
import { MAX_FRAME_BYTES, truncateText, type Decision, type Reason } from '@portcullis/protocol';

const cut = (s: string): string => truncateText(s, MAX_FIELD_CHARS);

/** Longest string field (UTF-16 units) kept in a reason or error of a cut-down answer. */
const MAX_FIELD_CHARS = 1024;
/** Bytes kept free for the id, the version, the error and the marker reason. */
const RESERVE_BYTES = 16 * 1024;

const DECISION_FIELD: Record<string, string> = {
  allow: '"decision":"allow","reasons":[',
  deny: '"decision":"deny","reasons":[',
  ask: '"decision":"ask","reasons":[',
};
/** JSON of the evaluator's reasons, which are frozen objects shared by every decision they explain. */
const reasonJson = new WeakMap<object, string>();

export class AnswerEncoder {
  private lastVersion = '';
  private lastVersionJson = '';

  /**
   * The answer line: `head` (`{"id":…,`) then the decision's fields. Hot path: the reasons a
   * rule produces are frozen and shared, so each is stringified once, ever; the version string
   * once per policy set. Only the fields of the protocol's Decision are written.
   */
  encode(head: string, d: Decision): string {
    const prefix = DECISION_FIELD[d.decision];
    if (prefix === undefined) return this.fit(head, head + JSON.stringify(d).substring(1) + '\n', d);
    let s = head + prefix;
    const reasons = d.reasons;
    for (let i = 0; i < reasons.length; i++) {
      const r = reasons[i]!;
      let j = reasonJson.get(r);
      if (j === undefined) {
        j = JSON.stringify(r);
        if (Object.isFrozen(r)) reasonJson.set(r, j);
      }
      s += i === 0 ? j : ',' + j;
    }
    s += ']' + this.tail(d) + '}\n';
    return this.fit(head, s, d);
  }

  private tail(d: Decision): string {
    let s = '';
    if (d.policy_version !== undefined) {
      if (d.policy_version !== this.lastVersion) {
        this.lastVersion = d.policy_version;
        this.lastVersionJson = ',"policy_version":' + JSON.stringify(d.policy_version);
      }
      s += this.lastVersionJson;
    }
    if (d.error !== undefined) s += ',"error":' + JSON.stringify(d.error);
    return s;
  }

  /**
   * `line` if it fits the frame limit, else the cut-down answer. (A UTF-16 unit is at most 3 UTF-8
   * bytes, so short lines skip the byte count.)
   */
  private fit(head: string, line: string, d: Decision): string {
    if (line.length <= MAX_FRAME_BYTES / 3 || Buffer.byteLength(line) <= MAX_FRAME_BYTES) return line;
    return truncatedAnswer(head, d);
  }
}

function truncatedAnswer(head: string, d: Decision): string {
  const out: Decision = { decision: d.decision === 'allow' || d.decision === 'ask' ? d.decision : 'deny', reasons: [] };
  if (d.policy_version !== undefined) out.policy_version = cut(String(d.policy_version));
  if (d.error !== undefined) out.error = { code: cut(String(d.error.code)), message: cut(String(d.error.message)) };
  let budget = MAX_FRAME_BYTES - RESERVE_BYTES - Buffer.byteLength(head);
  let kept = 0;
  for (const r of d.reasons) {
    const short = shorten(r);
    const bytes = Buffer.byteLength(JSON.stringify(short)) + 1;
    if (bytes > budget) break;
    budget -= bytes;
    out.reasons.push(short);
    kept++;
  }
  const left = d.reasons.length - kept;
  out.reasons.push({
    truncated: left,
    because:
      `${left} more reason(s) left out and long texts cut: ` +
      `the whole answer would exceed the frame limit of ${MAX_FRAME_BYTES} bytes`,
  });
  return head + JSON.stringify(out).substring(1) + '\n';
}

/** A copy of a reason with every long string cut (nested errors included). */
function shorten(r: Reason): Reason {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (typeof v === 'string') out[k] = cut(v);
    else if (k === 'error' && typeof v === 'object' && v !== null)
      out[k] = {
        code: cut(String((v as { code?: unknown }).code)),
        message: cut(String((v as { message?: unknown }).message)),
      };
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    // Anything else (not part of the Reason shape) is dropped: its size is unknown.
  }
  return out as Reason;
}
