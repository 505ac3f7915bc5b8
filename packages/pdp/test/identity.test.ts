// Identity tokens (context.identity) through the in-process daemon: real Ed25519 keys, tokens
// minted by protocol's issueIdentityToken/issueLease, a real socket. A request that claims an
// identity it cannot prove is a deny with PCX_PDP_IDENTITY_UNPROVEN and a reason saying why.
import t, { type Test } from 'tap';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateSigningKey,
  issueIdentityToken,
  issueLease,
  parseSigningKey,
  type SigningKey,
} from '@portcullis/protocol';
import { BASE_POLICY, RawConn, eventually, request, startTestPdp, tempDir } from './helpers.js';

const AUDIENCE = 'pcx-test';

async function newKey(): Promise<{ key: SigningKey; jwks: { keys: unknown[] } }> {
  const k = await generateSigningKey();
  return { key: parseSigningKey(JSON.stringify(k.privateJwk), 'test key'), jwks: k.publicJwks };
}

const trusted = await newKey();
const foreign = await newKey();

const POLICY = `${BASE_POLICY}
policy "incident" scope session "s-42" {
  allow net.connect when resource.host == "s42.example"
}
leases from "${trusted.key.kid}" max 1h {
  allow net.connect
}
`;

const identity = (o: Partial<Parameters<typeof issueIdentityToken>[0]> = {}) =>
  issueIdentityToken({ key: trusted.key, subject: 'agent-7', audience: AUDIENCE, ttlSec: 600, session: 's-42', ...o });

async function setup(t: Test) {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  const revoked = join(dir, 'revoked.txt');
  writeFileSync(keys, JSON.stringify(trusted.jwks));
  writeFileSync(revoked, '');
  const pdp = await startTestPdp(t, {
    policy: POLICY,
    leaseKeysPath: keys,
    leaseAudience: AUDIENCE,
    revokedPath: revoked,
  });
  const conn = await RawConn.open(pdp.socketPath);
  t.teardown(() => conn.close());
  let id = 0;
  const ask = async (req: Record<string, unknown>) => {
    conn.write(`${JSON.stringify({ id: ++id, request: req })}\n`);
    return (await conn.frame()) as {
      decision: string;
      reasons: Array<Record<string, unknown>>;
      error?: { code: string; message: string };
    };
  };
  return { ...pdp, revoked, ask };
}

const claiming = (token: unknown, context: Record<string, unknown> = {}, principal = 'agent-7') =>
  request('s42.example', { principal: { id: principal }, context: { session: 's-42', ...context, identity: token } });

t.test('a proven identity is decided as that session', async (t) => {
  const { ask } = await setup(t);
  t.equal((await ask(request('s42.example'))).decision, 'deny', 'without the session, no session policy');
  const { token } = await identity();
  const d = await ask(claiming(token));
  t.equal(d.decision, 'allow');
  t.match(d.reasons, [{ policy: 'incident' }]);
  t.notOk(d.error, 'no error');
  const full = await identity({ project: 'alpha', blueprint: 'bp' });
  t.equal((await ask(claiming(full.token, { project: 'alpha', blueprint: 'bp' }))).decision, 'allow', 'all it names');
});

