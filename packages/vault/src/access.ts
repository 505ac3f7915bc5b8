/**
 * Releasing secrets: the one path by which a plaintext leaves the vault to a person or a
 * process. For each secret asked for: ask the PDP (`secret.read` for `vault get`,
 * `secret.inject` for `vault exec` and the exec gate) with `resource.name` and
 * `resource.workspace`; write an audit record (name, version, workspace — never the value) and
 * wait for the sink's ack; only then decrypt.
 *
 * All or nothing: if any secret is not allowed (a deny, an ask, a PDP that cannot be reached),
 * or any record is not acknowledged, none is decrypted. Every decision is audited, the refused
 * ones too. Failure is fail-closed: an unreachable PDP is a deny (PdpClient), an unreachable
 * audit sink refuses the release.
 */
import type { AuditClient, Decision, PdpClient, Principal, Reason, RequestContext } from '@portcullis/protocol';
import { isPcxError } from '@portcullis/protocol';
import { vaultError } from './errors.js';
import type { Kek } from './kek.js';
import type { OpenedSecret, Vault } from './store.js';
import { wipe } from './crypto.js';

export interface SecretRequest {
  name: string;
  /** A version; the latest when absent. */
  version?: number;
}

export interface ReleaseOptions {
  vault: Vault;
  /** The workspace's unlocked KEK (local, in a token, or the agent's). */
  kek: Kek;
  pdp: PdpClient;
  audit: AuditClient;
  /** Who asks (the agent's principal, or the user running `vault get`). */
  principal: Principal;
  /** Scope and leases for the decision; leases are recorded by their id only. */
  context?: RequestContext;
  /** The audit record's `source`. Default "vault". */
  source?: string;
  /** The caller's event reference, carried into each audit record. */
  eventId?: string;
  /** Per-decision PDP deadline in milliseconds. Default: the client's (250). */
  pdpTimeoutMs?: number;
}

/** Secrets for a child process (`vault exec`, the exec gate): asks `secret.inject`. Wipe the values when done. */
export function openSecretsForInjection(options: ReleaseOptions, requests: SecretRequest[]): Promise<OpenedSecret[]> {
  return release('secret.inject', options, requests);
}

/** A secret for a person (`vault get --reveal`): asks `secret.read`. Wipe the value when done. */
export async function openSecretForReading(options: ReleaseOptions, request: SecretRequest): Promise<OpenedSecret> {
  const [s] = await release('secret.read', options, [request]);
  return s!;
}

async function release(
  action: 'secret.read' | 'secret.inject',
  options: ReleaseOptions,
  requests: SecretRequest[],
): Promise<OpenedSecret[]> {
  const { vault, pdp, audit, principal } = options;
  if (requests.length === 0) throw vaultError('PCX_USAGE', 'no secret named');
  // Unknown names and versions are found before anything is asked or recorded.
  const targets = requests.map((r) => vault.find(r.name, r.version));
  const workspace = vault.workspace;
  const decisions = await Promise.all(
    targets.map((t) =>
      pdp.decide(
        {
          principal,
          action,
          resource: { name: t.name, workspace },
          ...(options.context ? { context: options.context } : {}),
        },
        options.pdpTimeoutMs === undefined ? {} : { timeoutMs: options.pdpTimeoutMs },
      ),
    ),
  );
  const refused = decisions.findIndex((d) => d.decision !== 'allow');
  // Every decision is recorded before anything is released; a release waits for every ack.
  const acks = await Promise.allSettled(
    targets.map((t, i) =>
      audit.append({
        source: options.source ?? 'vault',
        ...(options.eventId ? { event_id: options.eventId } : {}),
        principal,
        action,
        resource: { name: t.name, workspace, version: t.version },
        ...(options.context ? { context: options.context } : {}),
        decision: decisions[i]!.decision,
        reasons: decisions[i]!.reasons,
        ...(decisions[i]!.policy_version ? { policy_version: decisions[i]!.policy_version } : {}),
        outcome: { status: refused < 0 ? 'released' : 'refused' },
      }),
    ),
  );
  if (refused >= 0) throw denied(action, targets[refused]!.name, workspace, decisions[refused]!);
  const lost = acks.find((a) => a.status === 'rejected') as PromiseRejectedResult | undefined;
  if (lost) {
    const why = isPcxError(lost.reason) ? `${lost.reason.code}: ${lost.reason.message}` : String(lost.reason);
    throw vaultError(
      'PCX_VAULT_AUDIT_FAILED',
      `the audit sink did not record the release, so nothing was released (${why})`,
      {
        hint: 'check that the audit sink runs (--audit SOCKET) and has disk space',
      },
    );
  }
  const out: OpenedSecret[] = [];
  try {
    for (const t of targets) out.push(await vault.read(options.kek, t.name, t.version));
  } catch (e) {
    for (const s of out) wipe(s.value);
    throw e;
  }
  return out;
}

function denied(action: string, name: string, workspace: string, d: Decision): Error {
  const why = describeReasons(d.reasons);
  if (d.error) {
    return vaultError(
      'PCX_VAULT_DENIED',
      `${action} "${name}" in workspace "${workspace}": denied, the PDP could not decide ` +
        `(${d.error.code}: ${d.error.message})`,
      {
        hint: 'check that the PDP runs (--pdp SOCKET)',
      },
    );
  }
  if (d.decision === 'ask') {
    return vaultError(
      'PCX_VAULT_DENIED',
      `${action} "${name}" in workspace "${workspace}" needs approval${why ? ` (${why})` : ''}`,
      {
        hint: 'ask for a lease that grants it and pass it with --lease',
      },
    );
  }
  return vaultError(
    'PCX_VAULT_DENIED',
    `${action} "${name}" in workspace "${workspace}" is denied${why ? `: ${why}` : ' (no rule allows it)'}`,
  );
}

function describeReasons(reasons: Reason[]): string {
  return reasons
    .map((r) => (r.because ? `"${r.because}"` : r.rule ? `rule ${r.rule}` : r.error ? r.error.code : ''))
    .filter(Boolean)
    .join(', ');
}
