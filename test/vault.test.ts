// The vault end to end: `portcullis vault …` (in-process through the CLI's main, as the bin
// runs it) against a real PDP and a real audit sink on Unix sockets, a real SQLite vault file
// and real child processes for `vault exec`. After a run that puts, reads, injects, rotates,
// writes fingerprints and fails on purpose, the bytes of the vault file, the audit log, the
// PDP's log and every captured stderr are scanned for the secrets (and their encodings).
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { AuditLog, generateKey, parseSigningKey, readRecords, serveSink } from '@portcullis/audit';
import { main } from '@portcullis/cli';
import { startPdp } from '@portcullis/pdp';
import { createScanner, parseFingerprints } from '@portcullis/scan';

const DB_PASSWORD = 'correct-horse-battery-staple-7f3a';
const API_TOKEN = 'tok_9b1e44c0d2a84f7e9c3355aa01bd77e2';
const SECRETS = [DB_PASSWORD, API_TOKEN];

const POLICY = `policy "vault" {
  allow secret.read when resource.workspace == "alpha" and resource.name == "db/password"
  allow secret.inject when resource.workspace == "alpha" and resource.name in ["db/password", "api/token"]
  deny secret.read when resource.name == "api/token" because "tokens are for injection only"
}
`;

const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-vault-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const pdpLog: string[] = [];
const stderrs: string[] = [];
const vaultDir = join(dir, 'vaults');
const auditDir = join(dir, 'audit');

async function cli(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  let e = '';
  out.on('data', (c: Buffer) => o.push(c));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const code = await main(args, { stdout: out, stderr: err, stdin: Readable.from([Buffer.from(stdin)]), cwd: dir });
  stderrs.push(e);
  return { code, out: Buffer.concat(o).toString(), err: e };
}

const ws = ['--workspace', 'alpha', '--dir', vaultDir];
const who = ['--pdp', 'pdp.sock', '--audit', 'audit.sock', '--principal', 'agent-7'];

/** A node child that prints the SHA-256 of what it reads on stdin (never the bytes). */
const HASH_STDIN =
  "const h=require('crypto').createHash('sha256');process.stdin.on('data',d=>h.update(d))" +
  ".on('end',()=>process.stdout.write(h.digest('hex')))";
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

t.before(async () => {
  writeFileSync(join(dir, 'policy.pol'), POLICY);
  const pdp = await startPdp({
    policyPath: join(dir, 'policy.pol'),
    socketPath: join(dir, 'pdp.sock'),
    log: (level, message) => pdpLog.push(`${level}: ${message}`),
  });
  t.teardown(() => pdp.close({ drainTimeoutMs: 500 }));
  const key = await parseSigningKey((await generateKey('vault-e2e')).privateKey);
  const log = await AuditLog.open({ dir: auditDir, key });
  const sink = await serveSink({ socketPath: join(dir, 'audit.sock'), log });
  t.teardown(async () => {
    await sink.close();
    await log.close();
  });
  writeFileSync(join(dir, 'token.txt'), API_TOKEN);
});

t.test('init, put from stdin and from a file, list and versions show metadata only', async (t) => {
  const init = await cli(['vault', 'init', ...ws, '--key-file', 'kek-1']);
  t.equal(init.code, 0, init.err);
  t.equal(statSync(join(dir, 'kek-1')).mode & 0o777, 0o600, 'the key file is 0600');
  t.equal((await cli(['vault', 'put', ...ws, 'db/password'], `${DB_PASSWORD}\n`)).code, 0);
  t.equal((await cli(['vault', 'put', ...ws, 'api/token', '--file', 'token.txt'])).code, 0);
  t.equal((await cli(['vault', 'put', ...ws, 'api/token', '--file', 'token.txt'])).code, 0, 'a second version');
  const list = await cli(['vault', 'list', ...ws, '--json']);
  const rows = JSON.parse(list.out) as { name: string; latest: number; length: number }[];
  t.same(
    rows.map((r) => [r.name, r.latest, r.length]),
    [
      ['api/token', 2, API_TOKEN.length],
      ['db/password', 1, DB_PASSWORD.length],
    ],
  );
  t.notOk(list.out.includes('"preview"'), 'no preview unless asked');
  const preview = JSON.parse((await cli(['vault', 'list', ...ws, '--json', '--preview'])).out);
  t.same(
    preview.map((r: { preview?: string }) => r.preview),
    ['tok_…', 'corr…'],
    'a 4-character prefix of values of 16 characters or more',
  );
  const versions = JSON.parse((await cli(['vault', 'versions', ...ws, 'api/token', '--json'])).out);
  t.same(
    versions.map((v: { version: number }) => v.version),
    [1, 2],
  );
});