t.test('an identity the token does not prove is a deny with PCX_PDP_IDENTITY_UNPROVEN and why', async (t) => {
  const { ask } = await setup(t);
  const { token, jti } = await identity();
  const expired = await identity({ now: () => Date.now() - 3_600_000 });
  const other = await identity({ audience: 'elsewhere' });
  const forged = await issueIdentityToken({
    key: foreign.key,
    subject: 'agent-7',
    audience: AUDIENCE,
    ttlSec: 600,
    session: 's-42',
  });
  const lease = await issueLease({
    key: trusted.key,
    subject: 'agent-7',
    audience: AUDIENCE,
    ttlSec: 600,
    rules: 'allow *',
  });
  const withProject = await identity({ project: 'alpha' });
  const withBlueprint = await identity({ blueprint: 'bp' });
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'another session',
      claiming(token, { session: 's-43' }),
      new RegExp(`${jti} proves session "s-42", but the request has "s-43"`),
    ],
    ['another principal', claiming(token, {}, 'agent-8'), /proves principal "agent-7", but the request has "agent-8"/],
    ['another project', claiming(withProject.token, { project: 'beta' }), /proves project "alpha", but .* "beta"/],
    ['no blueprint', claiming(withBlueprint.token), /proves blueprint "bp", but the request has none/],
    ['expired', claiming(expired.token), /is ignored \(expired: it expired at/],
    ['another audience', claiming(other.token), /wrong_audience: its aud does not name .*"pcx-test"/],
    ['an unknown key', claiming(forged.token), /ignored \(unknown_key: its kid names no trusted key\)/],
    ['a lease, not an identity token', claiming(lease.token), /is not an identity token \(typ "pcx-identity\+jwt"\)/],
    ['garbage', claiming('not.a.token!'), /ignored \(invalid: the token is not a compact JWS/],
    ['not a string', claiming({ sub: 'agent-7' }), /ignored \(invalid: a lease token must be a string\)/],
  ];
  for (const [name, req, why] of cases) {
    const d = await ask(req);
    t.equal(d.decision, 'deny', name);
    t.equal(d.error?.code, 'PCX_PDP_IDENTITY_UNPROVEN', name);
    t.match(d.error?.message, why, name);
    t.match(d.reasons, [{ error: { code: 'PCX_PDP_IDENTITY_UNPROVEN', message: why } }], `${name}: the reason`);
  }
  t.equal((await ask(claiming(token))).decision, 'allow', 'the proven request is still allowed');
  t.notOk(JSON.stringify(await ask(claiming(token, { session: 's-43' }))).includes(token), 'the token is never echoed');
});

t.test('an unproven identity is refused before leases: a valid lease does not rescue it', async (t) => {
  const { ask } = await setup(t);
  const { token } = await identity();
  const lease = await issueLease({
    key: trusted.key,
    subject: 'agent-7',
    audience: AUDIENCE,
    ttlSec: 600,
    rules: 'allow net.connect',
  });
  const d = await ask(claiming(token, { session: 's-43', leases: [lease.token] }));
  t.match(d, { decision: 'deny', error: { code: 'PCX_PDP_IDENTITY_UNPROVEN' } });
  const ok = await ask(claiming(token, { leases: [lease.token] }));
  t.equal(ok.decision, 'allow', 'proven, the lease counts too');
});

t.test('an identity token sent as a lease grants nothing', async (t) => {
  const { ask } = await setup(t);
  const { token, jti } = await identity();
  const d = await ask(request('x.example', { context: { leases: [token] } }));
  t.equal(d.decision, 'deny');
  t.match(d.reasons, [{ lease: jti, ignored: 'invalid', detail: /identity token grants nothing/ }]);
});

t.test('a revoked identity token stops proving its session', async (t) => {
  const { ask, revoked } = await setup(t);
  const { token, jti } = await identity();
  t.equal((await ask(claiming(token))).decision, 'allow');
  appendFileSync(revoked, `${jti}\n`);
  const d = await eventually(async () => {
    const r = await ask(claiming(token));
    return r.decision === 'deny' ? r : undefined;
  });
  t.match(d.error, { code: 'PCX_PDP_IDENTITY_UNPROVEN', message: /ignored \(revoked:/ });
});

t.test('without trusted keys no identity is proven', async (t) => {
  const { socketPath } = await startTestPdp(t, { policy: POLICY });
  const conn = await RawConn.open(socketPath);
  t.teardown(() => conn.close());
  const { token } = await identity();
  conn.write(`${JSON.stringify({ id: 1, request: claiming(token) })}\n`);
  t.match(await conn.frame(), {
    decision: 'deny',
    error: { code: 'PCX_PDP_IDENTITY_UNPROVEN', message: /no_keys/ },
  });
});
