// Capability leases end to end through the in-process daemon: real Ed25519 keys (jose), real
// JWS tokens (some deliberately malformed, signed byte by byte), a real socket. Every reason a
// lease is ignored comes back in the decision's reasons with a sentence; a lease never beats a
// deny and grants only within the lease ceiling of its issuer.
import t, { type Test } from 'tap';
import { createHmac } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompactSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { BASE_POLICY, RawConn, eventually, health, request, startTestPdp, tempDir } from './helpers.js';

interface Signer {
  key: CryptoKey;
  kid: string;
  jwk: JWK;
}

async function newSigner(issuer?: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { key: privateKey, kid, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig', ...(issuer ? { iss: issuer } : {}) } };
}

const AUDIENCE = 'pcx-test';
const now = () => Math.floor(Date.now() / 1000);
let seq = 0;
const b64 = (s: string) => Buffer.from(s).toString('base64url');

/** Sign `payload` (an object, or raw JSON text such as `"exp":1e400`) exactly as given. */
async function signRaw(signer: Signer, header: Record<string, unknown>, payload: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'EdDSA', typ: 'pcx-lease+jwt', kid: signer.kid, ...header } as { alg: string })
    .sign(signer.key);
}

/** A lease with sensible claims (`undefined` removes one), signed by `signer`. */
async function lease(
  signer: Signer,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<{ token: string; jti: string }> {
  const jti = `lease-${++seq}`;
  const iat = now();
  const body = {
    sub: 'agent-7',
    aud: AUDIENCE,
    jti,
    iat,
    exp: iat + 600,
    pcx_rules: 'allow net.connect when resource.host == "lease.example"',
    ...claims,
  };
  return { token: await signRaw(signer, header, JSON.stringify(body)), jti };
}

const keyA = await newSigner();
const keyB = await newSigner();
const unbounded = await newSigner(); // trusted, but no ceiling names it
const approvals = await newSigner('approvals'); // speaks for the issuer "approvals"
const foreign = await newSigner();

const POLICY = `${BASE_POLICY}
leases from "${keyA.kid}", "${keyB.kid}" max 1h {
  allow net.connect when resource.host matches "*.example"
}
leases from "approvals" max 10m {
  allow net.connect when resource.host == "approved.example"
}
`;

async function setup(t: Test, options: { keys?: Signer[]; skew?: number } = {}) {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  const revoked = join(dir, 'revoked.txt');
  const signers = options.keys ?? [keyA, keyB, unbounded, approvals];
  writeFileSync(keys, JSON.stringify({ keys: signers.map((s) => s.jwk) }));
  writeFileSync(revoked, '# revoked leases\n');
  const pdp = await startTestPdp(t, {
    policy: POLICY,
    leaseKeysPath: keys,
    leaseAudience: AUDIENCE,
    revokedPath: revoked,
    ...(options.skew !== undefined ? { leaseClockSkewSec: options.skew } : {}),
  });
  const conn = await RawConn.open(pdp.socketPath);
  t.teardown(() => conn.close());
  let id = 0;
  const ask = async (req: Record<string, unknown>) => {
    conn.write(`${JSON.stringify({ id: ++id, request: req })}\n`);
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
  const { token, jti } = await lease(keyA);
  const d = await ask(withLeases('lease.example', [token]));
  t.equal(d.decision, 'allow');
  t.same(d.reasons, [{ effect: 'allow', lease: jti, rule: `lease:${jti}#1` }]);
  t.equal((await ask(withLeases('other.example', [token]))).decision, 'deny', 'only what it grants');
  t.equal((await ask(withLeases('lease.example', [token]))).decision, 'allow', 'again, from the verification cache');
});

t.test('a lease turns an ask into an allow within the ceiling, and never overrides a deny', async (t) => {
  const { ask } = await setup(t);
  const grantAsk = await lease(keyA, { pcx_rules: 'allow net.connect when resource.host == "ask.example"' });
  t.equal((await ask(request('ask.example'))).decision, 'ask');
  t.equal((await ask(withLeases('ask.example', [grantAsk.token]))).decision, 'allow');
  const grantEvil = await lease(keyA, { pcx_rules: 'allow net.connect when resource.host == "evil.example"' });
  const d = await ask(withLeases('evil.example', [grantEvil.token]));
  t.equal(d.decision, 'deny');
  t.match(d.reasons, [{ effect: 'deny', because: 'blocked host' }]);
  // The lease's rule is within the ceiling's actions, but its condition reaches past the
  // ceiling's: only the overlap counts, so an ask outside it stays an ask.
  const broad = await lease(keyA, { pcx_rules: 'allow net.connect' });
  t.equal((await ask(withLeases('x.example', [broad.token]))).decision, 'allow', 'inside the ceiling');
  t.equal((await ask(withLeases('github.com', [broad.token]))).decision, 'deny', 'outside the ceiling');
});

t.test('a lease from an issuer-bound key is bounded by that issuer ceiling', async (t) => {
  const { ask } = await setup(t);
  const ok = await lease(approvals, { iss: 'approvals', pcx_rules: 'allow net.connect' });
  t.same((await ask(withLeases('approved.example', [ok.token]))).decision, 'allow');
  t.same((await ask(withLeases('lease.example', [ok.token]))).decision, 'deny', 'not the *.example ceiling of A');
  const noIss = await lease(approvals, { pcx_rules: 'allow net.connect' });
  t.same((await ask(withLeases('approved.example', [noIss.token]))).decision, 'allow', 'iss may be left out');
});

t.test('ignored leases: each reason is a deny that names the lease, the word and a sentence', async (t) => {
  const { ask } = await setup(t);
  const iat = now();
  const noneHeader = b64(JSON.stringify({ alg: 'none', typ: 'pcx-lease+jwt', kid: keyA.kid }));
  const forgedBody = b64(JSON.stringify({ sub: 'agent-7', aud: AUDIENCE, jti: 'forged', iat, exp: iat + 60 }));
  // HS256 keyed with the public key's bytes: the classic confusion where a verifier takes the
  // algorithm from the token and the public key as the HMAC secret.
  const hsHeader = b64(JSON.stringify({ alg: 'HS256', typ: 'pcx-lease+jwt', kid: keyA.kid }));
  const hsMac = (secret: string | Buffer) =>
    createHmac('sha256', secret).update(`${hsHeader}.${forgedBody}`).digest('base64url');
  const hsRaw = `${hsHeader}.${forgedBody}.${hsMac(Buffer.from(keyA.jwk.x!, 'base64url'))}`;
  const hsJwk = `${hsHeader}.${forgedBody}.${hsMac(JSON.stringify(keyA.jwk))}`;
  const raw = async (body: string) => ({ token: await signRaw(keyA, {}, body), jti: 'inf' });
  type Case = [string, Promise<{ token: string; jti?: string }> | string, string, RegExp, Record<string, unknown>?];
  const cases: Case[] = [
    ['expired', lease(keyA, { iat: iat - 900, exp: iat - 300 }), 'expired', /expired at .* clock skew of 60 s/],
    ['not yet valid (nbf)', lease(keyA, { nbf: iat + 600 }), 'not_yet_valid', /not valid before/],
    ['issued in the future', lease(keyA, { iat: iat + 600, exp: iat + 900 }), 'not_yet_valid', /issued in the future/],
    ['alg none with a signature part', `${noneHeader}.${forgedBody}.AAAA`, 'bad_signature', /alg "none" is refused/],
    ['alg none, unsigned', `${noneHeader}.${forgedBody}.`, 'invalid', /not a compact JWS/],
    ['HS256 keyed with the raw public key', hsRaw, 'bad_signature', /alg "HS256" is refused/],
    ['HS256 keyed with the public JWK', hsJwk, 'bad_signature', /alg "HS256" is refused/],
    ['a foreign key claiming a trusted kid', lease(foreign, {}, { kid: keyA.kid }), 'bad_signature', /does not verify/],
    ['signed by an unknown key', lease(foreign), 'unknown_key', /kid names no trusted key/],
    ['no kid while four keys are trusted', lease(keyA, {}, { kid: undefined }), 'unknown_key', /names no kid and 4/],
    ['iss another than its key speaks for', lease(keyA, { iss: 'approvals' }), 'wrong_issuer', /speaks for \(none\)/],
    ['for another audience', lease(keyA, { aud: 'other-deployment' }), 'wrong_audience', /"pcx-test"/],
    ['without an audience', lease(keyA, { aud: undefined }), 'invalid', /"aud"/],
    ['bound to another principal', lease(keyA, { sub: 'agent-8' }), 'wrong_principal', /"agent-8", but .* "agent-7"/],
    [
      'bound to another project',
      lease(keyA, { pcx_project: 'b' }),
      'wrong_project',
      /"b", but .* "a"/,
      { project: 'a' },
    ],
    ['bound to a project, request has none', lease(keyA, { pcx_project: 'b' }), 'wrong_project', /has none/],
    ['bound to another session', lease(keyA, { pcx_session: 's-1' }), 'wrong_session', /"s-1"/, { session: 's-2' }],
    ['without a jti', lease(keyA, { jti: undefined }), 'invalid', /"jti"/],
    ['without an iat', lease(keyA, { iat: undefined }), 'invalid', /no "iat" claim/],
    ['without an exp', lease(keyA, { exp: undefined }), 'invalid', /no "exp" claim/],
    [
      'exp 1e400 (Infinity)',
      raw(`{"sub":"agent-7","aud":"${AUDIENCE}","jti":"inf","iat":${iat},"exp":1e400}`),
      'invalid',
      /"exp" is not a whole number/,
    ],
    ['a fractional iat', lease(keyA, { iat: iat + 0.5 }), 'invalid', /"iat" is not a whole number/],
    ['a string nbf', lease(keyA, { nbf: String(iat) }), 'invalid', /"nbf" is not a whole number/],
    ['exp before iat', lease(keyA, { exp: iat - 1 }), 'invalid', /"exp" is not after "iat"/],
    ['without the lease typ', lease(keyA, {}, { typ: 'JWT' }), 'invalid', /typ is not/],
    [
      'an extra header member',
      lease(keyA, {}, { jku: 'https://evil.example/keys' }),
      'invalid',
      /protected header has "jku"/,
    ],
    ['without rules', lease(keyA, { pcx_rules: undefined }), 'invalid', /needs "pcx_rules"/],
    ['granting a deny rule', lease(keyA, { pcx_rules: 'deny net.connect' }), 'bad_rules', /do not compile/],
    [
      'rules that do not compile',
      lease(keyA, { pcx_rules: 'allow net.connect when resource.x == 1' }),
      'bad_rules',
      /compile/,
    ],
    ['from a key no ceiling names', lease(unbounded), 'no_ceiling', /no lease ceiling names issuer/],
    ['living longer than its ceiling', lease(keyA, { exp: iat + 7200 }), 'exceeds_lifetime', /7200 s .*max 1h/],
    ['longer than the issuer ceiling', lease(approvals, { exp: iat + 3600 }), 'exceeds_lifetime', /max 10m/],
    ['not a JWS', Promise.resolve({ token: 'garbage' }), 'invalid', /not a compact JWS/],
    ['over the size limit', `${'a'.repeat(17 * 1024)}.b.c`, 'too_large', /over 16384 bytes/],
  ];
  const beforeSignature = /typ is not|protected header|compact JWS|alg |kid|does not verify|over 16384/;
  const verified = (why: string, detail: RegExp) => why !== 'no_keys' && !beforeSignature.test(detail.source);
  for (const [name, made, why, detail, context] of cases) {
    const { token, jti } = typeof made === 'string' ? { token: made, jti: undefined } : await made;
    const d = await ask(withLeases('lease.example', [token], context ?? {}));
    t.equal(d.decision, 'deny', name);
    // Until the signature is checked the jti is attacker-chosen, so it is shown as "unknown".
    const shown = jti !== undefined && verified(why, detail) && !name.includes('jti') ? jti : 'unknown';
    t.match(d.reasons, [{ lease: shown, ignored: why, detail }], name);
    t.equal(d.reasons.length, 1, `${name}: one reason`);
  }
  t.same(
    (await ask(withLeases('lease.example', [42]))).reasons,
    [{ lease: 'unknown', ignored: 'invalid', detail: 'a lease token must be a string' }],
    'not a string',
  );
  const { token } = await lease(keyA);
  const [h, , s] = token.split('.');
  const tampered = `${h}.${b64(JSON.stringify({ sub: 'agent-7', jti: 'x', pcx_rules: 'allow *' }))}.${s}`;
  t.match((await ask(withLeases('lease.example', [tampered]))).reasons, [
    { lease: 'unknown', ignored: 'bad_signature' },
  ]);
});

t.test('a rule outside the ceiling is ignored with exceeds_ceiling; the rest of the lease counts', async (t) => {
  const { ask } = await setup(t);
  const mixed = await lease(keyA, { pcx_rules: 'allow fs.read\nallow net.connect when resource.host == "a.example"' });
  const d = await ask(withLeases('a.example', [mixed.token]));
  t.equal(d.decision, 'allow');
  t.match(d.reasons, [
    { effect: 'allow', lease: mixed.jti, rule: `lease:${mixed.jti}#2` },
    { lease: mixed.jti, rule: `lease:${mixed.jti}#1`, ignored: 'exceeds_ceiling', detail: /grants fs\.read, outside/ },
  ]);
  const star = await lease(keyA, { pcx_rules: 'allow *' });
  const e = await ask(withLeases('evil.example', [star.token]));
  t.equal(e.decision, 'deny', 'not even allow *');
  t.match(e.reasons, [{ effect: 'deny' }, { lease: star.jti, ignored: 'exceeds_ceiling' }]);
});

t.test('clock skew at both edges: just inside counts, just outside is ignored', async (t) => {
  const { ask } = await setup(t, { skew: 60 });
  const iat = now();
  // 20 s either side of the skew: far from flaky, and still only inside because of the skew.
  const inside = [
    await lease(keyA, { iat: iat - 600, exp: iat - 40 }),
    await lease(keyA, { nbf: iat + 40 }),
    await lease(keyA, { iat: iat + 40, exp: iat + 600 }),
  ];
  for (const l of inside) t.equal((await ask(withLeases('lease.example', [l.token]))).decision, 'allow', l.jti);
  const outside: Array<[Promise<{ token: string }>, string]> = [
    [lease(keyA, { iat: iat - 600, exp: iat - 80 }), 'expired'],
    [lease(keyA, { nbf: iat + 80 }), 'not_yet_valid'],
    [lease(keyA, { iat: iat + 80, exp: iat + 600 }), 'not_yet_valid'],
  ];
  for (const [made, why] of outside) {
    const d = await ask(withLeases('lease.example', [(await made).token]));
    t.match(d, { decision: 'deny', reasons: [{ ignored: why }] }, why);
  }
});

t.test('with no skew tolerated, a lease is ignored the moment it expires', async (t) => {
  const { ask } = await setup(t, { skew: 0 });
  const iat = now();
  const past = await lease(keyA, { iat: iat - 600, exp: iat - 1 });
  t.match(await ask(withLeases('lease.example', [past.token])), {
    decision: 'deny',
    reasons: [{ ignored: 'expired' }],
  });
  const future = await lease(keyA, { nbf: iat + 5 });
  t.match(await ask(withLeases('lease.example', [future.token])), { reasons: [{ ignored: 'not_yet_valid' }] });
});

t.test('key rotation with two keys: kid selects the key; retiring one stops only its leases', async (t) => {
  const { ask, keys } = await setup(t, { keys: [keyA, keyB] });
  const a = await lease(keyA);
  const b = await lease(keyB);
  t.equal((await ask(withLeases('lease.example', [a.token]))).decision, 'allow', 'old key');
  t.equal((await ask(withLeases('lease.example', [b.token]))).decision, 'allow', 'new key');
  const swapped = await lease(keyB, {}, { kid: keyA.kid });
  t.match((await ask(withLeases('lease.example', [swapped.token]))).reasons, [{ ignored: 'bad_signature' }]);
  writeFileSync(keys, JSON.stringify({ keys: [keyB.jwk] }));
  const d = await eventually(async () => {
    const r = await ask(withLeases('lease.example', [a.token]));
    return r.decision === 'deny' ? r : undefined;
  });
  t.match(d.reasons, [{ lease: 'unknown', ignored: 'unknown_key' }], 'the retired key no longer verifies');
  t.equal((await ask(withLeases('lease.example', [b.token]))).decision, 'allow', 'the new key still does');
  const noKid = await lease(keyB, {}, { kid: undefined });
  t.equal((await ask(withLeases('lease.example', [noKid.token]))).decision, 'allow', 'one key: kid may be left out');
});

t.test('more leases than a request may carry: the rest are ignored together as too_many', async (t) => {
  const { ask } = await setup(t);
  const tokens = await Promise.all(Array.from({ length: 17 }, () => lease(keyA)));
  const d = await ask(
    withLeases(
      'lease.example',
      tokens.map((l) => l.token),
    ),
  );
  t.equal(d.decision, 'allow');
  t.match(d.reasons.at(-1), { lease: 'unknown', ignored: 'too_many', detail: /1 lease\(s\) beyond the first 16/ });
});

t.test('a bound lease applies when its project and session match; valid and ignored leases mix', async (t) => {
  const { ask } = await setup(t);
  const bound = await lease(keyA, { pcx_project: 'alpha', pcx_session: 's-42' });
  const expired = await lease(keyA, { iat: now() - 900, exp: now() - 300 });
  const d = await ask(withLeases('lease.example', [expired.token, bound.token], { project: 'alpha', session: 's-42' }));
  t.equal(d.decision, 'allow');
  t.match(d.reasons, [
    { lease: bound.jti, effect: 'allow' },
    { lease: expired.jti, ignored: 'expired' },
  ]);
});

t.test('revocation: the list is hot-reloaded and a revoked lease stops granting', async (t) => {
  const { ask, revoked, socketPath } = await setup(t);
  const { token, jti } = await lease(keyA);
  t.equal((await ask(withLeases('lease.example', [token]))).decision, 'allow');
  appendFileSync(revoked, `${jti}\n`);
  const d = await eventually(async () => {
    const r = await ask(withLeases('lease.example', [token]));
    return r.decision === 'deny' ? r : undefined;
  });
  t.same(d.reasons, [{ lease: jti, ignored: 'revoked', detail: 'its jti is on the revocation list' }]);
  t.match((await health(socketPath)).leases, { keys: 4, revoked: 1, audience: AUDIENCE, clock_skew_sec: 60 });
});

t.test('a keys file holding a private key is refused at start', async (t) => {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  writeFileSync(keys, JSON.stringify({ keys: [{ ...keyA.jwk, d: 'AAAA' }] }));
  await t.rejects(startTestPdp(t, { leaseKeysPath: keys, leaseAudience: AUDIENCE }), {
    code: 'PCX_LEASE_KEYS',
    message: /private key/,
  });
});

t.test('lease keys without an audience are refused at start', async (t) => {
  const dir = tempDir(t);
  const keys = join(dir, 'keys.jwks');
  writeFileSync(keys, JSON.stringify({ keys: [keyA.jwk] }));
  await t.rejects(startTestPdp(t, { leaseKeysPath: keys }), { code: 'PCX_PDP_LEASE_AUDIENCE' });
  await t.rejects(startTestPdp(t, { leaseKeysPath: keys, leaseAudience: 'has space' }), {
    code: 'PCX_PDP_LEASE_AUDIENCE',
  });
});

t.test('answers come out of order: a lease still being verified does not hold up the next request', async (t) => {
  const { conn } = await setup(t);
  const { token } = await lease(keyA);
  conn.write(
    `${JSON.stringify({ id: 1, request: withLeases('lease.example', [token]) })}\n` +
      `${JSON.stringify({ id: 2, request: request('ok.example') })}\n`,
  );
  const [a, b] = await conn.frames(2);
  t.match(a, { id: 2, decision: 'allow' }, 'the plain request is answered first');
  t.match(b, { id: 1, decision: 'allow' });
});

t.test('a token never appears in logs or answers; only its jti does', async (t) => {
  const { ask, logs } = await setup(t);
  const bad = await lease(keyA, { pcx_rules: 'allow net.connect when resource.nosuch == 1' });
  const good = await lease(keyA);
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

t.test('without configured keys every lease is ignored as no_keys', async (t) => {
  const { socketPath } = await startTestPdp(t, { policy: POLICY });
  const conn = await RawConn.open(socketPath);
  t.teardown(() => conn.close());
  const { token } = await lease(keyA);
  conn.write(`${JSON.stringify({ id: 1, request: withLeases('lease.example', [token]) })}\n`);
  t.match(await conn.frame(), {
    decision: 'deny',
    reasons: [{ lease: 'unknown', ignored: 'no_keys', detail: /--lease-keys/ }],
  });
});

t.test('3,000 pipelined requests each with a fresh lease: bounded pending work, every one answered', async (t) => {
  const { conn } = await setup(t);
  const tokens = await Promise.all(Array.from({ length: 3000 }, () => lease(keyA)));
  conn.write(
    tokens.map((l, i) => `${JSON.stringify({ id: i, request: withLeases('lease.example', [l.token]) })}\n`).join(''),
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

t.test('a trust file over 16 MiB is refused before it is read; the last good list stays', async (t) => {
  const { ask, revoked, socketPath } = await setup(t);
  const { token, jti } = await lease(keyA);
  appendFileSync(revoked, `${jti}\n`);
  await eventually(async () => (await ask(withLeases('lease.example', [token]))).decision === 'deny');
  writeFileSync(revoked, `${jti}\n${'#'.repeat(17 * 1024 * 1024)}\n`);
  const h = await eventually(async () => {
    const l = (await health(socketPath)).leases as { revocation_file?: { ok: boolean; error?: string } };
    return l.revocation_file?.ok === false ? l : undefined;
  });
  t.match(h.revocation_file!.error, /trust files are limited to 16777216 bytes/);
  t.match((await ask(withLeases('lease.example', [token]))).reasons, [{ lease: jti, ignored: 'revoked' }]);
});
