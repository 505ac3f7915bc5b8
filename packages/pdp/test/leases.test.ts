// Capability leases end to end through the in-process daemon: real Ed25519 keys (jose), real
// JWS tokens, a real socket. Each way a lease can be ignored, and that a lease never beats deny.
import t, { type Test } from 'tap';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { RawConn, eventually, health, request, startTestPdp, tempDir } from './helpers.js';

interface Signer {
  key: CryptoKey;
  kid: string;
  jwk: JWK;
}

async function newSigner(): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { key: privateKey, kid, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } };
}

const now = () => Math.floor(Date.now() / 1000);
let seq = 0;

async function lease(
  signer: Signer,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<{ token: string; jti: string }> {
  const jti = `lease-${++seq}`;
  const body = {
    sub: 'agent-7',
    jti,
    exp: now() + 600,
    pcx_rules: 'allow net.connect when resource.host == "lease.example"',
    ...claims,
  };
  const token = await new SignJWT(body as Record<string, unknown>)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'pcx-lease+jwt', kid: signer.kid, ...header })
    .sign(signer.key);
  return { token, jti };
}

const trusted = await newSigner();
const foreign = await newSigner();

async function setup(t: Test) {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  const revoked = join(dir, 'revoked.txt');
  writeFileSync(keys, JSON.stringify({ keys: [trusted.jwk] }));
  writeFileSync(revoked, '# revoked leases\n');
  const pdp = await startTestPdp(t, { leaseKeysPath: keys, revokedPath: revoked });
  const conn = await RawConn.open(pdp.socketPath);
  t.teardown(() => conn.close());
  let id = 0;
  const ask = async (req: Record<string, unknown>) => {
    conn.write(JSON.stringify({ id: ++id, request: req }) + '\n');
    const f = await conn.frame();
    t.equal(f.id, id);
    return f as { decision: string; reasons: Array<Record<string, unknown>>; policy_version: string };
  };
  return { ...pdp, keys, revoked, conn, ask };
}

const withLeases = (host: string, tokens: unknown[], context: Record<string, unknown> = {}) =>
  request(host, { context: { ...context, leases: tokens } });

t.test('a valid lease grants what the policy alone denies, and the reason names the lease', async (t) => {
  const { ask } = await setup(t);
  t.equal((await ask(request('lease.example'))).decision, 'deny', 'default deny without the lease');
  const { token, jti } = await lease(trusted);
  const d = await ask(withLeases('lease.example', [token]));
  t.equal(d.decision, 'allow');
  t.match(d.reasons, [{ effect: 'allow', lease: jti, rule: `lease:${jti}#1` }]);
  t.equal((await ask(withLeases('other.example', [token]))).decision, 'deny', 'only what it grants');
  t.equal((await ask(withLeases('lease.example', [token]))).decision, 'allow', 'again, from the verification cache');
});

t.test('a lease turns an ask into an allow, and never overrides a deny', async (t) => {
  const { ask } = await setup(t);
  const grantAsk = await lease(trusted, { pcx_rules: 'allow net.connect when resource.host == "ask.example"' });
  t.equal((await ask(request('ask.example'))).decision, 'ask');
  t.equal((await ask(withLeases('ask.example', [grantAsk.token]))).decision, 'allow');
  const grantEvil = await lease(trusted, { pcx_rules: 'allow net.connect when resource.host == "evil.example"' });
  const d = await ask(withLeases('evil.example', [grantEvil.token]));
  t.equal(d.decision, 'deny');
  t.match(d.reasons, [{ effect: 'deny', because: 'blocked host' }]);
  const wildcard = await lease(trusted, { pcx_rules: 'allow *' });
  t.equal((await ask(withLeases('evil.example', [wildcard.token]))).decision, 'deny', 'not even allow *');
});

t.test('ignored leases: each case is a deny that says which lease and why', async (t) => {
  const { ask } = await setup(t);
  const cases: Array<[string, Promise<{ token: string; jti: string }>, string, Record<string, unknown>?, boolean?]> = [
    ['expired', lease(trusted, { exp: now() - 60 }), 'expired'],
    ['not yet valid', lease(trusted, { nbf: now() + 600 }), 'not_yet_valid'],
    ['signed by an unknown key', lease(foreign), 'bad_signature', undefined, true],
    [
      'an unknown key claiming a trusted kid',
      lease(foreign, {}, { kid: trusted.kid }),
      'bad_signature',
      undefined,
      true,
    ],
    ['bound to another principal', lease(trusted, { sub: 'agent-8' }), 'wrong_principal'],
    ['bound to another project', lease(trusted, { pcx_project: 'beta' }), 'wrong_project', { project: 'alpha' }],
    ['bound to a project, request has none', lease(trusted, { pcx_project: 'beta' }), 'wrong_project'],
    ['bound to another session', lease(trusted, { pcx_session: 's-1' }), 'wrong_session', { session: 's-2' }],
    ['without a jti', lease(trusted, { jti: undefined }), 'invalid', undefined, true],
    ['without the lease typ', lease(trusted, {}, { typ: 'JWT' }), 'invalid'],
    ['without an exp', lease(trusted, { exp: undefined }), 'invalid'],
    ['granting a deny rule', lease(trusted, { pcx_rules: 'deny net.connect' }), 'invalid'],
    [
      'granting rules that do not compile',
      lease(trusted, { pcx_rules: 'allow net.connect when resource.nosuch == 1' }),
      'invalid',
    ],
  ];
  for (const [name, made, why, context, unknownJti] of cases) {
    const { token, jti } = await made;
    const d = await ask(withLeases('lease.example', [token], context ?? {}));
    t.equal(d.decision, 'deny', name);
    t.same(d.reasons, [{ lease: unknownJti ? 'unknown' : jti, ignored: why }], name);
  }
  const { token } = await lease(trusted);
  const [h, p, s] = token.split('.');
  const forged = { sub: 'agent-7', jti: 'x', exp: now() + 600, pcx_rules: 'allow *' };
  const tampered = `${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`;
  t.not(tampered.split('.')[1], p);
  t.same(
    (await ask(withLeases('lease.example', [tampered]))).reasons,
    [{ lease: 'unknown', ignored: 'bad_signature' }],
    'a tampered payload',
  );
  t.same(
    (await ask(withLeases('lease.example', ['garbage']))).reasons,
    [{ lease: 'unknown', ignored: 'invalid' }],
    'not a JWS',
  );
  t.same(
    (await ask(withLeases('lease.example', [42]))).reasons,
    [{ lease: 'unknown', ignored: 'invalid' }],
    'not a string',
  );
});

