// Trust files load like policies, against the real `portcullis pdp` process (the built bin),
// real files rewritten in place and atomically, real tokens (protocol's issueLease): a broken
// JWKS or revocation list keeps the last good one and health and the log say why; a revoked
// lease stays revoked until it has expired, whatever the file later says.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  generateSigningKey,
  issueLease,
  parseSigningKey,
  PdpClient,
  type DecisionRequest,
  type SigningKey,
} from '@portcullis/protocol';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
const AUDIENCE = 'pcx-e2e';

interface Setup {
  dir: string;
  keysPath: string;
  revokedPath: string;
  key: SigningKey;
  client: PdpClient;
  stderr: () => string;
  child: ChildProcess;
}

async function newKey(): Promise<{ key: SigningKey; jwks: string }> {
  const k = await generateSigningKey();
  return { key: parseSigningKey(JSON.stringify(k.privateJwk), 'test key'), jwks: JSON.stringify(k.publicJwks) };
}

/** Replace a file the way editors and the kubelet do: write a temporary file, rename it over. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function start(t: Test, keys: { key: SigningKey; jwks: string }): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-trust-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keysPath = join(dir, 'keys.jwks');
  const revokedPath = join(dir, 'revoked.txt');
  writeFileSync(join(dir, 'policy.pol'), `leases from "${keys.key.kid}" max 1h {\n  allow net.connect\n}\n`);
  writeFileSync(keysPath, keys.jwks);
  writeFileSync(revokedPath, '# revoked leases\n');
  const args = ['pdp', '--policy', join(dir, 'policy.pol'), '--socket', join(dir, 'pdp.sock')];
  args.push(
    '--lease-keys',
    keysPath,
    '--lease-audience',
    AUDIENCE,
    '--revoked',
    revokedPath,
    '--lease-clock-skew',
    '0',
  );
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until(() => err.includes('listening on') || child.exitCode !== null);
  if (child.exitCode !== null) throw new Error(`pdp did not start:\n${err}`);
  const client = new PdpClient({ socketPath: join(dir, 'pdp.sock'), timeoutMs: 2000 });
  t.teardown(() => client.close());
  return { dir, keysPath, revokedPath, key: keys.key, client, stderr: () => err, child };
}

/** The daemon logs JSON lines: their messages, one per line, as a reader of the log sees them. */
function logMessages(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => String((JSON.parse(l) as { msg?: unknown }).msg))
    .join('\n');
}

