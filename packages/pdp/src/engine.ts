/**
 * The decision engine: the current compiled policy set (swapped atomically by one assignment,
 * so a request is decided entirely by one set), leases, and what health reports. No I/O here:
 * loading and watching live in the daemon shell (daemon.ts).
 */
import type { CompiledPolicy, EvaluateOptions } from '@portcullis/policy';
import { truncateText, type Decision, type ErrorInfo } from '@portcullis/protocol';
import type { IdentityCheck, LeaseResolution, LeaseVerifier } from './leases.js';

export interface LoadedPolicy {
  policy: CompiledPolicy;
  files: number;
  loadedAt: string;
}

export interface ReloadStatus {
  ok: boolean;
  at: string;
  /** The version that was loaded (ok) or that stays in force (failed). */
  policy_version?: string;
  /** Rendered diagnostics (errors and warnings) of the attempt. */
  diagnostics: string[];
  error?: ErrorInfo;
}

export interface Health {
  status: 'ok' | 'no_policy';
  policy_version?: string;
  rule_count?: number;
  files?: number;
  loaded_at?: string;
  last_reload?: ReloadStatus;
  /** Set while the last reload failed and an older set is still in force. */
  stale?: boolean;
  leases: LeaseHealth;
}

/** How a trust file (the JWKS, the revocation list) last loaded. */
export interface TrustFileStatus {
  ok: boolean;
  at: string;
  /** Why the last read was refused (the previous content stays in force). */
  error?: string;
}

export interface LeaseHealth {
  keys: number;
  revoked: number;
  /** Revoked ids the file no longer lists but that stay revoked until their lease expires. */
  revoked_retained: number;
  audience?: string;
  clock_skew_sec: number;
  /** Estimated bytes held by the (bounded) token verification and grant caches. */
  cache_bytes: { verified: number; grants: number };
  /** Set while a trust file's last read was refused and older content is in force. */
  stale?: boolean;
  keys_file?: TrustFileStatus;
  revocation_file?: TrustFileStatus;
}

/** `explain`: decide with policy.explain (the CLI's `eval --explain`). */
export interface DecideOptions {
  explain?: boolean;
}

export class Engine {
  /** Read once per request: the swap is one assignment, so no request sees two sets. */
  private current: LoadedPolicy | undefined;
  private lastReload: ReloadStatus | undefined;
  private noPolicy: Decision;
  readonly leases: LeaseVerifier;
  /** Set by the daemon as trust files load. */
  readonly trustFiles: { keys?: TrustFileStatus; revocation?: TrustFileStatus } = {};

  constructor(leases: LeaseVerifier) {
    this.leases = leases;
    this.noPolicy = noPolicyDecision('the PDP is starting and has not loaded a policy yet');
  }

  get policy(): CompiledPolicy | undefined {
    return this.current?.policy;
  }

  install(loaded: LoadedPolicy, diagnostics: string[]): void {
    this.current = loaded;
    this.lastReload = {
      ok: true,
      at: loaded.loadedAt,
      policy_version: loaded.policy.version,
      diagnostics: capped(diagnostics),
    };
  }

  /** A reload failed: keep the last good set (if any) and remember why, for health and denials. */
  reject(error: ErrorInfo, diagnostics: string[]): void {
    const at = new Date().toISOString();
    this.lastReload = {
      ok: false,
      at,
      diagnostics: capped(diagnostics),
      error,
      ...(this.current ? { policy_version: this.current.policy.version } : {}),
    };
    // The first line of the first diagnostic ("file:line:col: CODE: message") says where to look.
    if (!this.current)
      this.noPolicy = noPolicyDecision(
        `${error.message}${diagnostics.length ? `: ${diagnostics[0]!.split('\n')[0]}` : ''}`,
      );
  }

