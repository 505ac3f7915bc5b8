// The token format shared by `lease issue`, the control plane and the PDP: keys carry a kid
// (and optionally the issuer they speak for), tokens carry exactly the claims asked for, and
// what the PDP would refuse on form alone is never signed. Tokens are checked here with jose's
// own jwtVerify against the public JWKS, independently of the PDP's verifier.
import t from 'tap';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  generateSigningKey,
  IDENTITY_TYP,
  issueIdentityToken,
  issueLease,
  LEASE_TYP,
  MAX_RULES_BYTES,
  parseSigningKey,
  parseTrustedKeys,
} from '../src/index.js';

const made = await generateSigningKey({ issuer: 'approvals' });
const key = parseSigningKey(JSON.stringify(made.privateJwk), 'k.jwk');
const jwks = createLocalJWKSet(made.publicJwks);

t.test('a generated key has the same kid and issuer in both files, and no private part in the JWKS', async (t) => {
  t.equal(key.kid, made.kid);
  t.equal(key.issuer, 'approvals');
  const [pub] = parseTrustedKeys(JSON.stringify(made.publicJwks), 'k.jwks');
  t.equal(pub!.kid, made.kid);
  t.equal(pub!.issuer, 'approvals');
  t.notOk('d' in pub!.jwk);
  const plain = await generateSigningKey();
  t.equal(parseSigningKey(JSON.stringify(plain.privateJwk), 'p').issuer, undefined);
});

t.test('issueLease signs exactly the claims asked for, with kid, iat and aud', async (t) => {
  const now = Date.UTC(2026, 0, 1);
  const issued = await issueLease({
    key,
    subject: 'agent-7',
    audience: 'prod-eu',
    ttlSec: 600,
    rules: 'allow net.connect when resource.host == "example.com"',
    session: 's-42',
    now: () => now,
  });
  const { payload, protectedHeader } = await jwtVerify(issued.token, jwks, {
    typ: LEASE_TYP,
    audience: 'prod-eu',
    currentDate: new Date(now),
  });
  t.same(protectedHeader, { alg: 'EdDSA', typ: LEASE_TYP, kid: made.kid });
  t.same(payload, {
    pcx_rules: 'allow net.connect when resource.host == "example.com"',
    pcx_session: 's-42',
    sub: 'agent-7',
    aud: 'prod-eu',
    jti: issued.jti,
    iat: now / 1000,
    exp: now / 1000 + 600,
    iss: 'approvals',
  });
  t.equal(issued.exp, now / 1000 + 600);
});

t.test('issueIdentityToken signs a session proof with its own typ', async (t) => {
  const issued = await issueIdentityToken({ key, subject: 'agent-7', session: 's-9', audience: 'a', ttlSec: 60 });
  t.equal(decodeProtectedHeader(issued.token).typ, IDENTITY_TYP);
  const { payload } = await jwtVerify(issued.token, jwks, { typ: IDENTITY_TYP, audience: 'a' });
  t.match(payload, { sub: 'agent-7', pcx_session: 's-9', jti: issued.jti });
  t.notOk('pcx_rules' in payload);
});

t.test('what the PDP would refuse on form is never signed', async (t) => {
  const base = { key, subject: 'a', audience: 'aud', ttlSec: 60, rules: 'allow fs.read' };
  const cases: Array<[string, Partial<typeof base> & Record<string, unknown>, RegExp]> = [
    ['a zero lifetime', { ttlSec: 0 }, /lifetime/],
    ['a fractional lifetime', { ttlSec: 1.5 }, /lifetime/],
    ['a lifetime over 30 days', { ttlSec: 31 * 86400 }, /lifetime/],
    ['no rules', { rules: '  ' }, /no rules/],
    [
      'rules over the limit',
      { rules: `allow fs.read when resource.path == "/${'a'.repeat(MAX_RULES_BYTES)}"` },
      /over/,
    ],
    ['an audience with a space', { audience: 'a b' }, /audience/],
    ['an empty subject', { subject: '' }, /subject/],
  ];
  for (const [name, change, message] of cases)
    await t.rejects(issueLease({ ...base, ...change }), { code: 'PCX_LEASE_ISSUE', message }, name);
  await t.rejects(
    issueIdentityToken({ ...base, session: '' }),
    { code: 'PCX_LEASE_ISSUE' },
    'identity without session',
  );
});

t.test('key files: clear refusals that never echo key material', async (t) => {
  const priv = JSON.stringify(made.privateJwk);
  const d = made.privateJwk.d!;
  const cases: Array<[string, () => unknown, string, RegExp]> = [
    ['not JSON', () => parseSigningKey(`{${d}`, 'k'), 'PCX_LEASE_KEY', /not a JSON Web Key/],
    [
      'a public key as signing key',
      () => parseSigningKey(JSON.stringify(made.publicJwks.keys[0]), 'k'),
      'PCX_LEASE_KEY',
      /private/,
    ],
    [
      'a key without kid',
      () => parseSigningKey(JSON.stringify({ ...made.privateJwk, kid: undefined }), 'k'),
      'PCX_LEASE_KEY',
      /kid/,
    ],
    [
      'a private key in the JWKS',
      () => parseTrustedKeys(`{"keys":[${priv}]}`, 'j'),
      'PCX_LEASE_KEYS',
      /private key material/,
    ],
    [
      'a JWKS key without kid',
      () => parseTrustedKeys(JSON.stringify({ keys: [{ ...made.publicJwks.keys[0], kid: undefined }] }), 'j'),
      'PCX_LEASE_KEYS',
      /kid/,
    ],
    [
      'two keys with one kid',
      () => parseTrustedKeys(JSON.stringify({ keys: [made.publicJwks.keys[0], made.publicJwks.keys[0]] }), 'j'),
      'PCX_LEASE_KEYS',
      /repeats kid/,
    ],
    [
      'an RSA key',
      () => parseTrustedKeys('{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"}]}', 'j'),
      'PCX_LEASE_KEYS',
      /Ed25519/,
    ],
    [
      'an HS256 key',
      () => parseTrustedKeys('{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h","alg":"HS256"}]}', 'j'),
      'PCX_LEASE_KEYS',
      /Ed25519/,
    ],
    ['no keys array', () => parseTrustedKeys('{"key":[]}', 'j'), 'PCX_LEASE_KEYS', /no "keys" array/],
  ];
  for (const [name, run, code, message] of cases) {
    try {
      run();
      t.fail(`${name}: accepted`);
    } catch (e) {
      t.match(e, { code, message }, name);
      t.notOk((e as Error).message.includes(d), `${name}: no key material in the message`);
    }
  }
  t.same(parseTrustedKeys('{"keys":[]}', 'j'), [], 'an empty key set is valid');
});
