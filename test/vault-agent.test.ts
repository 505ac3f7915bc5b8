// `portcullis vault agent` as a real process: one JSON "listening on" log line when ready, a 0600
// socket, an unlock served, and SIGTERM locks everything, removes the socket and exits 0.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient, initVault, keyFileProvider } from '@portcullis/vault';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = "import { main } from '@portcullis/cli'; process.exitCode = await main(process.argv.slice(1));";

t.test('the agent daemon starts, serves, and stops cleanly on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-vault-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const vault = join(dir, 'beta.vault');
  await initVault({ file: vault, workspace: 'beta', provider: keyFileProvider({ path: join(dir, 'beta.kek') }) });
  const socketPath = join(dir, 'agent', 'agent.sock');
  const child = spawn(
    process.execPath,
    [
      '--conditions=portcullis-source',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      CLI,
      '--',
      'vault',
      'agent',
      '--socket',
      socketPath,
    ],
    { cwd: here, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => child.kill('SIGKILL'));
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      if (err.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${err}`)));
  });
  const first = JSON.parse(err.split('\n')[0]!) as Record<string, unknown>;
  t.match(first, { level: 'info', daemon: 'vault-agent', msg: `listening on ${socketPath}`, socket: socketPath });
  t.equal(statSync(socketPath).mode & 0o777, 0o600);
  const client = new AgentClient({ socketPath });
  t.teardown(() => client.close());
  t.equal((await client.unlock({ workspace: 'beta', vault })).kek_version, 1);
  t.same(
    (await client.status()).workspaces.map((w) => w.workspace),
    ['beta'],
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0');
  const msgs = err
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.ok(msgs.includes('locked workspace "beta" (agent stopping)'), 'the stop locked the workspace');
  t.notOk(existsSync(socketPath), 'the socket is removed');
});
