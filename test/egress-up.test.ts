/**
 * `portcullis up` end to end: the built bin starts the real PDP, audit sink and egress proxy;
 * curl goes through the proxy (one allowed request to a local origin, one denied); SIGINT stops
 * all three cleanly; the audit log then verifies. And the daemons' options given to `up` reach them
 * (--lease-keys and --revoked, checked in the PDP's health).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PdpClient } from '@portcullis/protocol';
import { origin } from '../packages/egress/test/fixtures.js';
import { needs } from './helpers/tools.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000, env: { ...process.env, ...env }, cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Until up has printed its demo (all three daemons ready), or it exits: an event, not a deadline. */
function upReady(up: ChildProcess, exited: Promise<number | null>, out: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): void => void (out().includes('Ctrl-C stops all three') && resolve());
    up.stdout!.on('data', check);
    check();
    void exited.then((code) => reject(new Error(`up exited ${code}: ${out()}`)));
  });
}

t.test('portcullis up: three daemons, a demo that works, a clean Ctrl-C', needs('curl'), async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-up-'));
  const web = await origin();
  tt.teardown(async () => {
    await web.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(
    join(dir, 'p.pol'),
    `policy "up" scope global {\n  allow net.http when resource.ip in ["127.0.0.1/32"] and resource.port == ` +
      `${web.port} because "the local origin"\n}\n`,
  );
  const port = await freePort();
  const up = spawn(
    process.execPath,
    [
      bin,
      'up',
      '--policy',
      join(dir, 'p.pol'),
      '--dir',
      join(dir, 'state'),
      '--listen',
      `127.0.0.1:${port}`,
      '--allow-cidr',
      '127.0.0.0/8',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  up.stdout.on('data', (d) => (out += d));
  up.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => up.on('exit', (code) => r(code)));
  await upReady(up, exited, () => out);
  tt.match(out, /PDP +\S+pdp\.sock/);
  tt.match(out, /audit sink +\S+audit\.sock/);
  tt.match(out, new RegExp(`egress proxy +http://127\\.0\\.0\\.1:${port}`));
  tt.match(out, /curl .*https:\/\/registry\.npmjs\.org\//, 'a copy-paste demo');

  const proxyEnv = { http_proxy: `http://127.0.0.1:${port}`, https_proxy: `http://127.0.0.1:${port}`, no_proxy: '' };
  const allowed = await run('curl', ['-sS', `http://127.0.0.1:${web.port}/via-up`], proxyEnv);
  tt.match(allowed.stdout, /hello from origin GET \/via-up/);
  const denied = await run(
    'curl',
    ['-sS', '-i', `http://127.0.0.1:${web.port + (web.port === 65535 ? -1 : 1)}/`],
    proxyEnv,
  );
  tt.match(denied.stdout, /^HTTP\/1\.1 403/);

  up.kill('SIGINT');
  tt.equal(await exited, 0, 'up exits 0 after Ctrl-C');
  tt.match(out, /\[egress\] .*stopped/);
  tt.match(out, /\[audit\] .*stopped; \d+ records/);
  tt.match(out, /\[pdp\] .*stopped/);
  const after = await run('curl', ['-sS', '--max-time', '2', `http://127.0.0.1:${port}/`]);
  tt.equal(after.code, 7, 'the proxy port is closed (curl: could not connect)');
  const verify = await run(process.execPath, [
    bin,
    'audit',
    'verify',
    join(dir, 'state', 'audit-log'),
    '--pubkey',
    join(dir, 'state', 'audit.key.pub'),
  ]);
  tt.equal(verify.code, 0, verify.stdout + verify.stderr);
  tt.match(verify.stdout + verify.stderr, /ok: [2-9]\d* records/);
});

t.test('up --lease-keys and --revoked reach the PDP (relative paths mean the caller directory)', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-up-lease-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'p.pol'), 'policy "up" scope global {\n  allow fs.read when resource.path == "/x"\n}\n');
  writeFileSync(join(dir, 'revoked.txt'), '6f1c1f55-0d6c-4a4e-9d0b-4f7a3c0e2b11\n');
  const keygen = await run(process.execPath, [bin, 'lease', 'keygen', '--out', '.'], {}, dir);
  tt.equal(keygen.code, 0, keygen.stderr);
  const up = spawn(
    process.execPath,
    [
      bin,
      'up',
      '--policy',
      'p.pol',
      '--dir',
      'state',
      '--listen',
      '127.0.0.1:0',
      '--lease-keys',
      'lease-keys.jwks',
      '--lease-audience',
      'up-e2e',
      '--revoked',
      'revoked.txt',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((r) => up.on('exit', (code) => r(code)));
  tt.teardown(async () => {
    if (up.exitCode === null && up.signalCode === null) up.kill('SIGTERM');
    await exited;
  });
  let out = '';
  up.stdout.on('data', (d) => (out += d));
  up.stderr.on('data', (d) => (out += d));
  await upReady(up, exited, () => out);
  const pdp = new PdpClient({ socketPath: join(dir, 'state', 'pdp.sock') });
  tt.teardown(() => pdp.close());
  const health = await pdp.health({ timeoutMs: 5000 });
  tt.equal(health.status, 'ok');
  tt.match(health.leases, { keys: 1, revoked: 1, audience: 'up-e2e' }, "the PDP loaded up's lease options");
  up.kill('SIGTERM');
  tt.equal(await exited, 0, 'up exits 0 after SIGTERM');
});