t.test('get prints a value only with --reveal and only when secret.read is allowed', async (t) => {
  const hidden = await cli(['vault', 'get', ...ws, ...who, 'db/password']);
  t.equal(hidden.code, 2);
  t.match(hidden.err, /only with --reveal/);
  const got = await cli(['vault', 'get', ...ws, ...who, '--reveal', 'db/password']);
  t.equal(got.code, 0, got.err);
  t.equal(got.out, DB_PASSWORD, 'the exact bytes, nothing added');
  const denied = await cli(['vault', 'get', ...ws, ...who, '--reveal', 'api/token']);
  t.equal(denied.code, 2);
  t.match(denied.err, /secret\.read "api\/token" in workspace "alpha" is denied: "tokens are for injection only"/);
  t.equal(denied.out, '', 'nothing printed');
  const noPdp = await cli([
    'vault',
    'get',
    ...ws,
    '--reveal',
    '--pdp',
    'nope.sock',
    '--audit',
    'audit.sock',
    '--principal',
    'agent-7',
    'db/password',
  ]);
  t.equal(noPdp.code, 2, 'an unreachable PDP is a deny');
  t.match(noPdp.err, /denied, the PDP could not decide/);
  const noAudit = await cli([
    'vault',
    'get',
    ...ws,
    '--reveal',
    '--pdp',
    'pdp.sock',
    '--audit',
    'nope.sock',
    '--principal',
    'agent-7',
    'db/password',
  ]);
  t.equal(noAudit.code, 2, 'an unreachable audit sink releases nothing');
  t.match(noAudit.err, /did not record the release, so nothing was released/);
  t.equal(noAudit.out, '');
});

/** `vault exec` of a node script, as principal agent-7 through the test's PDP and audit sink. */
const execNode = (options: string[], script: string, workspace = ws) =>
  cli(['vault', 'exec', ...workspace, ...who, ...options, '--', process.execPath, '-e', script]);

t.test('exec writes the secrets to the child on stdin, in each framing', async (t) => {
  const lines = await execNode(['--secret', 'db/password,api/token'], HASH_STDIN);
  t.equal(lines.code, 0, lines.err);
  t.equal(lines.out, sha(`${DB_PASSWORD}\n${API_TOKEN}\n`), 'one value per line, in the order named');
  const env = await execNode(['--secret', 'db/password', '--secret', 'api/token', '--format', 'env'], HASH_STDIN);
  t.equal(env.out, sha(`db/password=${DB_PASSWORD}\napi/token=${API_TOKEN}\n`), 'NAME=value lines');
  const raw = await execNode(['--secret', 'api/token', '--format', 'raw'], HASH_STDIN);
  t.equal(raw.out, sha(API_TOKEN), 'raw: the bytes alone');
  const asEnv = await execNode(
    ['--secret', 'db/password', '--env'],
    "process.stdout.write(require('crypto').createHash('sha256').update(process.env.DB_PASSWORD ?? '').digest('hex'))",
  );
  t.equal(asEnv.out, sha(DB_PASSWORD), '--env sets DB_PASSWORD only when asked');
  const status = await execNode(
    ['--secret', 'db/password'],
    'process.stdin.resume();process.stdin.on("end",()=>process.exit(7))',
  );
  t.equal(status.code, 7, "the child's exit status is the command's");
});

t.test('exec refuses what it may not inject, and a child that does not read', async (t) => {
  const unread = await execNode(['--secret', 'db/password'], 'process.exit(0)');
  t.equal(unread.code, 2);
  t.match(unread.err, /exited \(status 0\) before reading all of its secrets/);
  const other = await cli(['vault', 'init', '--workspace', 'beta', '--dir', vaultDir, '--key-file', 'kek-beta']);
  t.equal(other.code, 0);
  t.equal((await cli(['vault', 'put', '--workspace', 'beta', '--dir', vaultDir, 'db/password'], DB_PASSWORD)).code, 0);
  const beta = await execNode(['--secret', 'db/password'], HASH_STDIN, ['--workspace', 'beta', '--dir', vaultDir]);
  t.equal(beta.code, 2, 'the policy allows alpha only');
  t.match(beta.err, /secret\.inject "db\/password" in workspace "beta" is denied/);
  t.equal(beta.out, '', 'the child never ran');
  const missing = await cli(['vault', 'exec', ...ws, ...who, '--secret', 'db/password', '--', join(dir, 'nope')]);
  t.equal(missing.code, 2);
  t.match(missing.err, /cannot run ".*nope": ENOENT/);
});

