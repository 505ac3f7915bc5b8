/**
 * Replay: re-evaluate the request kept in every record against another policy set and list the
 * decisions that would differ. Pure: the caller supplies the records and the evaluator (the CLI
 * wires in @portcullis/policy, which this package must not depend on).
 *
 * The replayed request is the recorded one minus `context.leases`: the log keeps only lease ids,
 * which cannot be re-verified, so a decision that a lease granted shows up as a difference.
 */
import type { AuditRecord, Decision, DecisionRequest, Effect, Reason } from '@portcullis/protocol';

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
}

export interface ReplayResult {
  total: number;
  differences: ReplayDifference[];
}

export function replayRequest(record: AuditRecord): DecisionRequest {
  const request: DecisionRequest = { principal: record.principal, action: record.action, resource: record.resource };
  if (record.context !== undefined) {
    const { leases: _leases, ...context } = record.context;
    request.context = context;
  }
  return request;
}

export function replay(records: Iterable<AuditRecord>, evaluate: (request: DecisionRequest) => Decision): ReplayResult {
  let total = 0;
  const differences: ReplayDifference[] = [];
  for (const r of records) {
    total++;
    const d = evaluate(replayRequest(r));
    if (d.decision === r.decision) continue;
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
    differences.push(diff);
  }
  return { total, differences };
}
