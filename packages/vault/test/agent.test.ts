// The vault agent on a real Unix socket: a passphrase (Argon2id) workspace unlocked through it,
// wraps and unwraps done by the agent, one workspace's unlock never opening another, lock and
// idle lock, a 0600 socket in a 0700 directory (re-checked per connection), and hostile frames.
import t from 'tap';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { AgentClient } from '../src/agent-client.js';
import { preparePrivateDirectory } from '../src/agent-socket.js';
import { startVaultAgent } from '../src/agent.js';
import { vaultCommand } from '../src/command.js';
import { localKek } from '../src/local-kek.js';
import { keyFileProvider } from '../src/keyfile.js';
import { passphraseProvider } from '../src/passphrase.js';
import { initVault, openVault } from '../src/store.js';
import { bytes, codeOf, tempDir, text } from './helpers.js';

type TestT = Parameters<Parameters<typeof t.test>[0]>[0];

const PASS = bytes('a long passphrase for the agent test');

/** An agent, a key-file vault "beta" and (withPassphrase: one Argon2id run, seconds) a passphrase vault "alpha". */
async function setup(t: TestT, idleTimeoutMs = 60_000, withPassphrase = false) {
  const dir = tempDir(t);
  const alpha = join(dir, 'alpha.vault');
  const beta = join(dir, 'beta.vault');
  if (withPassphrase)
    await initVault({ file: alpha, workspace: 'alpha', provider: passphraseProvider({ passphrase: PASS }) });
  await initVault({ file: beta, workspace: 'beta', provider: keyFileProvider({ path: join(dir, 'beta.kek') }) });
  const logs: string[] = [];
  const agent = await startVaultAgent({
    socketPath: join(dir, 'agent', 'agent.sock'),
    idleTimeoutMs,
    log: (_level, msg) => logs.push(msg),
  });
  t.teardown(() => agent.close());
  const client = new AgentClient({ socketPath: agent.socketPath });
  t.teardown(() => client.close());
  return { dir, alpha, beta, agent, client, logs };
}

/** Send raw bytes; resolves with what came back once the agent closed, or `lines` answers arrived. */
function frameExchange(socketPath: string, data: string | Buffer, lines = Infinity): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socketPath);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
      if (out.split('\n').length - 1 >= lines) s.destroy();
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.on('connect', () => s.write(data));
  });
}

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('a passphrase workspace unlocked in the agent; the KEK stays there; others stay locked', async (t) => {
  const { alpha, agent, client } = await setup(t, 60_000, true);
  t.equal(statSync(agent.socketPath).mode & 0o777, 0o600, 'socket 0600');
  t.equal(statSync(join(agent.socketPath, '..')).mode & 0o777, 0o700, 'directory 0700');
  const t0 = process.hrtime.bigint();
  t.equal(
    await codeOf(() => client.unlock({ workspace: 'alpha', vault: alpha, passphrase: bytes('wrong passphrase') })),
    'PCX_VAULT_BAD_CREDENTIAL',
  );
  const t1 = process.hrtime.bigint();
  const r = await client.unlock({ workspace: 'alpha', vault: alpha, passphrase: PASS });
  const t2 = process.hrtime.bigint();
  t.equal(r.kek_version, 1);
  const wrong = Number(t1 - t0) / 1e6;
  const right = Number(t2 - t1) / 1e6;
  // Both paths run the whole KDF before the check value says yes or no: no early exit to time.
  t.comment(
    `argon2id unlock: right ${right.toFixed(0)} ms, wrong ${wrong.toFixed(0)} ms (${(wrong / right).toFixed(2)}x)`,
  );
  t.ok(wrong > right * 0.3, 'a wrong passphrase is not rejected before the KDF ran');
  t.same(agent.unlocked(), ['alpha']);

  const vault = await openVault({ file: alpha, workspace: 'alpha' });
  t.teardown(() => vault.close());
  const kek = client.kek(vault.binding(1));
  await vault.verifyKek(kek);
  t.equal(await vault.put(kek, 'k', bytes('through the agent')), 1);
  t.equal(text((await vault.read(kek, 'k')).value), 'through the agent');

  const betaVault = await openVault({ file: join(alpha, '..', 'beta.vault'), workspace: 'beta' });
  t.teardown(() => betaVault.close());
  t.equal(await codeOf(() => betaVault.verifyKek(client.kek(betaVault.binding(1)))), 'PCX_VAULT_LOCKED');
  // Alpha's entry asked for with beta's name or another vault id is refused too.
  const forged = client.kek({ ...vault.binding(1), workspace: 'beta' });
  t.equal(await codeOf(() => forged.unwrap(new Uint8Array(40), 'kek-check')), 'PCX_VAULT_LOCKED');

  t.same(await client.lock('alpha'), ['alpha']);
  t.equal(await codeOf(() => vault.read(kek, 'k')), 'PCX_VAULT_LOCKED', 'locked: the agent refuses');
});

