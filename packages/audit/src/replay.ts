/**
 * Replay: re-evaluate the request kept in every record and list the decisions that differ —
 * against the policy version named in each record (did the log record what that policy set
 * decides? then reasons must match too), or against a candidate set (what would change?).
 * Pure: the caller supplies the records and the evaluator (the CLI wires in @portcullis/policy
 * and the PDP's kept versions, which this package must not depend on).
 *
 * The replayed request is the recorded one minus `context.leases`: the log keeps only lease ids,
 * which cannot be re-verified, so a decision that a lease granted shows up as a difference.
 */
import {
  canonicalize,
  type AuditRecord,
  type Decision,
  type DecisionRequest,
  type Effect,
  type Reason,
} from '@portcullis/protocol';

export interface ReplayDifference {
  seq: number;
  time: string;
  principal: string;
  action: string;
  recorded: Effect;
  replayed: Effect;
  /** The replayed decision's reasons. */
  reasons: Reason[];
  /** Set when the recorded decision was a failure (PDP unreachable, malformed request), not a policy decision. */
  recorded_error?: string;
  /** Set when the record's decision involved a lease (which replay cannot re-verify). */
  used_lease?: boolean;
  /** Set (with `reasons: true`) when the decisions agree but their reasons do not; `recorded_reasons` has the log's. */
  reasons_differ?: boolean;
  recorded_reasons?: Reason[];
}

export interface ReplayResult {
  total: number;
  differences: ReplayDifference[];
  /** Records the evaluator had nothing to evaluate with (e.g. no policy_version: no policy set made them). */
  unreplayed: number;
}

export interface ReplayOptions {
  /** Compare the reasons too (as canonical JSON), not only the decision. Default false. */
  reasons?: boolean;
}

/** Decides a replayed request; undefined when this record cannot be replayed (it is counted, not compared). */
export type ReplayEvaluator = (request: DecisionRequest, record: AuditRecord) => Decision | undefined;

export function replayRequest(record: AuditRecord): DecisionRequest {
  const request: DecisionRequest = { principal: record.principal, action: record.action, resource: record.resource };
  if (record.context !== undefined) {
    const { leases: _leases, ...context } = record.context;
    request.context = context;
  }
  return request;
}

export function replay(
  records: Iterable<AuditRecord>,
  evaluate: ReplayEvaluator,
  options: ReplayOptions = {},
): ReplayResult {
  let total = 0;
  let unreplayed = 0;
  const differences: ReplayDifference[] = [];
  for (const r of records) {
    total++;
    const d = evaluate(replayRequest(r), r);
    if (d === undefined) {
      unreplayed++;
      continue;
    }
    const reasonsDiffer = options.reasons === true && canonicalize(d.reasons) !== canonicalize(r.reasons);
    if (d.decision === r.decision && !reasonsDiffer) continue;
    const diff: ReplayDifference = {
      seq: r.seq,
      time: r.time,
      principal: r.principal.id,
      action: r.action,
      recorded: r.decision,
      replayed: d.decision,
      reasons: d.reasons,
    };
    const err = r.reasons.find((x) => x.error !== undefined)?.error;
    if (err) diff.recorded_error = err.code;
    if (r.reasons.some((x) => x.lease !== undefined)) diff.used_lease = true;
    if (reasonsDiffer) {
      diff.reasons_differ = true;
      diff.recorded_reasons = r.reasons;
    }
    differences.push(diff);
  }
  return { total, differences, unreplayed };
}