  /**
   * Decide one request. Synchronous unless the request carries a lease whose signature has not
   * been verified yet. Never throws: the evaluator is total, and leases fail as "ignored".
   */
  decide(request: unknown, options: DecideOptions = {}): Decision | Promise<Decision> {
    const loaded = this.current;
    if (!loaded) return this.noPolicy;
    const policy = loaded.policy;
    const evaluate = options.explain
      ? (o?: EvaluateOptions) => policy.explain(request, o)
      : (o?: EvaluateOptions) => policy.evaluate(request, o);
    const context = (request as { context?: { leases?: unknown; identity?: unknown } } | null)?.context;
    const tokens = context?.leases;
    const withLeases = (): Decision | Promise<Decision> => {
      if (tokens === undefined || (Array.isArray(tokens) && tokens.length === 0)) return evaluate();
      const r = this.leases.resolve(tokens, request, policy);
      return r instanceof Promise ? r.then((res) => applyLeases(evaluate, res)) : applyLeases(evaluate, r);
    };
    // A claimed identity is proven before anything else: a request that names a session it
    // cannot prove is refused, not decided as that session.
    if (context?.identity === undefined) return withLeases();
    const proof = this.leases.checkIdentity(context.identity, request);
    const proven = (p: IdentityCheck) => (p.ok ? withLeases() : unproven(policy.version, p.why));
    return proof instanceof Promise ? proof.then(proven) : proven(proof);
  }

  health(): Health {
    const c = this.current;
    const v = this.leases;
    const stale = this.trustFiles.keys?.ok === false || this.trustFiles.revocation?.ok === false;
    const leases: LeaseHealth = {
      keys: v.keyCount,
      revoked: v.revoked.size,
      revoked_retained: v.revoked.retained,
      ...(v.audience !== undefined ? { audience: v.audience } : {}),
      clock_skew_sec: v.skewSec,
      cache_bytes: v.cacheBytes,
      ...(stale ? { stale } : {}),
      ...(this.trustFiles.keys ? { keys_file: this.trustFiles.keys } : {}),
      ...(this.trustFiles.revocation ? { revocation_file: this.trustFiles.revocation } : {}),
    };
    if (!c) return { status: 'no_policy', ...(this.lastReload ? { last_reload: this.lastReload } : {}), leases };
    return {
      status: 'ok',
      policy_version: c.policy.version,
      rule_count: c.policy.ruleCount,
      files: c.files,
      loaded_at: c.loadedAt,
      ...(this.lastReload ? { last_reload: this.lastReload, stale: !this.lastReload.ok } : {}),
      leases,
    };
  }
}

function applyLeases(evaluate: (o?: EvaluateOptions) => Decision, res: LeaseResolution): Decision {
  const d = evaluate(res.grants.length > 0 ? { grants: res.grants } : undefined);
  if (res.ignored.length === 0) return d;
  // The evaluator's decision object is ours to extend; copy reasons so it is never aliased.
  return { ...d, reasons: [...d.reasons, ...res.ignored] };
}

function unproven(version: string, why: string): Decision {
  const error: ErrorInfo = {
    code: 'PCX_PDP_IDENTITY_UNPROVEN',
    message: `context.identity does not prove the identity this request claims: ${why}`,
  };
  return { decision: 'deny', reasons: [{ error }], policy_version: version, error };
}

/**
 * Health answers must stay far below the 1 MiB frame limit, however broken the policy is: at
 * most 20 diagnostics, each at most 4096 characters (a rendered diagnostic quotes its source
 * line, which may be a whole minified file).
 */
const MAX_HEALTH_DIAGNOSTICS = 20;
const MAX_DIAGNOSTIC_CHARS = 4096;
function capped(diagnostics: string[]): string[] {
  const shown = diagnostics.slice(0, MAX_HEALTH_DIAGNOSTICS).map((d) => truncateText(d, MAX_DIAGNOSTIC_CHARS));
  if (diagnostics.length <= MAX_HEALTH_DIAGNOSTICS) return shown;
  return [...shown, `… and ${diagnostics.length - MAX_HEALTH_DIAGNOSTICS} more (see the PDP log)`];
}

function noPolicyDecision(why: string): Decision {
  const error: ErrorInfo = {
    code: 'PCX_PDP_NO_POLICY',
    message:
      `no valid policy is loaded, so every request is denied (${why}); fix the policy files: the PDP ` +
      `reloads them on change`,
  };
  return { decision: 'deny', reasons: [{ error }], error };
}
