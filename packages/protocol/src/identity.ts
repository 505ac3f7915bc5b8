/**
 * Identity resolution for every enforcement point: what the sidecar was configured as, what a
 * client claims on one request, and the one rule that combines them. A client may narrow its
 * identity (add leases, name the session it already has), never widen it: a session other than
 * the configured one counts only together with an identity token (a compact JWS whose protected
 * header says `typ: "pcx-identity+jwt"`), which goes to the PDP as `context.identity` for it to
 * verify (signature, audience, expiry, revocation, and that it names this principal and session).
 * Without a token such a claim is refused here with PCX_IDENTITY_UNPROVEN; the PEP answers it
 * (egress: 407 Proxy Authentication Required, the code and reason in the status line, a header
 * and the body) and forwards nothing. The principal is never a client's to choose.
 *
 * Transports: `Proxy-Authorization: Basic base64(session:tokens)` for the egress proxy (what
 * clients that speak proxies already send: curl --proxy-user, HTTPS_PROXY=http://user:pass@…),
 * and `X-Portcullis-Session` / `X-Portcullis-Identity` / `X-Portcullis-Lease` for our HTTP APIs.
 *
 * Tokens are secrets: they reach the PDP in the context and nothing else. What may be logged or
 * audited is a token's id (its `jti`, read without verifying: it only labels a record).
 * Nothing here verifies a signature; recognising a token's `typ` only routes it to the right
 * context member, and a forged header gains nothing, since the PDP verifies whatever it is sent.
 */
import { PcxError } from './errors.js';
import type { Principal, RequestContext } from './types.js';

/** The marker that replaces a secret (or anything that may be one) in records. */
export const REDACTED = '[redacted]';

/** What the sidecar's configuration says (flags or a config file): the identity that stands. */
export interface ConfiguredIdentity {
  principal: Principal;
  context: { project?: string; blueprint?: string; session?: string };
}

/** What a client sent with one request. */
export interface IdentityClaim {
  /** The session the client names, if it named one. */
  session?: string;
  /** An identity token (compact JWS, typ pcx-identity+jwt) proving the claimed session. */
  identityToken?: string;
  /** Capability lease tokens (compact JWS). */
  leases: string[];
}

export type ResolvedIdentity =
  | { ok: true; principal: Principal; context: RequestContext }
  | { ok: false; error: PcxError };

/** JWS `typ` of an identity token; lease tokens carry another `typ` and go to context.leases. */
const IDENTITY_TYP = 'pcx-identity+jwt';
const SESSION = /^[A-Za-z0-9._:-]{1,128}$/;
const JTI = /^[A-Za-z0-9_:-]{1,128}$/;
/** Longest credentials header read; the PDP bounds each token again (and their number). */
const MAX_HEADER_BYTES = 16 * 1024;

const SESSION_RULE = 'a session is 1-128 of A-Z a-z 0-9 . _ : -';

function bad(message: string, hint?: string): PcxError {
  return new PcxError('PCX_IDENTITY_BAD_CREDENTIALS', message, hint === undefined ? {} : { hint });
}

/**
 * Proxy-Authorization: Basic base64(session:tokens). The user name is the session (empty: none
 * claimed); the password holds tokens separated by spaces or commas, each a lease or the
 * identity token (at most one). Throws PCX_IDENTITY_BAD_CREDENTIALS on anything else.
 */
export function parseProxyAuthorization(header: string | string[] | undefined): IdentityClaim {
  if (header === undefined) return { leases: [] };
  // Two credentials headers would make the identity depend on which one a reader picks.
  if (Array.isArray(header)) {
    if (header.length !== 1) throw bad('more than one Proxy-Authorization header');
    header = header[0]!;
  }
  const m = header.length > MAX_HEADER_BYTES ? null : /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
  if (!m) {
    throw bad('Proxy-Authorization must be "Basic base64(session:tokens)"', 'curl --proxy-user SESSION:TOKEN');
  }
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
  const claim = claimTokens(colon >= 0 ? decoded.slice(colon + 1).split(/[ ,]+/) : [], 'Proxy-Authorization');
  if (user !== '') {
    if (!SESSION.test(user)) throw bad(`the Proxy-Authorization user name (the session) is invalid: ${SESSION_RULE}`);
    claim.session = user;
  }
  return claim;
}

/** Request headers as node gives them (lower-case names; repeated ones as an array). */
export type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * Our HTTP APIs: `X-Portcullis-Session: S`, `X-Portcullis-Identity: <identity token>`,
 * `X-Portcullis-Lease: <t>[, <t>]` (may repeat). Throws PCX_IDENTITY_BAD_CREDENTIALS on a
 * repeated session or identity header, a malformed session, or a token of the wrong kind.
 */
