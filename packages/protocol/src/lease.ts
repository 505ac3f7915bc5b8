/**
 * The capability-lease and identity token format: one implementation for everyone who mints
 * tokens (`portcullis lease issue`, the control plane's approvals) and the constants the PDP
 * verifies against. A token is a compact JWS signed with Ed25519 (alg EdDSA) whose protected
 * header is exactly {alg, typ, kid}:
 *   lease     typ "pcx-lease+jwt"; claims sub, jti, iat, exp, aud, pcx_rules (allow rules in the
 *             policy language), optional nbf, iss, pcx_project, pcx_session
 *   identity  typ "pcx-identity+jwt"; claims sub (= principal.id), pcx_session, jti, iat, exp,
 *             aud, optional nbf, iss, pcx_project, pcx_blueprint
 * Keys are Ed25519 JWKs that always carry a `kid`; a key may also name the issuer it speaks for
 * (member `iss`), and only then does a token's `iss` claim count (see the PDP README).
 *
 * Promises: what issueLease/issueIdentityToken sign is exactly what was asked (the PDP decides
 * what it is worth against its policy's lease ceiling), and never something the PDP refuses on
 * form alone: the token fits MAX_TOKEN_BYTES, numeric claims are safe integers, kid is set.
 * Nothing here logs; private key material never appears in an error message.
 */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { PcxError } from './errors.js';

/** JWS `typ` of a capability lease. */
export const LEASE_TYP = 'pcx-lease+jwt';
/** JWS `typ` of an identity token (proves a session for a principal). */
export const IDENTITY_TYP = 'pcx-identity+jwt';
/** The only signature algorithm minted or accepted. */
export const TOKEN_ALG = 'EdDSA';
/** The granted rules of a lease (one string of `allow` rules). */
export const RULES_CLAIM = 'pcx_rules';
export const PROJECT_CLAIM = 'pcx_project';
export const SESSION_CLAIM = 'pcx_session';
export const BLUEPRINT_CLAIM = 'pcx_blueprint';
/** Tokens longer than this are refused before anything else is done with them. */
export const MAX_TOKEN_BYTES = 16 * 1024;
export const MAX_JTI_CHARS = 128;
/** Rules of one lease, in UTF-8 bytes (they must fit a token of MAX_TOKEN_BYTES once encoded). */
export const MAX_RULES_BYTES = 8 * 1024;
/** The longest lifetime a token may be minted with (a policy's lease ceiling may only be shorter). */
export const MAX_TOKEN_TTL_SEC = 30 * 24 * 3600;

/** A signing key as read from the private JWK file that `lease keygen` writes. */
export interface SigningKey {
  readonly kid: string;
  /** The issuer name this key speaks for (the JWK's `iss` member), if any. */
  readonly issuer: string | undefined;
  /** The private JWK (Ed25519, with `d`). Never log it. */
  readonly jwk: JWK;
}

/** One trusted public key of a JWKS file. */
export interface TrustedKey {
  readonly kid: string;
  readonly issuer: string | undefined;
  /** The public JWK as given (kty OKP, crv Ed25519, x). */
  readonly jwk: JWK;
}