t.test('the CLI unlocks through the agent and then works without a credential', async (t) => {
  const { dir, agent, logs } = await setup(t, 60_000, true);
  const outputs: string[] = [];
  writeFileSync(join(dir, 'pass.txt'), `${Buffer.from(PASS).toString()}\n`, { mode: 0o600 });
  const run = async (argv: string[], stdin = '') => {
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (c: Buffer) => (o += c));
    err.on('data', (c: Buffer) => (e += c));
    const io = { stdout: out, stderr: err, stdin: Readable.from([Buffer.from(stdin)]), cwd: dir };
    try {
      const code = await vaultCommand(argv, io);
      outputs.push(o, e);
      return { code, out: o, err: e };
    } catch (x) {
      outputs.push(o, e, (x as Error).message);
      return { code: 2, out: o, err: `${(x as Error).message}` };
    }
  };
  const common = ['--workspace', 'alpha', '--dir', dir, '--socket', agent.socketPath];
  t.match((await run(['put', ...common, 'n'], 'value')).err, /workspace "alpha" is locked/);
  t.match((await run(['unlock', ...common, '--passphrase-file', 'pass.txt'])).out, /unlocked workspace "alpha"/);
  t.equal((await run(['put', ...common, 'n'], 'value-1')).code, 0);
  t.match((await run(['status', '--socket', agent.socketPath])).out, /^alpha\tKEK v1/);
  t.match((await run(['lock', ...common])).out, /locked "alpha"/);
  t.match((await run(['put', ...common, 'n'], 'value-2')).err, /is locked/);
  t.match((await run(['unlock', ...common], `${Buffer.from(PASS).toString()}\n`)).out, /unlocked/, 'from stdin');
  const said = [...logs, ...outputs].join('\n');
  t.notOk(said.includes(Buffer.from(PASS).toString()), 'the passphrase is in no log or output');
  t.notOk(said.includes('value-1'), 'nor the value');
});

t.test('a workspace locks itself after the idle timeout', async (t) => {
  const { beta, agent, client, logs } = await setup(t, 200);
  await client.unlock({ workspace: 'beta', vault: beta });
  t.same(agent.unlocked(), ['beta']);
  await eventually(async () => agent.unlocked().length === 0);
  t.match(logs.join('\n'), /locked workspace "beta" \(idle for 0 s\)/);
});

t.test('locking zeroes the key material', async (t) => {
  const key = new Uint8Array(32).fill(7);
  const kek = localKek(key);
  await kek.seal(new Uint8Array(32), new Uint8Array(0));
  kek.destroy();
  t.ok(
    key.every((b) => b === 0),
    'sodium_memzero over the KEK bytes',
  );
  await t.rejects(kek.seal(new Uint8Array(32), new Uint8Array(0)), /after destroy/);
});

t.test('hostile frames get an error and the agent keeps serving', async (t) => {
  const { agent, client } = await setup(t);
  t.match(await frameExchange(agent.socketPath, 'not json\n'), /PCX_VAULT_AGENT_BAD_FRAME/);
  t.match(await frameExchange(agent.socketPath, '{"noid":1}\n'), /no integer/);
  t.match(await frameExchange(agent.socketPath, Buffer.alloc(70_000, 0x61)), /PCX_VAULT_AGENT_FRAME_TOO_LARGE/);
  const unknown = await frameExchange(agent.socketPath, '{"id":1,"format_disk":true}\n{"id":2,"health":true}\n', 2);
  t.match(unknown, /unknown request/);
  t.ok(await client.alive(), 'still alive');
});

t.test('a socket directory others can enter is refused, at start and per connection', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'open'), { mode: 0o755 });
  chmodSync(join(dir, 'open'), 0o755);
  t.throws(() => preparePrivateDirectory(join(dir, 'open', 'agent.sock')), { code: 'PCX_VAULT_AGENT_SOCKET' });
  const { beta, agent, client, logs } = await setup(t);
  await client.unlock({ workspace: 'beta', vault: beta });
  chmodSync(join(agent.socketPath, '..'), 0o755);
  t.notOk(await new AgentClient({ socketPath: agent.socketPath, timeoutMs: 2000 }).alive(), 'refused');
  t.same(agent.unlocked(), [], 'and everything locked');
  t.match(logs.join('\n'), /refused a connection: its directory has mode 755/);
});
