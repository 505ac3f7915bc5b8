/**
 * Capability leases (dsl/LANGUAGE.md, "Leases"): compact JWS tokens signed with Ed25519
 * (alg EdDSA), header typ "pcx-lease+jwt", whose claims are
 *   sub          the principal id the lease is bound to (required)
 *   jti          the lease id, shown in decisions, logs and revocation lists (required)
 *   exp          expiry, seconds since the epoch (required); nbf optional; iat informational
 *   pcx_rules    the granted rules, `allow` rules in the policy language, as one string (required)
 *   pcx_project  optional: the lease only applies when context.project equals it
 *   pcx_session  optional: the lease only applies when context.session equals it
 *
 * Security: a token is a bearer secret. It is never logged, echoed or put in an error message;
 * only its jti is, and only once the signature has been checked (an unverified jti is
 * attacker-chosen, so ignored leases with bad signatures are reported as "unknown").
 *
 * Cost: signature verification is asynchronous (WebCrypto) and done once per token, cached
 * (bounded); binding, expiry and revocation are checked on every request against the clock and
 * the current revocation list. Grants compile once per (policy version, jti), also cached.
 */
import { compactVerify, createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import type { CompiledPolicy, LeaseGrant } from '@portcullis/policy';
import type { Reason } from '@portcullis/protocol';
import { PcxError } from '@portcullis/protocol';

export const LEASE_TYP = 'pcx-lease+jwt';
export const RULES_CLAIM = 'pcx_rules';
export const PROJECT_CLAIM = 'pcx_project';
export const SESSION_CLAIM = 'pcx_session';

export type IgnoredReason =
  | 'expired'
  | 'not_yet_valid'
  | 'bad_signature'
  | 'wrong_principal'
  | 'wrong_project'
  | 'wrong_session'
  | 'revoked'
  | 'invalid';

/** The verified claims of a lease (its signature checked; binding and time not yet). */
export interface LeaseClaims {
  jti: string;
  sub: string;
  exp: number;
  nbf: number | undefined;
  rules: string;
  project: string | undefined;
  session: string | undefined;
}

type Verified = { ok: true; claims: LeaseClaims } | { ok: false; jti: string; ignored: IgnoredReason };

export interface LeaseOptions {
  /** Allowed clock skew between the issuer and this PDP, in seconds. Default 5. */
  clockToleranceSec?: number;
  /** Verified tokens kept (keyed by the token itself, in memory only). Default 4096. */
  maxVerifiedTokens?: number;
  /** Compiled grants kept, keyed by policy version + jti. Default 4096. */
  maxGrants?: number;
  /** Leases looked at per request; more are ignored as invalid. Default 16. */
  maxLeasesPerRequest?: number;
  /** The clock, in milliseconds (tests pin it). */
  now?: () => number;
  /** Told (with the jti, never the token) when a lease's rules do not compile. */
  onGrantError?: (jti: string, messages: string[]) => void;
}

export interface LeaseResolution {
  grants: LeaseGrant[];
  /** One reason per ignored lease: {lease, ignored}. */
  ignored: Reason[];
}

const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_JTI_CHARS = 128;
const MAX_RULES_CHARS = 64 * 1024;

/** Parse and check a JWKS document: Ed25519 public keys only, never private key material. */
export function parseLeaseKeys(text: string, source: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PcxError('PCX_LEASE_KEYS', `${source} is not JSON; expected a JWKS document {"keys": [...]}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys))
    throw new PcxError('PCX_LEASE_KEYS', `${source} has no "keys" array; expected a JWKS document {"keys": [...]}`);
  keys.forEach((k: Partial<JWK> | null, i) => {
    if (typeof k !== 'object' || k === null || k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string') {
      throw new PcxError(
        'PCX_LEASE_KEYS',
        `${source}: keys[${i}] is not an Ed25519 public key (kty "OKP", crv "Ed25519")`,
      );
    }
    if ('d' in k) {
      throw new PcxError(
        'PCX_LEASE_KEYS',
        `${source}: keys[${i}] contains private key material; the PDP needs only public keys`,
        {
          hint: 'use the .jwks file written by `portcullis lease keygen`, not the private key file',
        },
      );
    }
  });
  return { keys: keys as JWK[] };
}

/** Parse a revocation list: one jti per line; blank lines and `#` comments are ignored. */
export function parseRevoked(text: string): Set<string> {
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line) out.add(line);
  }
  return out;
}

export class LeaseVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet> | undefined;
  private revoked = new Set<string>();
  private readonly verified = new Map<string, Verified | Promise<Verified>>();
  private readonly grants = new Map<string, { rules: string; grant: LeaseGrant | undefined }>();
  private readonly tolerance: number;
  private readonly maxVerified: number;
  private readonly maxGrants: number;
  private readonly maxPerRequest: number;
  private readonly now: () => number;
  private readonly onGrantError: (jti: string, messages: string[]) => void;

  constructor(options: LeaseOptions = {}) {
    this.tolerance = options.clockToleranceSec ?? 5;
    this.maxVerified = options.maxVerifiedTokens ?? 4096;
    this.maxGrants = options.maxGrants ?? 4096;
    this.maxPerRequest = options.maxLeasesPerRequest ?? 16;
    this.now = options.now ?? Date.now;
    this.onGrantError = options.onGrantError ?? (() => {});
  }

  /** Replace the trusted keys. Cached verifications are dropped: a removed key stops counting. */
  setKeys(jwks: JSONWebKeySet | undefined): void {
    this.keySet = jwks && jwks.keys.length > 0 ? createLocalJWKSet(jwks) : undefined;
    this.verified.clear();
  }

  get keyCount(): number {
    return this.keySet ? (this.keySet.jwks()?.keys.length ?? 0) : 0;
  }

  setRevoked(jtis: Set<string>): void {
    this.revoked = jtis;
  }

  get revokedCount(): number {
    return this.revoked.size;
  }

  /**
   * Check every token of a request against `policy`. Synchronous when every token's signature
   * has been verified before (the common case: an agent reuses its lease), else a Promise.
   */
  resolve(tokens: unknown, request: unknown, policy: CompiledPolicy): LeaseResolution | Promise<LeaseResolution> {
    const list = Array.isArray(tokens) ? tokens : [tokens];
    const results: Array<Verified | Promise<Verified>> = [];
    let pending = false;
    for (let i = 0; i < list.length; i++) {
      const token = list[i];
      const r: Verified | Promise<Verified> =
        i >= this.maxPerRequest || typeof token !== 'string'
          ? { ok: false, jti: 'unknown', ignored: 'invalid' }
          : this.verify(token);
      if (r instanceof Promise) pending = true;
      results.push(r);
    }
    if (!pending) return this.bind(results as Verified[], request, policy);
    return Promise.all(results).then((rs) => this.bind(rs, request, policy));
  }

  private verify(token: string): Verified | Promise<Verified> {
    const hit = this.verified.get(token);
    if (hit) return hit;
    const p = this.verifyUncached(token).then((v) => {
      if (this.verified.get(token) === p) this.verified.set(token, v);
      return v;
    });
    // Bounded: drop the oldest entry (Map iteration order is insertion order).
    if (this.verified.size >= this.maxVerified) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, p);
    return p;
  }

  private async verifyUncached(token: string): Promise<Verified> {
    if (token.length > MAX_TOKEN_CHARS) return { ok: false, jti: 'unknown', ignored: 'invalid' };
    if (!this.keySet) return { ok: false, jti: 'unknown', ignored: 'bad_signature' };
    let payload: Uint8Array;
    let typ: unknown;
    try {
      const r = await compactVerify(token, this.keySet, { algorithms: ['EdDSA', 'Ed25519'] });
      payload = r.payload;
      typ = r.protectedHeader.typ;
    } catch (e) {
      const code = (e as { code?: string }).code;
      const foreign =
        code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ||
        code === 'ERR_JWKS_NO_MATCHING_KEY' ||
        code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' ||
        code === 'ERR_JOSE_ALG_NOT_ALLOWED';
      return { ok: false, jti: 'unknown', ignored: foreign ? 'bad_signature' : 'invalid' };
    }
    let c: Record<string, unknown>;
    try {
      c = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return { ok: false, jti: 'unknown', ignored: 'invalid' };
    }
    if (typeof c !== 'object' || c === null || Array.isArray(c))
      return { ok: false, jti: 'unknown', ignored: 'invalid' };
    const jti = typeof c.jti === 'string' && c.jti.length > 0 && c.jti.length <= MAX_JTI_CHARS ? c.jti : undefined;
    const valid =
      jti !== undefined &&
      typ === LEASE_TYP &&
      typeof c.sub === 'string' &&
      typeof c.exp === 'number' &&
      (c.nbf === undefined || typeof c.nbf === 'number') &&
      typeof c[RULES_CLAIM] === 'string' &&
      (c[RULES_CLAIM] as string).length <= MAX_RULES_CHARS &&
      (c[PROJECT_CLAIM] === undefined || typeof c[PROJECT_CLAIM] === 'string') &&
      (c[SESSION_CLAIM] === undefined || typeof c[SESSION_CLAIM] === 'string');
    if (!valid) return { ok: false, jti: jti ?? 'unknown', ignored: 'invalid' };
    return {
      ok: true,
      claims: {
        jti,
        sub: c.sub as string,
        exp: c.exp as number,
        nbf: c.nbf as number | undefined,
        rules: c[RULES_CLAIM] as string,
        project: c[PROJECT_CLAIM] as string | undefined,
        session: c[SESSION_CLAIM] as string | undefined,
      },
    };
  }

  private bind(results: Verified[], request: unknown, policy: CompiledPolicy): LeaseResolution {
    const grants: LeaseGrant[] = [];
    const ignored: Reason[] = [];
    const req = request as { principal?: { id?: unknown }; context?: { project?: unknown; session?: unknown } } | null;
    const nowSec = this.now() / 1000;
    for (const r of results) {
      let why: IgnoredReason | undefined;
      let jti: string;
      if (!r.ok) {
        why = r.ignored;
        jti = r.jti;
      } else {
        const c = r.claims;
        jti = c.jti;
        if (this.revoked.has(c.jti)) why = 'revoked';
        else if (nowSec >= c.exp + this.tolerance) why = 'expired';
        else if (c.nbf !== undefined && nowSec + this.tolerance < c.nbf) why = 'not_yet_valid';
        else if (req?.principal?.id !== c.sub) why = 'wrong_principal';
        else if (c.project !== undefined && req?.context?.project !== c.project) why = 'wrong_project';
        else if (c.session !== undefined && req?.context?.session !== c.session) why = 'wrong_session';
        else {
          const grant = this.grantFor(c, policy);
          if (grant) grants.push(grant);
          else why = 'invalid';
        }
      }
      if (why) ignored.push({ lease: jti, ignored: why });
    }
    return { grants, ignored };
  }

  /** Grants compile against the policy set's schema, so the cache key includes its version. */
  private grantFor(c: LeaseClaims, policy: CompiledPolicy): LeaseGrant | undefined {
    const key = policy.version + '\n' + c.jti;
    const hit = this.grants.get(key);
    // Comparing the rules guards against two different leases reusing one jti.
    if (hit && hit.rules === c.rules) return hit.grant;
    const { grant, diagnostics } = policy.compileGrant(c.jti, c.rules);
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const usable = errors.length === 0 ? grant : undefined;
    if (!usable)
      this.onGrantError(
        c.jti,
        errors.map((d) => `${d.line}:${d.col}: ${d.message}`),
      );
    if (this.grants.size >= this.maxGrants) this.grants.delete(this.grants.keys().next().value!);
    this.grants.set(key, { rules: c.rules, grant: usable });
    return usable;
  }
}
