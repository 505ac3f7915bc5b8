// The lease caches cannot be grown by junk: oversized or misshapen tokens are refused before any
// cache, and what is cached (keyed by the token's SHA-256) is charged by what it holds, not by
// the token's size, within a byte bound. LeaseVerifier directly, with real keys and policy.
import t from 'tap';
import { compile } from '@portcullis/policy';
import { generateSigningKey, issueLease, parseSigningKey, parseTrustedKeys } from '@portcullis/protocol';
import { LeaseVerifier } from '../src/leases.js';

const k = await generateSigningKey();
const key = parseSigningKey(JSON.stringify(k.privateJwk), 'test key');
const { policy } = compile([{ path: 'p.pol', text: `leases from "${key.kid}" max 1h {\n  allow net.connect\n}\n` }]);
const request = { principal: { id: 'agent-7' }, action: 'net.connect', resource: { host: 'a.example', port: 443 } };
const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'pcx-lease+jwt', kid: key.kid })).toString('base64url');
/** A JWS-shaped token of about `bytes` bytes whose signature does not verify. */
const junk = (i: number, bytes: number) =>
  `${header}.${Buffer.from(`${i}`.padEnd(Math.ceil(bytes * 0.75), 'x')).toString('base64url')}.AAAA`;

t.test('oversized and misshapen tokens never reach a cache', async (t) => {
  const v = new LeaseVerifier({ audience: 'pcx' });
  await v.setKeys(parseTrustedKeys(JSON.stringify(k.publicJwks), 'keys'));
  const words: string[] = [];
  for (let i = 0; i < 200; i++) {
    const r = await v.resolve([`${junk(i, 17 * 1024)}`, `not a token ${i}`], request, policy!);
    words.push(...r.ignored.map((x) => x.ignored!));
  }
  t.same(new Set(words), new Set(['too_large', 'invalid']));
  t.equal(words.length, 400);
  t.same(v.cacheBytes, { verified: 0, grants: 0 }, 'nothing cached');
});

t.test('junk within the size limit is charged a fixed amount per token and stays within the bound', async (t) => {
  const bound = 64 * 1024;
  const v = new LeaseVerifier({ audience: 'pcx', maxVerifiedBytes: bound });
  await v.setKeys(parseTrustedKeys(JSON.stringify(k.publicJwks), 'keys'));
  await v.resolve([junk(0, 100)], request, policy!);
  const small = v.cacheBytes.verified;
  await v.resolve([junk(1, 15 * 1024)], request, policy!);
  t.equal(v.cacheBytes.verified, 2 * small, 'a 15 KiB token costs what a 100-byte one does (the key is its hash)');
  let refused = 0;
  for (let i = 2; i < 1000; i++) {
    const r = await v.resolve([junk(i, 15 * 1024)], request, policy!);
    if (r.ignored[0]!.ignored === 'bad_signature') refused++;
  }
  t.equal(refused, 998, 'every junk token is refused');
  t.ok(v.cacheBytes.verified <= bound, `verified cache ${v.cacheBytes.verified} B within ${bound} B`);
  // A real lease still verifies and grants once the cache has been churned by junk.
  const lease = await issueLease({ key, subject: 'agent-7', audience: 'pcx', ttlSec: 600, rules: 'allow net.connect' });
  const r = await v.resolve([lease.token], request, policy!);
  t.equal(r.grants.length, 1);
  t.ok(v.cacheBytes.grants > 0 && v.cacheBytes.grants <= 32 * 1024 * 1024, 'the grant is cached, bounded');
});
