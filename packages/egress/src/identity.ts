/**
 * Per-request refinement of the sidecar's configured identity through `Proxy-Authorization:
 * Basic base64(session:lease-token)`. Clients that speak proxies already know how to send it
 * (curl --proxy-user, HTTPS_PROXY=http://session:token@host:port for git, npm, pip, undici).
 *
 * The token is a secret: it goes to the PDP in context.leases and nowhere else. What may be
 * logged or audited is its id (the JWS payload's `jti`, read without verifying: it only labels
 * the record; the PDP verifies the token).
 */
import { PcxError, type RequestContext } from '@portcullis/protocol';

export interface Refinement {
  session?: string;
  leases: string[];
}

const SESSION = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_HEADER = 16 * 1024;

export function parseProxyAuthorization(header: string | undefined): Refinement {
  if (header === undefined) return { leases: [] };
  const m = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
  if (!m || header.length > MAX_HEADER) {
    throw new PcxError('PCX_EGRESS_BAD_PROXY_AUTH', 'Proxy-Authorization must be "Basic base64(session:lease-token)"');
  }
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  const refinement: Refinement = { leases: [] };
  if (user !== '') {
    if (!SESSION.test(user))
      throw new PcxError(
        'PCX_EGRESS_BAD_PROXY_AUTH',
        'the Proxy-Authorization user name (the session) must be 1-128 of A-Z a-z 0-9 . _ : -',
      );
    refinement.session = user;
  }
  // Several leases may be sent separated by spaces or commas.
  for (const t of password.split(/[ ,]+/)) if (t !== '') refinement.leases.push(t);
  return refinement;
}

/** The id of a lease token for records and logs: its jti, never the token. */
export function leaseId(token: string): string {
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { jti?: unknown };
      if (typeof payload.jti === 'string' && /^[A-Za-z0-9_:-]{1,128}$/.test(payload.jti)) return payload.jti;
    } catch {
      // fall through: an unreadable token is labelled as such, never quoted.
    }
  }
  return '[redacted]';
}

export function refineContext(base: RequestContext | undefined, r: Refinement): RequestContext | undefined {
  if (r.session === undefined && r.leases.length === 0) return base;
  const ctx: RequestContext = { ...base };
  if (r.session !== undefined) ctx.session = r.session;
  if (r.leases.length > 0) ctx.leases = r.leases;
  return ctx;
}

/** The context as it may be recorded: lease tokens replaced by their ids. */
export function redactContext(ctx: RequestContext | undefined): RequestContext | undefined {
  if (!ctx?.leases) return ctx;
  return { ...ctx, leases: ctx.leases.map(leaseId) };
}
