/**
 * Verifying capability leases and identity tokens (the format: @portcullis/protocol lease.ts).
 *
 * A token counts only when, in this order: it is a string of at most MAX_TOKEN_BYTES shaped like
 * a compact JWS (checked before anything is cached or parsed); its protected header is exactly
 * {alg: "EdDSA", typ, kid}; its kid selects a trusted key (kid may be left out only while a
 * single key is trusted); the signature verifies; its claims are well-formed (jti, sub, aud,
 * and iat/exp/nbf as safe integers, so `1e400` is refused rather than read as Infinity); an
 * `iss` claim is the issuer its key is bound to; it is for this PDP's audience, not revoked,
 * inside its validity window (with a clock skew, default 60 s) and bound to this request. A
 * lease's rules then count only within the lease ceiling of its issuer (the policy set's
 * `leases from … max … { … }`; see CompiledPolicy.compileGrant).
 *
 * Security: a token is a bearer secret. It is never logged, echoed, put in an error, or used as
 * a cache key (caches are keyed by its SHA-256); only its jti is shown, and only once the
 * signature has been checked (an unverified jti is attacker-chosen: such leases show "unknown").
 *
 * Cost and memory: verification is asynchronous (WebCrypto) and done once per token; binding,
 * time and revocation are checked on every request. Both caches (verified tokens; grants per
 * policy version) are LRU caches bounded by an estimate of their bytes, so junk tokens cannot
 * grow the daemon: a token over the size limit or of the wrong shape is refused before any cache.
 */