t.test('rotate-kek keeps every secret readable and fingerprints recognise them', async (t) => {
  const rot = await cli(['vault', 'rotate-kek', ...ws, '--new-key-file', 'kek-2']);
  t.equal(rot.code, 0, rot.err);
  t.match(rot.out, /rewrapped 3 data key\(s\) from KEK version 1 to 2/);
  rmSync(join(dir, 'kek-1'));
  const got = await cli(['vault', 'get', ...ws, ...who, '--reveal', 'db/password']);
  t.equal(got.out, DB_PASSWORD, 'readable under the new KEK alone');
  const fp = await cli(['vault', 'fingerprints', ...ws, '--out', 'alpha.fp.json']);
  t.equal(fp.code, 0, fp.err);
  const path = join(dir, 'alpha.fp.json');
  t.equal(statSync(path).mode & 0o777, 0o600);
  const file = parseFingerprints(readFileSync(path, 'utf8'), path);
  const scanner = createScanner({ fingerprints: file, rules: [] });
  const found = (text: string) => scanner.scan(text).findings.map((f) => f.secret?.name);
  t.same(found(`DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app`), ['db/password'], 'db/password recognised');
  t.ok(found(Buffer.from(API_TOKEN).toString('base64')).includes('api/token'), 'api/token recognised in base64');
  t.same(
    new Set(file.secrets.map((e) => `${e.name}@${e.version}`)),
    new Set(['api/token@1', 'api/token@2', 'db/password@1']),
    'every version',
  );
});

t.test('mistakes are clear vault errors with exit 2, and lose nothing', async (t) => {
  const argv = await cli(['vault', 'put', ...ws, 'db/password', 'hunter2-on-argv']);
  t.equal(argv.code, 2);
  t.match(argv.err, /cannot be given on the command line/);
  t.notOk(argv.err.includes('hunter2-on-argv'), 'the value typed on argv is not echoed');
  const flag = await cli(['vault', 'put', ...ws, 'db/password', '--value=hunter2-on-argv']);
  t.equal(flag.code, 2);
  t.notOk(flag.err.includes('hunter2-on-argv'));
  const unknown = await cli(['vault', 'get', ...ws, ...who, '--reveal', 'db/pasword']);
  t.match(unknown.err, /no secret "db\/pasword" \(did you mean "db\/password"\?\)/);
  const nope = await cli(['vault', 'list', '--workspace', 'gamma', '--dir', vaultDir]);
  t.match(nope.err, /workspace "gamma" has no vault/);
  const badName = await cli(['vault', 'list', '--workspace', '../etc', '--dir', vaultDir]);
  t.match(badName.err, /"\.\.\/etc" is not a workspace name/);
  const empty = await cli(['vault', 'put', ...ws, 'db/password'], '');
  t.match(empty.err, /is empty; nothing was stored/);
  writeFileSync(join(vaultDir, 'broken.vault'), 'SQLite format 3\0 but not really');
  const broken = await cli(['vault', 'list', '--workspace', 'broken', '--dir', vaultDir]);
  t.equal(broken.code, 2);
  t.match(broken.err, /is not a readable vault/);
  for (const r of [argv, flag, unknown, nope, badName, empty, broken]) t.equal(r.code, 2);
  const versions = JSON.parse((await cli(['vault', 'versions', ...ws, 'db/password', '--json'])).out);
  t.equal(versions.length, 1, 'no failed put stored a version');
});

t.test('no plaintext in the vault file, the audit log, the PDP log or any stderr', async (t) => {
  const records = [...readRecords(auditDir)];
  const releases = records.filter((r) => r.action === 'secret.read' || r.action === 'secret.inject');
  t.ok(releases.length >= 8, `every release and refusal is audited (${releases.length})`);
  t.ok(
    releases.every((r) => typeof r.resource.name === 'string' && typeof r.resource.version === 'number'),
    'records carry name and version',
  );
  // Every decision a policy made names its version (for audit replay); a PDP failure names none.
  const byPolicy = releases.filter((r) => !r.reasons.some((x) => x.error?.code === 'PCX_PDP_UNAVAILABLE'));
  t.ok(byPolicy.length >= 7 && byPolicy.length < releases.length, `${byPolicy.length} decided by policy`);
  t.ok(
    byPolicy.every((r) => /^sha256:[0-9a-f]{64}$/.test(r.policy_version ?? '')),
    'each carries policy_version',
  );
  t.ok(releases.every((r) => byPolicy.includes(r) || r.policy_version === undefined));
  t.ok(
    releases.some((r) => r.resource.workspace === 'beta' && r.decision === 'deny'),
    'refusals too',
  );
  const haystacks: [string, Buffer][] = [];
  for (const d of [vaultDir, auditDir])
    for (const f of readdirSync(d, { recursive: true, encoding: 'utf8' })) {
      if (statSync(join(d, f)).isFile()) haystacks.push([join(d, f), readFileSync(join(d, f))]);
    }
  haystacks.push(['pdp log', Buffer.from(pdpLog.join('\n'))]);
  haystacks.push(['stderr', Buffer.from(stderrs.join('\n'))]);
  t.ok(
    haystacks.some(([name]) => name.endsWith('alpha.vault')),
    'the vault file is scanned',
  );
  for (const secret of SECRETS) {
    const forms = [
      secret,
      Buffer.from(secret).toString('base64').slice(0, 16),
      Buffer.from(secret).toString('hex').slice(0, 16),
      secret.slice(0, 12),
    ];
    for (const [name, bytes] of haystacks)
      for (const form of forms) t.notOk(bytes.includes(form), `${name} holds no "${form.slice(0, 4)}…"`);
  }
});
