/**
 * Identity resolution: a client narrows its identity (leases, the session it already has) and
 * never widens it without an identity token; the transport parsers route tokens by their JWS
 * `typ`. The tokens here are unsigned on purpose: nothing in this module verifies a signature
 * (the PDP does), so a token only needs the shape that routes it.
 */
import t from 'tap';
import { isIdentityToken } from '../src/identity.js';
import {
  leaseId,
  parseIdentityHeaders,
  parseProxyAuthorization,
  prepareAuditRecord,
  REDACTED,
  redactContext,
  resolveIdentity,
  type ConfiguredIdentity,
  type HeaderMap,
  type PcxError,
} from '../src/index.js';

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const jws = (typ: string, jti: string): string =>
  `${b64({ alg: 'EdDSA', typ, kid: 'k1' })}.${b64({ sub: 'agent-7', jti, pcx_session: 's-42' })}.c2ln`;
const identity = jws('pcx-identity+jwt', 'id-1');
const lease = jws('pcx-lease+jwt', 'lease-1');
const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;

const configured: ConfiguredIdentity = {
  principal: { id: 'agent-7', roles: ['developer'] },
  context: { project: 'alpha', session: 's-1' },
};

function refusal(f: () => unknown): PcxError {
  try {
    f();
  } catch (e) {
    return e as PcxError;
  }
  throw new Error('expected a refusal');
}

t.test('a request that claims nothing is decided with the configured identity', async (t) => {
  const r = resolveIdentity(configured, { leases: [] });
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.principal, configured.principal);
  t.same(r.context, { project: 'alpha', session: 's-1' });
  r.context.session = 'changed';
  t.equal(configured.context.session, 's-1', 'the configured identity is copied, never modified');
});

t.test('claiming the configured session is a no-op; leases are appended', async (t) => {
  const r = resolveIdentity(configured, parseProxyAuthorization(basic(`s-1:${lease} tok-2`)));
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.context, { project: 'alpha', session: 's-1', leases: [lease, 'tok-2'] });
  t.notOk('identity' in r.context);
});

t.test('another session without an identity token is refused: PCX_IDENTITY_UNPROVEN', async (t) => {
  for (const claim of [
    parseProxyAuthorization(basic('s-42:')),
    parseProxyAuthorization(basic(`s-42:${lease}`)), // a lease is not an identity token
  ]) {
    const r = resolveIdentity(configured, claim);
    t.notOk(r.ok);
    if (r.ok) continue;
    t.equal(r.error.code, 'PCX_IDENTITY_UNPROVEN');
    t.match(r.error.message, /session "s-42" is claimed without an identity token \(the configured session is "s-1"\)/);
    t.match(r.error.hint, /lease issue --identity/);
  }
  const none = resolveIdentity({ principal: { id: 'agent-7' }, context: {} }, { session: 's-42', leases: [] });
  t.notOk(none.ok, 'adding a session where none is configured is widening too');
  if (!none.ok) t.match(none.error.message, /no session is configured/);
});

t.test('another session with an identity token goes to the PDP to verify; the principal stands', async (t) => {
  const r = resolveIdentity(configured, parseProxyAuthorization(basic(`s-42:${lease},${identity}`)));
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.principal, configured.principal);
  t.same(r.context, { project: 'alpha', session: 's-42', identity, leases: [lease] });
});

t.test('an identity token is recognised by the typ of its JWS header, not by its place or payload', async (t) => {
  t.ok(isIdentityToken(identity));
  t.notOk(isIdentityToken(lease));
  t.notOk(isIdentityToken(`${b64({ alg: 'EdDSA' })}.${b64({ typ: 'pcx-identity+jwt' })}.c2ln`), 'typ in the payload');
  t.notOk(isIdentityToken(`${identity}.extra`), 'four parts is not a compact JWS');
  t.notOk(isIdentityToken('not-a-token'));
  t.notOk(isIdentityToken(`${'x'.repeat(2000)}.e30.c2ln`), 'an oversized header is not read');
  t.same(parseProxyAuthorization(basic(`:${identity}`)), { leases: [], identityToken: identity });
  const two = refusal(() => parseProxyAuthorization(basic(`s-42:${identity} ${identity}`)));
  t.equal(two.code, 'PCX_IDENTITY_BAD_CREDENTIALS');
  t.match(two.message, /more than one identity token/);
});