export function parseIdentityHeaders(headers: HeaderMap): IdentityClaim {
  const session = single(headers, 'x-portcullis-session');
  const identity = single(headers, 'x-portcullis-identity');
  const leaseHeader = headers['x-portcullis-lease'];
  const leaseValues = leaseHeader === undefined ? [] : Array.isArray(leaseHeader) ? leaseHeader : [leaseHeader];
  let bytes = (session?.length ?? 0) + (identity?.length ?? 0);
  for (const v of leaseValues) bytes += v.length;
  if (bytes > MAX_HEADER_BYTES) throw bad(`the identity headers are over ${MAX_HEADER_BYTES} bytes`);
  const claim = claimTokens(
    leaseValues.flatMap((v) => v.split(/[ ,]+/)),
    'X-Portcullis-Lease',
  );
  if (claim.identityToken !== undefined)
    throw bad('X-Portcullis-Lease carries an identity token', 'send it in X-Portcullis-Identity');
  if (identity !== undefined) {
    const token = identity.trim();
    if (!isIdentityToken(token))
      throw bad('X-Portcullis-Identity is not an identity token (a JWS with typ "pcx-identity+jwt")');
    claim.identityToken = token;
  }
  if (session !== undefined) {
    const s = session.trim();
    if (!SESSION.test(s)) throw bad(`X-Portcullis-Session is invalid: ${SESSION_RULE}`);
    claim.session = s;
  }
  return claim;
}

function single(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  if (!Array.isArray(v)) return v;
  if (v.length !== 1) throw bad(`more than one ${name} header`);
  return v[0];
}

function claimTokens(tokens: string[], where: string): IdentityClaim {
  const claim: IdentityClaim = { leases: [] };
  for (const t of tokens) {
    if (t === '') continue;
    if (!isIdentityToken(t)) claim.leases.push(t);
    else if (claim.identityToken === undefined) claim.identityToken = t;
    else throw bad(`${where} carries more than one identity token`);
  }
  return claim;
}

/**
 * Whether a string is a compact JWS whose protected header says typ pcx-identity+jwt. Read
 * without verifying: it only decides where the token goes (the PDP verifies it there).
 */
export function isIdentityToken(token: string): boolean {
  const dot = token.indexOf('.');
  // A compact JWS has exactly three parts; a header is small, so a long first part is not one.
  if (dot <= 0 || dot > 1024 || token.split('.').length !== 3) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && (header as { typ?: unknown }).typ === IDENTITY_TYP;
  } catch {
    return false;
  }
}

/**
 * The identity a request is decided with. Leases are appended to context.leases; a claimed
 * session equal to the configured one changes nothing; any other claimed session (or one
 * where none was configured) counts only with an identity token, which then becomes
 * context.identity (a token sent without a session claim goes there too: it can only make the
 * PDP refuse). Without a token the claim is refused (PCX_IDENTITY_UNPROVEN) and nothing of it
 * is used. The configured principal always stands: no claim can name another.
 */
export function resolveIdentity(configured: ConfiguredIdentity, claim: IdentityClaim): ResolvedIdentity {
  const context: RequestContext = { ...configured.context };
  const claimed = claim.session;
  if (claimed !== undefined && claimed !== configured.context.session) {
    if (claim.identityToken === undefined) {
      const has = configured.context.session;
      return {
        ok: false,
        error: new PcxError(
          'PCX_IDENTITY_UNPROVEN',
          `session "${claimed}" is claimed without an identity token` +
            (has === undefined ? ' (no session is configured)' : ` (the configured session is "${has}")`),
          {
            hint:
              'send an identity token for that session with the claim (portcullis lease issue --identity), ' +
              'or leave the session out to use the configured one',
          },
        ),
      };
    }
    context.session = claimed;
  }
  if (claim.identityToken !== undefined) context.identity = claim.identityToken;
  if (claim.leases.length > 0) context.leases = [...claim.leases];
  return { ok: true, principal: configured.principal, context };
}

/**
 * The id of a token for records and logs: its jti, never the token. The payload is decoded
 * WITHOUT verifying the signature: this only chooses what to write down, it grants nothing.
 * Anything that is not a decodable token with a well-formed string jti is replaced entirely,
 * since it may itself be a secret. A value that already is a jti is kept (idempotent).
 */
export function leaseId(token: unknown): string {
  if (typeof token !== 'string') return REDACTED;
  if (token === REDACTED || JTI.test(token)) return token;
  const parts = token.split('.');
  if (parts.length !== 3) return REDACTED;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    const jti = typeof payload === 'object' && payload !== null ? (payload as { jti?: unknown }).jti : undefined;
    return typeof jti === 'string' && JTI.test(jti) ? jti : REDACTED;
  } catch {
    return REDACTED;
  }
}

/** The context as it may be recorded: lease and identity tokens replaced by their ids. */
export function redactContext(ctx: RequestContext | undefined): RequestContext | undefined {
  if (ctx === undefined || (ctx.leases === undefined && ctx.identity === undefined)) return ctx;
  const out: RequestContext = { ...ctx };
  if (ctx.leases !== undefined) out.leases = Array.isArray(ctx.leases) ? ctx.leases.map(leaseId) : [REDACTED];
  if (ctx.identity !== undefined) out.identity = leaseId(ctx.identity);
  return out;
}