/** An issued token: hand `token` to the caller once; record only `jti`. */
export interface IssuedToken {
  token: string;
  jti: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

interface CommonIssueOptions {
  key: SigningKey;
  /** The principal id the token is bound to (`sub`). */
  subject: string;
  /** The deployment's audience (`aud`), as configured on the PDP (`--lease-audience`). */
  audience: string;
  /** Lifetime in seconds, 1 to MAX_TOKEN_TTL_SEC. */
  ttlSec: number;
  /** The clock, milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /** The token id. Default: a random UUID. */
  jti?: string;
  /** Not valid before this time, seconds since the epoch. Default: none (valid from iat). */
  notBefore?: number;
}

export interface IssueLeaseOptions extends CommonIssueOptions {
  /** `allow` rules in the policy language, one string (at most MAX_RULES_BYTES). */
  rules: string;
  /** Bind the lease to context.project. */
  project?: string;
  /** Bind the lease to context.session. */
  session?: string;
}

export interface IssueIdentityOptions extends CommonIssueOptions {
  /** The session the token proves (`pcx_session`). */
  session: string;
  project?: string;
  blueprint?: string;
}

/**
 * Issuer names (a key's `iss`, a ceiling's `from`) and audiences: 1–256 visible ASCII
 * characters, so that they print unambiguously in logs and policies.
 */
export function isTokenName(s: unknown): s is string {
  return typeof s === 'string' && /^[\x21-\x7e]{1,256}$/.test(s);
}

const badKey = (source: string, what: string, hint?: string): PcxError =>
  new PcxError('PCX_LEASE_KEY', `${source} ${what}`, hint ? { hint } : {});

function checkEd25519(k: Partial<JWK> | null, where: string, source: string): void {
  if (typeof k !== 'object' || k === null || k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string')
    throw badKey(source, `${where}is not an Ed25519 key (kty "OKP", crv "Ed25519")`);
  if (k.alg !== undefined && k.alg !== TOKEN_ALG && k.alg !== 'Ed25519')
    throw badKey(source, `${where}has alg "${String(k.alg)}"; lease keys are EdDSA`);
  if (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > 256)
    throw badKey(source, `${where}has no "kid"`, 'keys written by `portcullis lease keygen` carry one');
  const iss = (k as { iss?: unknown }).iss;
  if (iss !== undefined && !isTokenName(iss))
    throw badKey(source, `${where}has an "iss" that is not 1-256 visible ASCII characters`);
}

/** Parse the private JWK file written by `lease keygen` (never echoing its content). */
export function parseSigningKey(text: string, source: string): SigningKey {
  let jwk: JWK;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw badKey(source, 'is not a JSON Web Key');
  }
  const hint = 'pass the lease-signing.jwk written by `portcullis lease keygen`, not the public .jwks';
  if (typeof jwk !== 'object' || jwk === null || typeof jwk.d !== 'string')
    throw badKey(source, 'is not an Ed25519 private key (a JWK with kty "OKP", crv "Ed25519" and "d")', hint);
  checkEd25519(jwk, '', source);
  return { kid: jwk.kid!, issuer: (jwk as { iss?: string }).iss, jwk };
}

/**
 * Parse a JWKS file of trusted public keys: Ed25519 only, each with a unique `kid`, never
 * private key material. `{"keys": []}` is valid (no lease or identity token verifies).
 */
export function parseTrustedKeys(text: string, source: string): TrustedKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PcxError('PCX_LEASE_KEYS', `${source} is not JSON; expected a JWKS document {"keys": [...]}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys))
    throw new PcxError('PCX_LEASE_KEYS', `${source} has no "keys" array; expected a JWKS document {"keys": [...]}`);
  const out: TrustedKey[] = [];
  const seen = new Set<string>();
  keys.forEach((k: Partial<JWK> | null, i) => {
    try {
      checkEd25519(k, `keys[${i}] `, source);
    } catch (e) {
      throw new PcxError('PCX_LEASE_KEYS', (e as PcxError).message, { hint: (e as PcxError).hint });
    }
    if ('d' in k!)
      throw new PcxError(
        'PCX_LEASE_KEYS',
        `${source}: keys[${i}] contains private key material; the PDP needs only public keys`,
        { hint: 'use the .jwks file written by `portcullis lease keygen`, not the private key file' },
      );
    if (seen.has(k!.kid!))
      throw new PcxError('PCX_LEASE_KEYS', `${source}: keys[${i}] repeats kid "${k!.kid}"; each key needs its own`);
    seen.add(k!.kid!);
    out.push({ kid: k!.kid!, issuer: (k as { iss?: string }).iss, jwk: k as JWK });
  });
  return out;
}

/**
 * A new Ed25519 signing key: the private JWK and the public JWKS, both with kid (the RFC 7638
 * thumbprint) and, when given, the issuer name the key speaks for.
 */
export async function generateSigningKey(
  options: { issuer?: string } = {},
): Promise<{ kid: string; privateJwk: JWK; publicJwks: { keys: JWK[] } }> {
  if (options.issuer !== undefined && !isTokenName(options.issuer))
    throw new PcxError('PCX_USAGE', `issuer "${options.issuer}" must be 1-256 visible ASCII characters`);
  const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALG, { crv: 'Ed25519', extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const meta = { kid, alg: TOKEN_ALG, use: 'sig', ...(options.issuer !== undefined ? { iss: options.issuer } : {}) };
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
    publicJwks: { keys: [{ ...pub, ...meta }] },
  };
}

function usage(message: string): PcxError {
  return new PcxError('PCX_LEASE_ISSUE', message);
}

async function sign(typ: string, o: CommonIssueOptions, claims: Record<string, unknown>): Promise<IssuedToken> {
  if (!Number.isSafeInteger(o.ttlSec) || o.ttlSec < 1 || o.ttlSec > MAX_TOKEN_TTL_SEC)
    throw usage(`lifetime ${o.ttlSec} s is not a whole number of seconds between 1 and ${MAX_TOKEN_TTL_SEC}`);
  if (typeof o.subject !== 'string' || o.subject === '') throw usage('the subject (principal id) is empty');
  if (!isTokenName(o.audience)) throw usage(`audience "${o.audience}" must be 1-256 visible ASCII characters`);
  const jti = o.jti ?? randomUUID();
  if (jti.length === 0 || jti.length > MAX_JTI_CHARS) throw usage(`jti must be 1-${MAX_JTI_CHARS} characters`);
  const iat = Math.floor((o.now ?? Date.now)() / 1000);
  const exp = iat + o.ttlSec;
  if (o.notBefore !== undefined && (!Number.isSafeInteger(o.notBefore) || o.notBefore >= exp))
    throw usage('not-before must be a whole number of seconds before the expiry');
  const body: Record<string, unknown> = { ...claims, sub: o.subject, aud: o.audience, jti, iat, exp };
  if (o.notBefore !== undefined) body.nbf = o.notBefore;
  if (o.key.issuer !== undefined) body.iss = o.key.issuer;
  const key = await importJWK(o.key.jwk, TOKEN_ALG);
  const token = await new SignJWT(body).setProtectedHeader({ alg: TOKEN_ALG, typ, kid: o.key.kid }).sign(key);
  if (token.length > MAX_TOKEN_BYTES)
    throw usage(`the token would be ${token.length} bytes; the PDP refuses tokens over ${MAX_TOKEN_BYTES}`);
  return { token, jti, exp };
}

/** Sign a capability lease carrying `rules`, exactly as asked. */
export function issueLease(o: IssueLeaseOptions): Promise<IssuedToken> {
  if (typeof o.rules !== 'string' || o.rules.trim() === '') return Promise.reject(usage('the lease grants no rules'));
  if (Buffer.byteLength(o.rules) > MAX_RULES_BYTES)
    return Promise.reject(usage(`the rules are over ${MAX_RULES_BYTES} bytes; split them over several leases`));
  const claims: Record<string, unknown> = { [RULES_CLAIM]: o.rules };
  if (o.project !== undefined) claims[PROJECT_CLAIM] = o.project;
  if (o.session !== undefined) claims[SESSION_CLAIM] = o.session;
  return sign(LEASE_TYP, o, claims);
}

/** Sign an identity token proving `session` (and optionally project/blueprint) for `subject`. */
export function issueIdentityToken(o: IssueIdentityOptions): Promise<IssuedToken> {
  if (typeof o.session !== 'string' || o.session === '')
    return Promise.reject(usage('an identity token needs a session'));
  const claims: Record<string, unknown> = { [SESSION_CLAIM]: o.session };
  if (o.project !== undefined) claims[PROJECT_CLAIM] = o.project;
  if (o.blueprint !== undefined) claims[BLUEPRINT_CLAIM] = o.blueprint;
  return sign(IDENTITY_TYP, o, claims);
}