import { createHash } from 'node:crypto';
import { compactVerify, importJWK, type CryptoKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { CompiledPolicy, IgnoredGrant, LeaseGrant } from '@portcullis/policy';
import {
  BLUEPRINT_CLAIM,
  IDENTITY_TYP,
  LEASE_TYP,
  MAX_JTI_CHARS,
  MAX_RULES_BYTES,
  MAX_TOKEN_BYTES,
  PcxError,
  PROJECT_CLAIM,
  RULES_CLAIM,
  SESSION_CLAIM,
  TOKEN_ALG,
  type Reason,
  type TrustedKey,
} from '@portcullis/protocol';

/** Why a lease (or one of its rules) was ignored; stable words on the wire (`reasons[].ignored`). */
export type IgnoredReason =
  | 'too_large'
  | 'too_many'
  | 'invalid'
  | 'no_keys'
  | 'unknown_key'
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'revoked'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_principal'
  | 'wrong_project'
  | 'wrong_session'
  | 'bad_rules'
  | IgnoredGrant['ignored'];

/** What a verified token says (its signature and form checked; time and binding not yet). */
export interface TokenClaims {
  typ: typeof LEASE_TYP | typeof IDENTITY_TYP;
  jti: string;
  sub: string;
  aud: readonly string[];
  iat: number;
  exp: number;
  nbf: number | undefined;
  /** The names its issuer goes by: the signing key's kid, and the issuer that key is bound to. */
  issuers: readonly string[];
  /** Lease only. */
  rules: string | undefined;
  project: string | undefined;
  session: string | undefined;
  /** Identity only. */
  blueprint: string | undefined;
}

/** Why a token does not count: the stable word and a sentence for people (never the token itself). */
interface Refusal {
  ignored: IgnoredReason;
  detail: string;
}

type Verified = { ok: true; claims: TokenClaims } | ({ ok: false; jti: string } & Refusal);

export interface LeaseOptions {
  /** The audience tokens must name in `aud`. Without it no lease or identity token counts. */
  audience?: string;
  /** Clock skew tolerated on exp, nbf and iat, in seconds. Default 60. */
  clockSkewSec?: number;
  /** Bytes (estimated) of verified tokens kept, keyed by SHA-256 of the token. Default 8 MiB. */
  maxVerifiedBytes?: number;
  /** Bytes (estimated) of compiled grants kept, keyed by policy version and token hash. Default 32 MiB. */
  maxGrantBytes?: number;
  /** Leases looked at per request; the rest are ignored together as `too_many`. Default 16. */
  maxLeasesPerRequest?: number;
  /** The clock, in milliseconds (tests pin it). Default Date.now. */
  now?: () => number;
  /** Told (with the jti, never the token) when a lease's rules do not compile. */
  onGrantError?: (jti: string, messages: string[]) => void;
}

export interface LeaseResolution {
  grants: LeaseGrant[];
  /** One reason per ignored lease ({lease, ignored}) or ignored lease rule ({lease, rule, ignored}). */
  ignored: Reason[];
}

/** The outcome of checking `context.identity`: proven, or a sentence saying why not. */
export type IdentityCheck = { ok: true; jti: string } | { ok: false; why: string };

/** A compact JWS: three base64url segments (the payload may not be empty either). */
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const HEADER_KEYS = new Set(['alg', 'typ', 'kid']);
/** Estimated heap cost of a compiled grant: a fixed part and per byte of rules (measured: ~2.7 KiB + ~50 B/B). */
const GRANT_BASE_BYTES = 4096;
const GRANT_BYTES_PER_RULE_BYTE = 64;

interface KeyEntry {
  key: CryptoKey;
  kid: string;
  issuer: string | undefined;
}

/**
 * A compact-JWS-looking string within the size limit, or why not. Decided before any cache or
 * hash, so an oversized or junk token costs a length check and nothing is kept for it.
 */
function screen(token: unknown): Refusal | undefined {
  if (typeof token !== 'string') return { ignored: 'invalid', detail: 'a lease token must be a string' };
  // length counts UTF-16 units; a JWS is ASCII, and anything else fails the shape test below.
  if (token.length > MAX_TOKEN_BYTES)
    return { ignored: 'too_large', detail: `the token is over ${MAX_TOKEN_BYTES} bytes` };
  return JWS_SHAPE.test(token)
    ? undefined
    : { ignored: 'invalid', detail: 'the token is not a compact JWS (three base64url parts)' };
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('base64url');

function decodeJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const optString = (v: unknown): v is string | undefined => v === undefined || (typeof v === 'string' && v !== '');

/** What is wrong with a numeric time claim, or undefined when it is a whole number of seconds. */
function timeProblem(name: string, v: unknown, required: boolean): string | undefined {
  if (v === undefined) return required ? `the token has no "${name}" claim` : undefined;
  // Number.isSafeInteger refuses 1e400 (read by JSON.parse as Infinity), 1.5 and "1".
  return isTime(v) ? undefined : `"${name}" is not a whole number of seconds since the epoch`;
}

/** Check a verified payload's form: its claims, or a sentence saying what is wrong. */
function readClaims(typ: TokenClaims['typ'], c: Record<string, unknown>): Omit<TokenClaims, 'issuers'> | string {
  const aud = typeof c.aud === 'string' ? [c.aud] : c.aud;
  if (!(typeof c.jti === 'string' && c.jti.length > 0 && c.jti.length <= MAX_JTI_CHARS))
    return `"jti" must be a string of 1-${MAX_JTI_CHARS} characters`;
  if (!(typeof c.sub === 'string' && c.sub !== '')) return '"sub" must be a non-empty string';
  if (!(Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string')))
    return '"aud" must be a string or a list of strings';
  const time = timeProblem('iat', c.iat, true) ?? timeProblem('exp', c.exp, true) ?? timeProblem('nbf', c.nbf, false);
  if (time) return time;
  if ((c.exp as number) <= (c.iat as number)) return '"exp" is not after "iat"';
  if (!(c.iss === undefined || typeof c.iss === 'string')) return '"iss" must be a string';
  if (!optString(c[PROJECT_CLAIM]) || !optString(c[SESSION_CLAIM]))
    return `"${PROJECT_CLAIM}" and "${SESSION_CLAIM}" must be non-empty strings`;
  const rules = c[RULES_CLAIM];
  if (typ === LEASE_TYP) {
    if (typeof rules !== 'string') return `a lease needs "${RULES_CLAIM}" (a string of allow rules)`;
    if (Buffer.byteLength(rules) > MAX_RULES_BYTES) return `"${RULES_CLAIM}" is over ${MAX_RULES_BYTES} bytes`;
    if (c[BLUEPRINT_CLAIM] !== undefined) return `a lease cannot carry "${BLUEPRINT_CLAIM}"`;
  } else {
    if (rules !== undefined) return `an identity token grants nothing: it cannot carry "${RULES_CLAIM}"`;
    if (typeof c[SESSION_CLAIM] !== 'string') return `an identity token needs "${SESSION_CLAIM}"`;
    if (!optString(c[BLUEPRINT_CLAIM])) return `"${BLUEPRINT_CLAIM}" must be a non-empty string`;
  }
  return {
    typ,
    jti: c.jti,
    sub: c.sub,
    aud,
    iat: c.iat as number,
    exp: c.exp as number,
    nbf: c.nbf as number | undefined,
    rules: rules as string | undefined,
    project: c[PROJECT_CLAIM] as string | undefined,
    session: c[SESSION_CLAIM] as string | undefined,
    blueprint: c[BLUEPRINT_CLAIM] as string | undefined,
  };
}

/**
 * Revoked token ids. A list read again may drop an entry only once the token it names has
 * expired: the expiry comes from the line (`jti exp`) or from the token as this PDP saw it;
 * an entry whose expiry is unknown stays revoked for the life of the process. So an empty,
 * truncated or rewritten list never un-revokes a live token.
 */
export class RevocationList {
  private readonly entries = new Map<string, number | undefined>();
  /** Entries kept although the current file no longer lists them. */
  private kept = 0;

  /** Parse a revocation list: `jti` or `jti exp` per line, `#` comments. Throws a message on a bad line. */
  static parse(text: string, source: string): Map<string, number | undefined> {
    const out = new Map<string, number | undefined>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      const m = /^(\S+)(?:\s+(\d{1,15}))?$/.exec(line);
      if (!m || m[1]!.length > MAX_JTI_CHARS)
        throw new PcxError(
          'PCX_PDP_REVOCATION_INVALID',
          `${source}:${i + 1}: expected "JTI" or "JTI EXP" (the lease id, then its expiry in seconds since the epoch)`,
        );
      out.set(m[1]!, m[2] === undefined ? (out.get(m[1]!) ?? undefined) : Number(m[2]));
    });
    return out;
  }

  /**
   * Install a newly read list; returns how many dropped entries were kept because their token
   * may be live. An expiry only ever grows: a line's `EXP` is the operator's word (a truncated
   * line reads as a smaller number), the token's own `exp` is authoritative once seen.
   */
  replace(next: Map<string, number | undefined>, nowSec: number, skewSec: number): number {
    let kept = 0;
    for (const [jti, exp] of this.entries) {
      if (next.has(jti)) {
        const listed = next.get(jti);
        if (exp !== undefined && (listed === undefined || listed < exp)) next.set(jti, exp);
      } else if (exp === undefined || nowSec < exp + skewSec) {
        next.set(jti, exp);
        kept++;
      }
    }
    this.entries.clear();
    for (const [jti, exp] of next) this.entries.set(jti, exp);
    this.kept = kept;
    return kept;
  }

  /** Entries whose token may still be live (expiry unknown, or not yet past with the skew). */
  live(nowSec: number, skewSec: number): number {
    let n = 0;
    for (const exp of this.entries.values()) if (exp === undefined || nowSec < exp + skewSec) n++;
    return n;
  }

  has(jti: string): boolean {
    return this.entries.has(jti);
  }

  /** A revoked token was seen: remember its expiry, so that its entry may drop out once it is past. */
  sawExpiry(jti: string, exp: number): void {
    if (!this.entries.has(jti)) return;
    const known = this.entries.get(jti);
    if (known === undefined || known < exp) this.entries.set(jti, exp);
  }

  get size(): number {
    return this.entries.size;
  }

  get retained(): number {
    return this.kept;
  }
}

interface GrantEntry {
  grant: LeaseGrant | undefined;
  ignored: Reason[];
}

export class LeaseVerifier {
  private keys = new Map<string, KeyEntry>();
  readonly revoked = new RevocationList();
  private readonly verified: LRUCache<string, Verified | Promise<Verified>>;
  private readonly grants: LRUCache<string, GrantEntry>;
  readonly audience: string | undefined;
  readonly skewSec: number;
  private readonly maxPerRequest: number;
  private readonly now: () => number;
  private readonly onGrantError: (jti: string, messages: string[]) => void;

  constructor(options: LeaseOptions = {}) {
    this.audience = options.audience;
    this.skewSec = options.clockSkewSec ?? 60;
    this.maxPerRequest = options.maxLeasesPerRequest ?? 16;
    this.now = options.now ?? Date.now;
    this.onGrantError = options.onGrantError ?? (() => {});
    this.verified = new LRUCache({
      maxSize: options.maxVerifiedBytes ?? 8 * 1024 * 1024,
      // An in-flight verification is charged like the largest token; a result by what it holds.
      sizeCalculation: (v) =>
        v instanceof Promise ? 1024 : 512 + (v.ok ? 2 * ((v.claims.rules?.length ?? 0) + v.claims.jti.length) : 0),
    });
    this.grants = new LRUCache({
      maxSize: options.maxGrantBytes ?? 32 * 1024 * 1024,
      sizeCalculation: (_v, key) => GRANT_BASE_BYTES + GRANT_BYTES_PER_RULE_BYTE * Number(key.split('\n')[2]),
    });
  }

  /** Replace the trusted keys. Cached verifications and grants are dropped: a removed key stops counting. */
  async setKeys(keys: readonly TrustedKey[]): Promise<void> {
    const next = new Map<string, KeyEntry>();
    for (const k of keys)
      next.set(k.kid, { key: (await importJWK(k.jwk, TOKEN_ALG)) as CryptoKey, kid: k.kid, issuer: k.issuer });
    this.keys = next;
    this.verified.clear();
    this.grants.clear();
  }

  /** Revoked entries whose token may still be live (see RevocationList.live). */
  liveRevoked(): number {
    return this.revoked.live(this.now() / 1000, this.skewSec);
  }

  /** Estimated bytes held by the verification and grant caches (both bounded). */
  get cacheBytes(): { verified: number; grants: number } {
    return { verified: this.verified.calculatedSize, grants: this.grants.calculatedSize };
  }

  get keyCount(): number {
    return this.keys.size;
  }

  /** Install a newly read revocation list (see RevocationList). Returns the number of entries kept. */
  setRevoked(next: Map<string, number | undefined>): number {
    return this.revoked.replace(next, this.now() / 1000, this.skewSec);
  }

  /**
   * Check every lease token of a request against `policy`. Synchronous when every token's
   * signature has been verified before (the common case: an agent reuses its lease), else a Promise.
   */
  resolve(tokens: unknown, request: unknown, policy: CompiledPolicy): LeaseResolution | Promise<LeaseResolution> {
    const list = Array.isArray(tokens) ? tokens : [tokens];
    const n = Math.min(list.length, this.maxPerRequest);
    const results: Array<Verified | Promise<Verified>> = [];
    let pending = false;
    for (let i = 0; i < n; i++) {
      const r = this.verify(list[i]);
      if (r instanceof Promise) pending = true;
      results.push(r);
    }
    const extra = list.length - n;
    const finish = (rs: Verified[]): LeaseResolution => {
      const out = this.bind(rs, request, policy);
      if (extra > 0)
        out.ignored.push({
          lease: 'unknown',
          ignored: 'too_many',
          detail: `${extra} lease(s) beyond the first ${this.maxPerRequest} of a request are not looked at`,
        });
      return out;
    };
    if (!pending) return finish(results as Verified[]);
    return Promise.all(results).then(finish);
  }

  /**
   * Check `context.identity`: an identity token for this principal and session (and project or
   * blueprint when it names them). Synchronous when its signature was verified before.
   */
  checkIdentity(token: unknown, request: unknown): IdentityCheck | Promise<IdentityCheck> {
    const v = this.verify(token);
    return v instanceof Promise ? v.then((r) => this.bindIdentity(r, request)) : this.bindIdentity(v, request);
  }

  private verify(token: unknown): Verified | Promise<Verified> {
    const refused = screen(token);
    if (refused) return { ok: false, jti: 'unknown', ...refused };
    const key = hashOf(token as string);
    const hit = this.verified.get(key);
    if (hit) return hit;
    const p = this.verifyUncached(token as string).then((v) => {
      if (this.verified.get(key, { updateAgeOnGet: false }) === p) this.verified.set(key, v);
      return v;
    });
    this.verified.set(key, p);
    return p;
  }

  private async verifyUncached(token: string): Promise<Verified> {
    const fail = (ignored: IgnoredReason, detail: string, jti = 'unknown'): Verified => ({
      ok: false,
      jti,
      ignored,
      detail,
    });
    const [h, p] = token.split('.') as [string, string, string];
    const header = decodeJson(h);
    if (!isRecord(header)) return fail('invalid', 'the protected header is not a JSON object');
    const extra = Object.keys(header).find((k) => !HEADER_KEYS.has(k));
    if (extra !== undefined)
      return fail('invalid', `the protected header has "${extra.slice(0, 32)}"; only alg, typ and kid are accepted`);
    // Only EdDSA: `none`, HS256 keyed with the public key and every other algorithm fail here,
    // before a key is even looked up.
    if (header.alg !== TOKEN_ALG)
      return fail('bad_signature', `alg ${JSON.stringify(header.alg)?.slice(0, 32)} is refused; only EdDSA counts`);
    const typ = header.typ;
    if (typ !== LEASE_TYP && typ !== IDENTITY_TYP)
      return fail('invalid', `typ is not "${LEASE_TYP}" or "${IDENTITY_TYP}"`);
    if (this.keys.size === 0) return fail('no_keys', 'the PDP trusts no keys (--lease-keys), so no token counts');
    let entry: KeyEntry | undefined;
    if (header.kid === undefined) {
      if (this.keys.size > 1)
        return fail('unknown_key', `the token names no kid and ${this.keys.size} keys are trusted; kid selects one`);
      entry = [...this.keys.values()][0];
    } else if (typeof header.kid === 'string') entry = this.keys.get(header.kid);
    if (!entry) return fail('unknown_key', 'its kid names no trusted key');
    try {
      await compactVerify(token, entry.key, { algorithms: [TOKEN_ALG] });
    } catch {
      return fail('bad_signature', `the signature does not verify with key "${entry.kid}"`);
    }
    const payload = decodeJson(p);
    if (!isRecord(payload)) return fail('invalid', 'the payload is not a JSON object');
    const claims = readClaims(typ, payload);
    const jti = typeof payload.jti === 'string' && payload.jti.length <= MAX_JTI_CHARS ? payload.jti : 'unknown';
    if (typeof claims === 'string') return fail('invalid', claims, jti);
    // A token's `iss` counts only as the issuer its key speaks for: a key cannot borrow another
    // issuer's (possibly wider) lease ceiling.
    if (payload.iss !== undefined && payload.iss !== entry.issuer) {
      const speaksFor = entry.issuer === undefined ? 'none' : `"${entry.issuer}"`;
      return fail('wrong_issuer', `its iss is not the issuer key "${entry.kid}" speaks for (${speaksFor})`, jti);
    }
    const issuers = entry.issuer === undefined ? [entry.kid] : [entry.kid, entry.issuer];
    return { ok: true, claims: { ...claims, issuers } };
  }

  /** The checks every token meets on every use: audience, revocation and the clock. */
  private current(c: TokenClaims): Refusal | undefined {
    if (this.audience === undefined || !c.aud.includes(this.audience))
      return {
        ignored: 'wrong_audience',
        detail:
          this.audience === undefined
            ? 'the PDP has no audience configured (--lease-audience)'
            : `its aud does not name this deployment's audience "${this.audience}"`,
      };
    if (this.revoked.has(c.jti)) {
      this.revoked.sawExpiry(c.jti, c.exp);
      return { ignored: 'revoked', detail: 'its jti is on the revocation list' };
    }
    const nowSec = this.now() / 1000;
    const skew = `a clock skew of ${this.skewSec} s`;
    if (nowSec >= c.exp + this.skewSec)
      return { ignored: 'expired', detail: `it expired at ${isoTime(c.exp)} (allowing ${skew})` };
    if (nowSec + this.skewSec < c.iat)
      return { ignored: 'not_yet_valid', detail: `it was issued in the future, ${isoTime(c.iat)} (allowing ${skew})` };
    if (c.nbf !== undefined && nowSec + this.skewSec < c.nbf)
      return { ignored: 'not_yet_valid', detail: `it is not valid before ${isoTime(c.nbf)} (allowing ${skew})` };
    return undefined;
  }

  private bind(results: Verified[], request: unknown, policy: CompiledPolicy): LeaseResolution {
    const grants: LeaseGrant[] = [];
    const ignored: Reason[] = [];
    const req = request as BindingRequest;
    for (const r of results) {
      if (!r.ok) {
        ignored.push({ lease: r.jti, ignored: r.ignored, detail: r.detail });
        continue;
      }
      const c = r.claims;
      const why =
        c.typ !== LEASE_TYP
          ? { ignored: 'invalid' as const, detail: 'an identity token grants nothing; send it as context.identity' }
          : (this.current(c) ?? this.binding(c, req));
      if (why !== undefined) {
        ignored.push({ lease: c.jti, ...why });
        continue;
      }
      const entry = this.grantFor(c, policy);
      if (entry.grant) grants.push(entry.grant);
      ignored.push(...entry.ignored);
    }
    return { grants, ignored };
  }

  /** A lease bound to a principal, project or session counts only for requests that carry the same. */
  private binding(c: TokenClaims, req: BindingRequest): Refusal | undefined {
    const ctx = req?.context;
    if (req?.principal?.id !== c.sub)
      return { ignored: 'wrong_principal', detail: `it is bound to principal ${describe(c.sub, req?.principal?.id)}` };
    if (c.project !== undefined && ctx?.project !== c.project)
      return { ignored: 'wrong_project', detail: `it is bound to project ${describe(c.project, ctx?.project)}` };
    if (c.session !== undefined && ctx?.session !== c.session)
      return { ignored: 'wrong_session', detail: `it is bound to session ${describe(c.session, ctx?.session)}` };
    return undefined;
  }

  /**
   * Grants compile against the policy set (its schema and lease ceilings), so the cache key is
   * the policy version and the token's hash (the token fixes the rules, issuer and lifetime).
   */
  private grantFor(c: TokenClaims, policy: CompiledPolicy): GrantEntry {
    const rules = c.rules!;
    const token = hashOf(`${c.jti}\n${c.issuers.join('\n')}\n${c.iat}\n${c.exp}\n${rules}`);
    const key = `${policy.version}\n${token}\n${rules.length}`;
    const hit = this.grants.get(key);
    if (hit) return hit;
    const r = policy.compileGrant(c.jti, rules, { issuers: c.issuers, lifetimeSec: c.exp - c.iat });
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    let entry: GrantEntry;
    if (errors.length > 0) {
      this.onGrantError(
        c.jti,
        errors.map((d) => `${d.line}:${d.col}: ${d.message}`),
      );
      // The first error, cut short, says why (the rules were signed by a trusted key; the log has them all).
      const first = errors[0]!;
      const detail = `its rules do not compile: ${first.line}:${first.col}: ${first.message}`.slice(0, 300);
      entry = { grant: undefined, ignored: [Object.freeze({ lease: c.jti, ignored: 'bad_rules', detail })] };
    } else {
      // The ceiling's sentence goes along as `detail`: it names the issuer and actions (never the token).
      const ignored = r.ignored.map(
        (i): Reason =>
          Object.freeze({
            lease: c.jti,
            ...(i.rule !== undefined ? { rule: i.rule } : {}),
            ignored: i.ignored,
            detail: i.message,
          }),
      );
      entry = { grant: r.grant, ignored };
    }
    this.grants.set(key, entry);
    return entry;
  }

  /**
   * An identity token proves exactly what it names: this principal and session, and the project
   * and blueprint when it names them. Anything else in the request that differs is refused.
   */
  private bindIdentity(r: Verified, request: unknown): IdentityCheck {
    if (!r.ok) return { ok: false, why: `the identity token is ignored (${r.ignored}: ${r.detail})` };
    const c = r.claims;
    const no = (why: string): IdentityCheck => ({ ok: false, why: `identity token ${c.jti} ${why}` });
    if (c.typ !== IDENTITY_TYP) return no(`is not an identity token (typ "${IDENTITY_TYP}")`);
    const stale = this.current(c);
    if (stale) return no(`is ignored (${stale.ignored}: ${stale.detail})`);
    const req = request as BindingRequest;
    const ctx = req?.context;
    const differs = (what: string, claimed: string, got: unknown): IdentityCheck =>
      no(`proves ${what} ${describe(claimed, got)}`);
    if (req?.principal?.id !== c.sub) return differs('principal', c.sub, req?.principal?.id);
    if (ctx?.session !== c.session) return differs('session', c.session!, ctx?.session);
    if (c.project !== undefined && ctx?.project !== c.project) return differs('project', c.project, ctx?.project);
    if (c.blueprint !== undefined && ctx?.blueprint !== c.blueprint)
      return differs('blueprint', c.blueprint, ctx?.blueprint);
    return { ok: true, jti: c.jti };
  }
}

type BindingRequest = {
  principal?: { id?: unknown };
  context?: { project?: unknown; session?: unknown; blueprint?: unknown };
} | null;

/** `"a", but the request has "b"` (or none), each cut short: reasons stay small whatever was sent. */
function describe(bound: string, got: unknown): string {
  const cut = (v: string): string => JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
  return `${cut(bound)}, but the request has ${typeof got === 'string' ? cut(got) : 'none'}`;
}

/** A claim's time for people; past year 275760 (still a safe integer) Date cannot show it. */
const isoTime = (sec: number): string => (sec <= 8.64e12 ? new Date(sec * 1000).toISOString() : `${sec} s after 1970`);