t.test('a bound lease applies when its project and session match; valid and ignored leases mix', async (t) => {
  const { ask } = await setup(t);
  const bound = await lease(trusted, { pcx_project: 'alpha', pcx_session: 's-42' });
  const expired = await lease(trusted, { exp: now() - 60 });
  const d = await ask(withLeases('lease.example', [expired.token, bound.token], { project: 'alpha', session: 's-42' }));
  t.equal(d.decision, 'allow');
  t.match(d.reasons, [
    { lease: bound.jti, effect: 'allow' },
    { lease: expired.jti, ignored: 'expired' },
  ]);
});

t.test('revocation: the list is hot-reloaded and a revoked lease stops granting', async (t) => {
  const { ask, revoked, socketPath } = await setup(t);
  const { token, jti } = await lease(trusted);
  t.equal((await ask(withLeases('lease.example', [token]))).decision, 'allow');
  appendFileSync(revoked, `${jti}\n`);
  const d = await eventually(async () => {
    const r = await ask(withLeases('lease.example', [token]));
    return r.decision === 'deny' ? r : undefined;
  });
  t.same(d.reasons, [{ lease: jti, ignored: 'revoked' }]);
  t.same((await health(socketPath)).leases, { keys: 1, revoked: 1 });
});

t.test('lease keys are hot-reloaded: removing a key stops its leases', async (t) => {
  const { ask, keys } = await setup(t);
  const { token } = await lease(trusted);
  t.equal((await ask(withLeases('lease.example', [token]))).decision, 'allow');
  writeFileSync(keys, JSON.stringify({ keys: [foreign.jwk] }));
  const d = await eventually(async () => {
    const r = await ask(withLeases('lease.example', [token]));
    return r.decision === 'deny' ? r : undefined;
  });
  t.same(d.reasons, [{ lease: 'unknown', ignored: 'bad_signature' }]);
});

t.test('a keys file holding a private key is refused at start', async (t) => {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  writeFileSync(keys, JSON.stringify({ keys: [{ ...trusted.jwk, d: 'AAAA' }] }));
  await t.rejects(startTestPdp(t, { leaseKeysPath: keys }), { code: 'PCX_LEASE_KEYS', message: /private key/ });
});

t.test('answers come out of order: a lease still being verified does not hold up the next request', async (t) => {
  const { conn } = await setup(t);
  const { token } = await lease(trusted);
  conn.write(
    JSON.stringify({ id: 1, request: withLeases('lease.example', [token]) }) +
      '\n' +
      JSON.stringify({ id: 2, request: request('ok.example') }) +
      '\n',
  );
  const [a, b] = await conn.frames(2);
  t.match(a, { id: 2, decision: 'allow' }, 'the plain request is answered first');
  t.match(b, { id: 1, decision: 'allow' });
});

t.test('a token never appears in logs or answers; only its jti does', async (t) => {
  const { ask, logs } = await setup(t);
  const bad = await lease(trusted, { pcx_rules: 'allow net.connect when resource.nosuch == 1' });
  const good = await lease(trusted);
  const answers = [
    await ask(withLeases('lease.example', [bad.token])),
    await ask(withLeases('lease.example', [good.token])),
  ];
  const everything = logs.join('\n') + JSON.stringify(answers);
  for (const tok of [bad.token, good.token]) {
    t.notOk(everything.includes(tok), 'token absent');
    t.notOk(everything.includes(tok.split('.')[2]!), 'signature absent');
  }
  t.ok(
    logs.some((l) => l.includes(bad.jti)),
    'the uncompilable lease is logged by its jti',
  );
});

t.test('without configured keys every lease is ignored as bad_signature', async (t) => {
  const { socketPath } = await startTestPdp(t);
  const conn = await RawConn.open(socketPath);
  t.teardown(() => conn.close());
  const { token } = await lease(trusted);
  conn.write(JSON.stringify({ id: 1, request: withLeases('lease.example', [token]) }) + '\n');
  t.match(await conn.frame(), { decision: 'deny', reasons: [{ lease: 'unknown', ignored: 'bad_signature' }] });
});

t.test('3,000 pipelined requests each with a fresh lease: bounded pending work, every one answered', async (t) => {
  const { conn } = await setup(t);
  const tokens = await Promise.all(Array.from({ length: 3000 }, () => lease(trusted)));
  conn.write(
    tokens.map((l, i) => JSON.stringify({ id: i, request: withLeases('lease.example', [l.token]) }) + '\n').join(''),
  );
  const frames = await conn.frames(3000, 30_000);
  t.equal(new Set(frames.map((f) => f.id)).size, 3000);
  t.equal(frames.filter((f) => f.decision === 'allow').length, 3000);
  const byId = new Map(frames.map((f) => [f.id as number, f]));
  t.ok(
    tokens.every((l, i) => (byId.get(i)!.reasons as Array<{ lease?: string }>)[0]!.lease === l.jti),
    'each answer names its own lease',
  );
});