/** Wait for a condition that an asynchronous reload makes true (no fixed sleeps). */
async function until<T>(check: () => T | Promise<T>, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const req = (tokens: string[]): DecisionRequest => ({
  principal: { id: 'agent-7' },
  action: 'net.connect',
  resource: { host: 'lease.example', port: 443 },
  context: { leases: tokens },
});

const mint = (key: SigningKey, ttlSec = 600) =>
  issueLease({ key, subject: 'agent-7', audience: AUDIENCE, ttlSec, rules: 'allow net.connect' });

type LeaseHealth = {
  revoked: number;
  revoked_retained: number;
  keys: number;
  stale?: boolean;
  keys_file?: { ok: boolean; error?: string };
  revocation_file?: { ok: boolean; error?: string };
};
const leaseHealth = async (s: Setup) => ((await s.client.health()) as unknown as { leases: LeaseHealth }).leases;

t.test('a broken revocation list never un-revokes a lease; health and the log say why', async (t) => {
  const s = await start(t, await newKey());
  const lease = await mint(s.key);
  t.equal((await s.client.decide(req([lease.token]))).decision, 'allow');
  writeAtomically(s.revokedPath, `${lease.jti} ${lease.exp}\n`);
  await until(async () => (await s.client.decide(req([lease.token]))).decision === 'deny');
  t.match((await s.client.decide(req([lease.token]))).reasons, [{ lease: lease.jti, ignored: 'revoked' }]);

  const broken: Array<[string, string, RegExp]> = [
    ['emptied in place', '', /is empty but 1 revoked token\(s\) may still be live/],
    [
      'unparseable',
      `${lease.jti} ${lease.exp}\nthis is not a jti line\n`,
      /revoked\.txt:2: expected "JTI" or "JTI EXP"/,
    ],
    // Cut inside the first line: it parses (as another id), and the lease stays revoked anyway.
    ['truncated mid-line', lease.jti.slice(0, 8), /./],
  ];
  for (const [name, text, why] of broken) {
    writeFileSync(s.revokedPath, text);
    if (name !== 'truncated mid-line') {
      const h = await until(async () => {
        const l = await leaseHealth(s);
        return l.revocation_file?.ok === false && why.test(l.revocation_file.error ?? '') ? l : undefined;
      });
      t.match(h, { stale: true, revoked: 1 }, `${name}: health says stale`);
      await until(() => why.test(logMessages(s.stderr())));
      t.match(
        logMessages(s.stderr()),
        /keeping the previous revocation list/,
        `${name}: the log says the last good list stays`,
      );
    }
    const d = await s.client.decide(req([lease.token]));
    t.match(d, { decision: 'deny', reasons: [{ lease: lease.jti, ignored: 'revoked' }] }, `${name}: still revoked`);
  }

  // A valid list that no longer names the live lease: it stays revoked until it expires.
  const other = await mint(s.key);
  writeAtomically(s.revokedPath, `${other.jti}\n`);
  const h = await until(async () => {
    const l = await leaseHealth(s);
    return l.revocation_file?.ok === true && l.revoked_retained === 1 ? l : undefined;
  });
  t.match(h, { revoked: 2, revoked_retained: 1 });
  t.notOk(h.stale, 'a good list clears stale');
  t.match(
    logMessages(s.stderr()),
    /1 revoked id\(s\) are no longer listed; they stay revoked until their leases expire/,
  );
  t.match((await s.client.decide(req([lease.token]))).reasons, [{ ignored: 'revoked' }], 'dropped, still revoked');
  t.match((await s.client.decide(req([other.token]))).reasons, [{ ignored: 'revoked' }], 'the new entry counts');
});

t.test('an entry drops out only once the lease it names has expired', async (t) => {
  const s = await start(t, await newKey());
  const short = await mint(s.key, 2);
  writeAtomically(s.revokedPath, `${short.jti} ${short.exp}\n`);
  await until(async () => (await leaseHealth(s)).revoked === 1);
  // Wait for the clock, not a reload: the lease expires (skew 0) ...
  await until(() => Date.now() / 1000 >= short.exp + 1, 10_000);
  t.match((await s.client.decide(req([short.token]))).reasons, [{ ignored: 'revoked' }]);
  // ... and only then may a list without it drop the entry.
  writeAtomically(s.revokedPath, '# nothing revoked\n');
  const h = await until(async () => {
    const l = await leaseHealth(s);
    return l.revoked === 0 ? l : undefined;
  });
  t.match(h, { revoked: 0, revoked_retained: 0, revocation_file: { ok: true } });
  t.match((await s.client.decide(req([short.token]))).reasons, [{ ignored: 'expired' }], 'now it is simply expired');
});

t.test('a broken JWKS keeps the last good keys; a good one replaces them', async (t) => {
  const first = await newKey();
  const s = await start(t, first);
  const lease = await mint(s.key);
  t.equal((await s.client.decide(req([lease.token]))).decision, 'allow');
  const broken: Array<[string, string, RegExp]> = [
    ['truncated', first.jwks.slice(0, first.jwks.length >> 1), /keys\.jwks is not JSON/],
    ['no keys array', '{"kty":"OKP"}', /has no "keys" array/],
    ['a private key', JSON.stringify({ keys: [{ ...JSON.parse(first.jwks).keys[0], d: 'AAAA' }] }), /private key/],
  ];
  for (const [name, text, why] of broken) {
    writeAtomically(s.keysPath, text);
    const h = await until(async () => {
      const l = await leaseHealth(s);
      return l.keys_file?.ok === false && why.test(l.keys_file.error ?? '') ? l : undefined;
    });
    t.match(h, { stale: true, keys: 1 }, `${name}: health says why`);
    t.match(logMessages(s.stderr()), /keeping the previous lease keys/, `${name}: logged`);
    t.equal((await s.client.decide(req([lease.token]))).decision, 'allow', `${name}: the last good keys stay`);
  }
  const second = await newKey();
  writeAtomically(s.keysPath, second.jwks);
  await until(async () => (await leaseHealth(s)).keys_file?.ok === true);
  const d = await s.client.decide(req([lease.token]));
  t.match(d, { decision: 'deny', reasons: [{ ignored: 'unknown_key' }] }, 'the old key is gone');
  t.match(logMessages(s.stderr()), /reloaded lease keys from/);
  s.child.kill('SIGTERM');
  t.equal(await new Promise((r) => s.child.on('exit', r)), 0, 'drains and exits 0');
});
