/**
 * The contracts between Portcullis parts (docs/architecture.md, dsl/LANGUAGE.md).
 * These types are the JSON shapes that cross process boundaries; keep them
 * backwards-compatible: add optional fields, never change a meaning.
 */

export type Effect = 'allow' | 'deny' | 'ask';

/** A principal as the request carries it. `id` is required; `roles` defaults to []. */
export interface Principal {
  id: string;
  roles?: string[];
  [attribute: string]: unknown;
}

/** Request context. Scope keys select scoped policies; `leases` carries capability tokens. */
export interface RequestContext {
  project?: string;
  blueprint?: string;
  session?: string;
  /** Capability lease tokens (compact JWS). Never logged or audited: only their ids are. */
  leases?: string[];
  /**
   * An identity token (compact JWS, typ pcx-identity+jwt) proving `session` for this principal,
   * set only by protocol's resolveIdentity; the PDP verifies it. Never logged: only its jti is.
   */
  identity?: string;
  [attribute: string]: unknown;
}

export interface DecisionRequest {
  principal: Principal;
  action: string;
  resource: Record<string, unknown>;
  context?: RequestContext;
}

/**
 * Why a decision came out the way it did. Policy rules fill effect/policy/rule/because/source;
 * a lease that granted fills `lease` (its jti); a lease that was ignored carries `ignored`;
 * a failure (malformed request, PDP unreachable, timeout) carries `error` with a stable code.
 */
export interface Reason {
  effect?: Effect;
  policy?: string;
  rule?: string;
  because?: string;
  /** "file:line:col" of the rule in its policy source. */
  source?: string;
  /** The jti of a lease that granted, or that was ignored. */
  lease?: string;
  /**
   * Why a lease (or, with `rule`, one of its rules) was ignored: too_large, too_many, invalid, no_keys,
   * unknown_key, bad_signature, wrong_issuer, wrong_audience, revoked, expired, not_yet_valid,
   * wrong_principal, wrong_project, wrong_session, bad_rules, no_ceiling, exceeds_lifetime, exceeds_ceiling.
   */
  ignored?: string;
  /** A sentence saying why, for reasons that need more than the word (lease ceilings). */
  detail?: string;
  error?: ErrorInfo;
  /**
   * Only on the last reason of an answer that was cut to fit the frame limit: how many reasons
   * were left out (long texts in the others end in "… [truncated]"). The decision is unchanged.
   */
  truncated?: number;
}

export interface ErrorInfo {
  /** Stable code, e.g. PCX_REQ_MISSING_ATTRIBUTE, PCX_PDP_TIMEOUT. */
  code: string;
  message: string;
}

export interface Decision {
  decision: Effect;
  reasons: Reason[];
  /** "sha256:<hex>" of the policy set that decided; absent when no policy was consulted. */
  policy_version?: string;
  /** Set when the request was malformed or the decision could not be made (always with decision "deny"). */
  error?: ErrorInfo;
}