t.test('Proxy-Authorization: Basic base64(session:tokens), anything else is refused', async (t) => {
  t.same(parseProxyAuthorization(undefined), { leases: [] });
  t.same(parseProxyAuthorization(basic('s-9')), { leases: [], session: 's-9' }, 'no colon: a session alone');
  t.same(parseProxyAuthorization([basic('s-9:a, b')]), { leases: ['a', 'b'], session: 's-9' });
  for (const [header, why] of [
    ['Bearer abc', /must be "Basic base64\(session:tokens\)"/],
    [basic('s 42:x'), /user name \(the session\) is invalid/],
    [basic(`${'s'.repeat(129)}:x`), /the session\) is invalid/],
    [`Basic ${'A'.repeat(17 * 1024)}`, /must be "Basic/],
  ] as const) {
    const e = refusal(() => parseProxyAuthorization(header));
    t.equal(e.code, 'PCX_IDENTITY_BAD_CREDENTIALS', header.slice(0, 40));
    t.match(e.message, why);
  }
  const twice = refusal(() => parseProxyAuthorization([basic('s-1:'), basic('s-42:')]));
  t.match(twice.message, /more than one Proxy-Authorization header/);
});

t.test('X-Portcullis-Session, -Identity and -Lease headers for our HTTP APIs', async (t) => {
  t.same(
    parseIdentityHeaders({
      'x-portcullis-session': ' s-42 ',
      'x-portcullis-identity': identity,
      'x-portcullis-lease': [`${lease}, tok-2`, 'tok-3'],
    }),
    { session: 's-42', identityToken: identity, leases: [lease, 'tok-2', 'tok-3'] },
  );
  t.same(parseIdentityHeaders({}), { leases: [] });
  for (const [headers, why] of [
    [{ 'x-portcullis-identity': lease }, /X-Portcullis-Identity is not an identity token/],
    [{ 'x-portcullis-lease': identity }, /X-Portcullis-Lease carries an identity token/],
    [{ 'x-portcullis-session': ['s-1', 's-42'] }, /more than one x-portcullis-session header/],
    [{ 'x-portcullis-session': 's/42' }, /X-Portcullis-Session is invalid/],
    [{ 'x-portcullis-lease': 'x'.repeat(17 * 1024) }, /over 16384 bytes/],
  ] as Array<[HeaderMap, RegExp]>) {
    const e = refusal(() => parseIdentityHeaders(headers));
    t.equal(e.code, 'PCX_IDENTITY_BAD_CREDENTIALS');
    t.match(e.message, why);
  }
  const r = resolveIdentity(configured, parseIdentityHeaders({ 'x-portcullis-session': 's-42' }));
  t.notOk(r.ok, 'the same rule whatever the transport');
});

t.test('records carry token ids, never tokens: leaseId, redactContext and the audit record', async (t) => {
  t.equal(leaseId(lease), 'lease-1');
  t.equal(leaseId(identity), 'id-1');
  t.equal(leaseId('lease-1'), 'lease-1', 'idempotent');
  t.equal(leaseId('secret.with.dots'), REDACTED);
  t.equal(leaseId(`${b64({})}.${b64({ jti: 'bad jti!' })}.x`), REDACTED);
  t.equal(leaseId(42), REDACTED);
  const ctx = { session: 's-42', identity, leases: [lease, 'junk.secret.value'] };
  t.same(redactContext(ctx), { session: 's-42', identity: 'id-1', leases: ['lease-1', REDACTED] });
  t.equal(redactContext({ session: 's-1' })?.session, 's-1');
  t.equal(redactContext(undefined), undefined);
  const record = prepareAuditRecord({
    source: 'egress',
    principal: { id: 'agent-7' },
    action: 'net.http',
    resource: {},
    context: ctx,
    decision: 'deny',
    reasons: [],
  });
  t.same(record.context, { session: 's-42', identity: 'id-1', leases: ['lease-1', REDACTED] });
  t.notOk(JSON.stringify(record).includes(b64({ alg: 'EdDSA', typ: 'pcx-identity+jwt', kid: 'k1' })), 'no token text');
});
