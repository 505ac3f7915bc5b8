/**
 * End to end: the real `portcullis pdp`, `portcullis audit serve` and `portcullis comms`
 * processes (the built bin), asked through protocol's CommsClient and with curl. A message with
 * a known secret (URL-encoded, so only the fingerprints find it) is denied by policy with its
 * findings and redacted text; a clean one is allowed; the audit log holds the text's SHA-256 and
 * the findings but never the text; garbage gets a clear 400; the audit sink down means deny.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readRecords } from '@portcullis/audit';
import { CommsClient } from '@portcullis/protocol';
import { buildFingerprints, serializeFingerprints } from '@portcullis/scan';
import { bin, type Daemon, daemon, run, stop, stopAll } from './daemons.js';

const SECRET = 'pcx-e2e-Qw8#vL2!pX9@mR4tZk7';
const GITHUB = 'ghp_R4nd0mT0k3nV4lu3xYz9Qw8Er7Ty6Ui5Op4A';
const POLICY = `
policy "comms-e2e" scope global {
  allow comms.send when resource.channel in ["team", "prompt"]
  deny comms.send when resource.secrets > 0 because "messages must not carry secret material"
}
`;

let dir: string;
let comms: Daemon;
let sink: Daemon;
let client: CommsClient;
let logDir: string;

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pcx-comms-e2e-'));
  writeFileSync(join(dir, 'policy.pol'), POLICY);
  const fp = buildFingerprints({
    workspace: 'e2e',
    key: new Uint8Array(32).fill(3),
    secrets: [{ name: 'db-password', version: 2, value: Buffer.from(SECRET) }],
  });
  writeFileSync(join(dir, 'fp.json'), serializeFingerprints(fp), { mode: 0o600 });
  const key = join(dir, 'audit.key');
  const kg = await run(process.execPath, [bin, 'audit', 'keygen', '--name', 'e2e', '--out', key]);
  if (kg.code !== 0) throw new Error(kg.stderr);
  logDir = join(dir, 'log');
  await daemon(['pdp', '--policy', join(dir, 'policy.pol'), '--socket', join(dir, 'pdp.sock')], /listening on/);
  sink = await daemon(
    ['audit', 'serve', '--dir', logDir, '--socket', join(dir, 'audit.sock'), '--key', key],
    /listening on/,
  );
  comms = await daemon(
    [
      'comms',
      ...['--socket', join(dir, 'comms.sock'), '--pdp', join(dir, 'pdp.sock'), '--audit', join(dir, 'audit.sock')],
      ...['--fingerprints', join(dir, 'fp.json'), '--principal', 'agent-7', '--project', 'alpha'],
    ],
    /listening on/,
  );
  client = new CommsClient({ socketPath: join(dir, 'comms.sock') });
});

t.teardown(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

t.test('the socket is 0660', async (t) => {
  t.equal(statSync(join(dir, 'comms.sock')).mode & 0o777, 0o660);
});

t.test('a clean message is allowed and comes back unchanged', async (t) => {
  const text = 'the deploy finished in 4m12s, all green';
  const r = await client.check({ channel: 'team', to: '#ops', text });
  t.equal(r.decision, 'allow');
  t.same(r.findings, []);
  t.equal(r.redacted, text);
  t.equal(r.sha256, createHash('sha256').update(text).digest('hex'));
});

t.test('a message carrying a known secret (URL-encoded) is denied, with findings and redacted text', async (t) => {
  const text = `try https://db.internal/login?p=${encodeURIComponent(SECRET)} and ${GITHUB}`;
  const r = await client.check({ channel: 'team', to: '#ops', text });
  t.equal(r.decision, 'deny');
  t.match(r.reasons, [{ because: 'messages must not carry secret material' }]);
  t.same(
    r.findings.map((f) => [f.kind, f.secret?.name, Buffer.from(text).subarray(f.start, f.end).toString()]),
    [
      ['known-secret', 'db-password', encodeURIComponent(SECRET)],
      ['github', undefined, GITHUB],
    ],
  );
  t.equal(r.redacted, 'try https://db.internal/login?p=[REDACTED:known-secret] and [REDACTED:github]');
});

t.test('the audit log and the daemon log hold the hash and findings, never the text', async (t) => {
  const records = [...readRecords(logDir)].filter((r) => r.source === 'comms');
  t.equal(records.length, 2, 'one record per check');
  const denied = records.find((r) => r.decision === 'deny')!;
  t.equal(denied.action, 'comms.send');
  t.equal(denied.principal.id, 'agent-7');
  t.match(denied.resource, { channel: 'team', to: '#ops', findings: [{ kind: 'known-secret', name: 'db-password' }] });
  t.match(denied.resource.sha256, /^[0-9a-f]{64}$/);
  // Every byte the sink wrote, and everything the daemon printed: no trace of the secret.
  const files = readdirSync(logDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.ok(files.length > 0);
  for (const e of files) {
    const bytes = readFileSync(join(e.parentPath, e.name));
    for (const form of [
      SECRET,
      encodeURIComponent(SECRET),
      'ghp_R4nd0mT0k3nV4lu3xYz9Qw8Er7Ty6Ui5Op4A',
      'deploy finished',
    ])
      t.notOk(bytes.includes(form), `${e.name} does not hold ${JSON.stringify(form.slice(0, 8))}…`);
  }
  t.notOk(comms.stderr.includes(SECRET) || comms.stderr.includes('deploy finished'), 'the daemon log holds no text');
  t.match(comms.stderr, /"event":"check".*"sha256":"[0-9a-f]{64}"/);
});

t.test('garbage gets a clear 400 (or 404/405/413/415) with a PCX code, and the daemon carries on', async (t) => {
  const sock = join(dir, 'comms.sock');
  const curl = (args: string[]) =>
    run('curl', ['-sS', '--unix-socket', sock, '-w', '\n%{http_code}', ...args, 'http://comms/v1/messages/check']);
  const json = ['-H', 'content-type: application/json'];
  const cases: [string[], string, string][] = [
    [[...json, '--data-binary', `{"channel":"team","text":"${SECRET}"`], '400', 'PCX_COMMS_BAD_REQUEST'],
    [[...json, '--data-binary', '[1,2]'], '400', 'PCX_COMMS_BAD_REQUEST'],
    [[...json, '--data-binary', '{"channel":"team"}'], '400', 'PCX_COMMS_BAD_REQUEST'],
    [[...json, '--data-binary', '{"channel":"","text":"x"}'], '400', 'PCX_COMMS_BAD_REQUEST'],
    [[...json, '--data-binary', '{"channel":"team","text":"x","cc":"y"}'], '400', 'PCX_COMMS_BAD_REQUEST'],
    [
      ['--data-binary', '{"channel":"team","text":"x"}', '-H', 'content-type: text/plain'],
      '415',
      'PCX_COMMS_MEDIA_TYPE',
    ],
    [[...json, '-X', 'GET'], '405', 'PCX_COMMS_METHOD'],
  ];
  for (const [args, status, code] of cases) {
    const r = await curl(args);
    const [body, got] = r.stdout.split('\n');
    t.equal(got, status, `${args.join(' ').slice(0, 60)}: HTTP ${status}`);
    t.equal(JSON.parse(body as string).error.code, code);
    t.notOk(r.stdout.includes(SECRET), 'the error does not echo the body');
  }
  const big = join(dir, 'big.json');
  writeFileSync(big, JSON.stringify({ channel: 'team', text: 'a'.repeat(2 << 20) }));
  const r = await curl([...json, '--data-binary', `@${big}`]);
  t.match(r.stdout, /PCX_COMMS_BODY_TOO_LARGE[\s\S]*\n413$/);
  const nf = await run('curl', ['-sS', '--unix-socket', sock, 'http://comms/v2/nothing']);
  t.match(nf.stdout, /PCX_COMMS_NOT_FOUND/);
  t.equal((await client.check({ channel: 'team', text: 'still here' })).decision, 'allow');
});

t.test('with the audit sink down every message is denied (fail closed)', async (t) => {
  await stop(sink);
  const r = await client.check({ channel: 'team', text: 'nothing secret here' });
  t.equal(r.decision, 'deny');
  t.equal(r.error?.code, 'PCX_COMMS_AUDIT_UNAVAILABLE');
});

t.test('SIGTERM stops the daemon with exit 0 and removes its socket', async (t) => {
  t.equal(await stop(comms), 0);
  t.throws(() => statSync(join(dir, 'comms.sock')));
  const r = await client.check({ channel: 'team', text: 'x' });
  t.equal(r.decision, 'deny');
  t.equal(r.error?.code, 'PCX_COMMS_UNAVAILABLE');
});
