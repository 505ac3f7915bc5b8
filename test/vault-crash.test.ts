// Crash output carries no secret: `portcullis vault fingerprints` holds every plaintext of a
// workspace while it builds the file, so an unexpected internal error in the middle of that
// (the keyed hash failing) must print a stack that names no value in any encoding. The fault
// is injected into node:crypto of a real CLI process by a preload module; nothing of the vault
// or the scanner is replaced.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = "import { main } from '@portcullis/cli'; process.exitCode = await main(process.argv.slice(1));";
const SECRET = 'crash-canary-5d1c9e07a4b64f2a8c33';
const CRASH = `import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
crypto.createHmac = () => { throw new TypeError('injected fault: hmac failed'); };
syncBuiltinESMExports();
`;

function cli(args: string[], opts: { cwd: string; stdin?: string; preload?: string }) {
  const pre = opts.preload ? ['--import', opts.preload] : [];
  const argv = ['--conditions=portcullis-source', '--import', 'tsx', ...pre, '--input-type=module', '-e', CLI, '--'];
  const child = spawn(process.execPath, [...argv, ...args], { cwd: here, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(opts.stdin ?? '');
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, out, err })),
  );
}

t.test('an internal error while every plaintext is in memory prints no secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-vault-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const preload = join(dir, 'crash.mjs');
  writeFileSync(preload, CRASH);
  const ws = ['--workspace', 'gamma', '--dir', join(dir, 'vaults')];
  const init = await cli(['vault', 'init', ...ws, '--key-file', join(dir, 'gamma.kek')], { cwd: dir });
  t.equal(init.code, 0, init.err);
  const put = await cli(['vault', 'put', ...ws, 'svc/key'], { cwd: dir, stdin: `${SECRET}\n` });
  t.equal(put.code, 0, put.err);

  const out = join(dir, 'gamma.fp.json');
  const crash = await cli(['vault', 'fingerprints', ...ws, '--out', out], { cwd: dir, preload });
  t.not(crash.code, 0, 'the injected fault fails the command');
  t.match(crash.err, /internal error/, 'the crash path ran: a stack was printed');
  t.match(crash.err, /injected fault: hmac failed/);
  const value = Buffer.from(SECRET);
  const forms = [
    SECRET,
    SECRET.slice(0, 12),
    value.toString('base64').slice(0, 16),
    value.toString('hex').slice(0, 16),
    value.toString('base64url').slice(0, 16),
  ];
  for (const form of forms) {
    t.notOk(crash.err.includes(form) || crash.out.includes(form), `no "${form.slice(0, 4)}…" in the crash output`);
  }
  t.notOk(existsSync(out), 'no fingerprint file was published');
  t.same(
    readdirSync(dir).filter((f) => f.startsWith('gamma.fp.json')),
    [],
    'and no temporary file was left behind',
  );

  // The same command without the fault succeeds, so the crash above came from the fault alone.
  const ok = await cli(['vault', 'fingerprints', ...ws, '--out', out], { cwd: dir });
  t.equal(ok.code, 0, ok.err);
  t.ok(existsSync(out));
});
