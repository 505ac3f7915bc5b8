/**
 * `portcullis vault …`: the command line over the store, the agent and the release path.
 *
 * Promises:
 * - a secret value is read from stdin or a file only, never from argv (an extra positional
 *   after the name, or --value, is refused without echoing it); passphrases and PINs come from
 *   files (or stdin for `unlock`), never argv or the environment;
 * - `get` prints a value only with --reveal, after the PDP allowed `secret.read` and the audit
 *   sink acknowledged the record; `exec` likewise with `secret.inject` (access.ts);
 * - every failure is a PcxError with one of the vault's codes (the CLI prints message and hint, exit 2);
 *   no message carries a value.
 *
 * Where the KEK comes from: a key-file vault opens its key file directly; otherwise a
 * --passphrase-file or --pin-file opens it in this process, else the vault agent (`vault
 * unlock`) does the wrapping and the KEK never enters this process.
 */
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AuditClient,
  createLogger,
  isPcxError,
  PdpClient,
  type Principal,
  type RequestContext,
} from '@portcullis/protocol';
import { buildFingerprints, serializeFingerprints } from '@portcullis/scan';
import { openSecretForReading, openSecretsForInjection, type ReleaseOptions } from './access.js';
import { AgentClient } from './agent-client.js';
import { defaultAgentSocket } from './agent-socket.js';
import { startVaultAgent } from './agent.js';
import { randomBytes, wipe } from './crypto.js';
import { vaultError } from './errors.js';
import { runWithSecrets, type InjectionMode, type StdinFraming } from './inject.js';
import type { Kek, KeyProvider } from './kek.js';
import { fsyncDirectory, keyFileProvider } from './keyfile.js';
import { checkSecretName, defaultVaultDir, vaultFile } from './names.js';
import { MODERATE, passphraseProvider, SENSITIVE } from './passphrase.js';
import { destroyPkcs11Key, pkcs11Provider } from './pkcs11.js';
import { type Credentials, needsCredential, providerFor } from './providers.js';
import { initVault, openVault, type SecretInfo, type Vault } from './store.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface VaultCommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  cwd: string;
}

const USAGE = `usage: portcullis vault <command> --workspace W [options]

commands:
  init         create the workspace's vault, with one of
                 --key-file FILE             a new (or existing) 0600 key file holds the KEK
                 --passphrase-file FILE      Argon2id of the passphrase (--kdf moderate|sensitive)
                 --pkcs11-module LIB --pkcs11-token LABEL --pin-file FILE
                                             an AES-256 key in a PKCS#11 token (HSM, KMS, SoftHSM2)
  agent        hold unlocked workspaces in memory (--socket PATH, --idle-timeout SECONDS, default 900)
  unlock       unlock the workspace in the agent (passphrase or PIN from --passphrase-file,
               --pin-file, or stdin; --key-file FILE for a moved key file)
  lock         lock the workspace in the agent (--all: every workspace)
  status       what the agent holds
  put NAME     store a new version; the value from stdin (one final newline dropped) or --file FILE
  get NAME     print a version to stdout: needs --reveal, and --pdp/--audit/--principal (secret.read)
  list         names and metadata (--json); --preview adds the first 4 characters of values of
               16 or more (off by default; needs the KEK)
  versions NAME
  delete NAME  every version, or --version N
  rotate-kek   rewrap every data key under a new KEK version and retire the old one
                 (--new-key-file FILE | --new-passphrase-file FILE; PKCS#11: a new key in the same token)
  exec --secret NAME[,NAME] -- CMD ARGS…
               run CMD with the secrets on its stdin (secret.inject): --format lines|env|raw
               (default lines: one value per line; env: NAME=value lines; raw: one secret's bytes);
               --env sets environment variables instead, --fd passes them on fd 3
  fingerprints write keyed fingerprints of every secret for the message filter (--out FILE)

common options:
  --workspace W            the workspace (required)
  --dir DIR                where vaults live (default $PORTCULLIS_VAULT_DIR, else ~/.local/share/portcullis/vault)
  --socket PATH            the agent's socket (default $PORTCULLIS_VAULT_AGENT, else $XDG_RUNTIME_DIR/…)
  --passphrase-file FILE   open a passphrase KEK here instead of through the agent
  --pin-file FILE          open a PKCS#11 KEK here instead of through the agent
  --key-file FILE          a key-file vault's key file, when it moved
  --pkcs11-module LIB      the PKCS#11 library, when it moved
  --pdp SOCK --audit SOCK --principal ID [--role R] [--project P] [--session S] [--lease-file F]
                           who asks, for get and exec
`;

const OPTIONS = {
  workspace: { type: 'string' },
  dir: { type: 'string' },
  socket: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'pin-file': { type: 'string' },
  'key-file': { type: 'string' },
  'pkcs11-module': { type: 'string' },
  'pkcs11-token': { type: 'string' },
  kdf: { type: 'string' },
  'idle-timeout': { type: 'string' },
  all: { type: 'boolean' },
  file: { type: 'string' },
  value: { type: 'string' },
  version: { type: 'string' },
  reveal: { type: 'boolean' },
  json: { type: 'boolean' },
  preview: { type: 'boolean' },
  'new-key-file': { type: 'string' },
  'new-passphrase-file': { type: 'string' },
  secret: { type: 'string', multiple: true },
  format: { type: 'string' },
  env: { type: 'boolean' },
  fd: { type: 'boolean' },
  out: { type: 'string' },
  pdp: { type: 'string' },
  audit: { type: 'string' },
  principal: { type: 'string' },
  role: { type: 'string', multiple: true },
  project: { type: 'string' },
  session: { type: 'string' },
  'lease-file': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
}

interface Ctx {
  values: Values;
  positionals: string[];
  io: VaultCommandIO;
  /** The command after `--` (exec). */
  command: string[];
}

const SUBCOMMANDS: Record<string, (c: Ctx) => Promise<number>> = {
  init,
  agent,
  unlock,
  lock,
  status,
  put,
  get,
  list,
  versions,
  delete: remove,
  'rotate-kek': rotateKek,
  exec,
  fingerprints,
};

export async function vaultCommand(argv: string[], io: VaultCommandIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  // An own entry only: "constructor" or "__proto__" must not find Object.prototype's members.
  const run = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!run) {
    const { closestName } = await import('@portcullis/protocol');
    const guess = closestName(sub, Object.keys(SUBCOMMANDS));
    throw vaultError('PCX_USAGE', `unknown vault command "${sub}"${guess ? ` (did you mean "${guess}"?)` : ''}`, {
      hint: 'run "portcullis vault --help"',
    });
  }
  const dash = rest.indexOf('--');
  const command = dash >= 0 ? rest.slice(dash + 1) : [];
  const { values, positionals } = parse(dash >= 0 ? rest.slice(0, dash) : rest);
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (values.value !== undefined) throw valueOnArgv();
  return run({ values, positionals, io, command });
}

function valueOnArgv(): Error {
  return vaultError('PCX_VAULT_VALUE_ON_ARGV', 'a secret value cannot be given on the command line', {
    hint: 'other processes can read argv: pipe the value on stdin or give --file FILE (the value was not stored)',
  });
}

// ---- helpers ----

function workspaceOf(c: Ctx): string {
  const w = c.values.workspace;
  if (!w) throw vaultError('PCX_USAGE', 'missing --workspace W', { hint: 'every vault command names its workspace' });
  return w;
}

function fileOf(c: Ctx): string {
  const dir = c.values.dir === undefined ? defaultVaultDir() : resolve(c.io.cwd, c.values.dir);
  return vaultFile(dir, workspaceOf(c));
}

function path(c: Ctx, p: string): string {
  return resolve(c.io.cwd, p);
}

function nameOf(c: Ctx, what: string): string {
  const [name, ...extra] = c.positionals;
  if (name === undefined) throw vaultError('PCX_USAGE', `missing the secret name`, { hint: `vault ${what} NAME` });
  // A second word after the name is most likely a value typed on the command line: refuse it unseen.
  if (extra.length > 0) {
    if (what === 'put') throw valueOnArgv();
    throw vaultError('PCX_USAGE', `vault ${what} takes one secret name, not ${c.positionals.length} words`);
  }
  return checkSecretName(name);
}

function noPositionals(c: Ctx, what: string): void {
  if (c.positionals.length > 0)
    throw vaultError('PCX_USAGE', `vault ${what} takes no arguments besides options`, {
      hint: 'run "portcullis vault --help"',
    });
}

function versionOf(c: Ctx): number | undefined {
  const v = c.values.version;
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(v)) throw vaultError('PCX_USAGE', `--version "${v}" is not a positive whole number`);
  return Number(v);
}

/** A passphrase or PIN from a file: its bytes, one final newline dropped. Never echoed. */
function readCredentialFile(file: string, what: string): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw vaultError('PCX_VAULT_CREDENTIAL_FILE', `cannot read the ${what} file "${file}": ${errno(e)}`);
  }
  return takeLine(bytes, () =>
    vaultError('PCX_VAULT_CREDENTIAL_FILE', `the ${what} file "${file}" is empty`, {
      hint: `write the ${what} into it (one line)`,
    }),
  );
}

/** Drop one final "\n" or "\r\n"; the source buffer is zeroed. */
function takeLine(bytes: Buffer, empty: () => Error): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const out = Uint8Array.from(bytes.subarray(0, end));
  bytes.fill(0);
  if (out.length === 0) throw empty();
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  const all = Buffer.concat(chunks);
  for (const ch of chunks) ch.fill(0);
  return all;
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

function credentialsOf(c: Ctx): Credentials {
  const credentials: Credentials = {};
  const v = c.values;
  if (v['passphrase-file']) credentials.passphrase = readCredentialFile(path(c, v['passphrase-file']), 'passphrase');
  if (v['pin-file']) credentials.pin = readCredentialFile(path(c, v['pin-file']), 'PIN');
  if (v['key-file']) credentials.keyFile = path(c, v['key-file']);
  if (v['pkcs11-module']) credentials.pkcs11Module = path(c, v['pkcs11-module']);
  return credentials;
}

function agentClient(c: Ctx): AgentClient {
  return new AgentClient({ socketPath: c.values.socket ? path(c, c.values.socket) : defaultAgentSocket() });
}

interface Unlocked {
  kek: Kek;
  close(): void;
}

/** The vault's active KEK: opened here (key file, or a credential given) or held by the agent. */
async function unlocked(c: Ctx, vault: Vault): Promise<Unlocked> {
  const active = vault.activeKek();
  const credentials = credentialsOf(c);
  if (!needsCredential(active.params) || credentials.passphrase || credentials.pin) {
    const provider = providerFor(active.params, credentials, vault.workspace);
    try {
      const kek = await vault.unlock(provider);
      return { kek, close: () => kek.destroy() };
    } finally {
      provider.dispose();
      wipe(credentials.passphrase, credentials.pin);
    }
  }
  const client = agentClient(c);
  const kek = client.kek(vault.binding(active.version));
  try {
    await vault.verifyKek(kek);
  } catch (e) {
    client.close();
    if (isPcxError(e) && e.code === 'PCX_VAULT_AGENT_UNAVAILABLE') {
      throw vaultError('PCX_VAULT_LOCKED', `workspace "${vault.workspace}" is locked (no vault agent answers)`, {
        hint:
          `start "portcullis vault agent" and run "portcullis vault unlock --workspace ${vault.workspace}", ` +
          'or give --passphrase-file / --pin-file',
      });
    }
    throw e;
  }
  return { kek, close: () => client.close() };
}

async function withVault<T>(c: Ctx, fn: (vault: Vault) => Promise<T>): Promise<T> {
  const vault = await openVault({ file: fileOf(c), workspace: workspaceOf(c) });
  try {
    return await fn(vault);
  } finally {
    vault.close();
  }
}

async function withKek<T>(c: Ctx, fn: (vault: Vault, kek: Kek) => Promise<T>): Promise<T> {
  return withVault(c, async (vault) => {
    const u = await unlocked(c, vault);
    try {
      return await fn(vault, u.kek);
    } finally {
      u.close();
    }
  });
}

/** The PDP, the audit sink and who asks, for get and exec; the clients are closed by `done`. */
function releaseContext(c: Ctx, vault: Vault, kek: Kek): { options: ReleaseOptions; done(): void } {
  const v = c.values;
  for (const required of ['pdp', 'audit', 'principal'] as const) {
    if (!v[required])
      throw vaultError('PCX_USAGE', `missing --${required}`, {
        hint:
          'releasing a secret asks the PDP and records to the audit sink: ' +
          'give --pdp SOCK --audit SOCK --principal ID',
      });
  }
  const principal: Principal = { id: v.principal!, roles: v.role ?? [] };
  const context: RequestContext = {};
  if (v.project) context.project = v.project;
  if (v.session) context.session = v.session;
  const leases = (v['lease-file'] ?? []).map((f) => {
    try {
      return readFileSync(path(c, f), 'utf8').trim();
    } catch (e) {
      throw vaultError('PCX_VAULT_CREDENTIAL_FILE', `cannot read the lease file "${f}": ${errno(e)}`);
    }
  });
  if (leases.length) context.leases = leases;
  const pdp = new PdpClient({ socketPath: path(c, v.pdp!) });
  const audit = new AuditClient({ socketPath: path(c, v.audit!) });
  return {
    options: { vault, kek, pdp, audit, principal, ...(Object.keys(context).length ? { context } : {}) },
    done: () => {
      pdp.close();
      audit.close();
    },
  };
}

function say(c: Ctx, line: string): void {
  c.io.stderr.write(`portcullis vault: ${line}\n`);
}

// ---- subcommands ----

function newProvider(c: Ctx, flags: { keyFile?: string; passphraseFile?: string }): KeyProvider | undefined {
  if (flags.keyFile) return keyFileProvider({ path: path(c, flags.keyFile) });
  if (flags.passphraseFile) {
    const kdf = c.values.kdf ?? 'moderate';
    if (kdf !== 'moderate' && kdf !== 'sensitive')
      throw vaultError('PCX_USAGE', `--kdf "${kdf}" is neither moderate nor sensitive`);
    const passphrase = readCredentialFile(path(c, flags.passphraseFile), 'passphrase');
    try {
      return passphraseProvider({ passphrase, ...(kdf === 'sensitive' ? SENSITIVE : MODERATE) });
    } finally {
      wipe(passphrase);
    }
  }
  return undefined;
}

async function init(c: Ctx): Promise<number> {
  noPositionals(c, 'init');
  const v = c.values;
  const kinds = [v['key-file'], v['passphrase-file'], v['pkcs11-token']].filter((x) => x !== undefined).length;
  if (kinds !== 1)
    throw vaultError('PCX_USAGE', 'vault init needs exactly one of --key-file, --passphrase-file, --pkcs11-token', {
      hint: 'see "portcullis vault --help"',
    });
  let provider = newProvider(c, { keyFile: v['key-file'], passphraseFile: v['passphrase-file'] });
  if (!provider) {
    if (!v['pkcs11-module'] || !v['pin-file'])
      throw vaultError('PCX_USAGE', 'a PKCS#11 vault needs --pkcs11-module LIB, --pkcs11-token LABEL and --pin-file');
    const pin = readCredentialFile(path(c, v['pin-file']), 'PIN');
    provider = pkcs11Provider({ pin, module: path(c, v['pkcs11-module']), token: v['pkcs11-token']! });
    wipe(pin);
  }
  const file = fileOf(c);
  try {
    await initVault({ file, workspace: workspaceOf(c), provider });
  } finally {
    provider.dispose();
  }
  c.io.stdout.write(`created the vault of workspace "${workspaceOf(c)}" (${provider.kind} KEK) at ${file}\n`);
  return 0;
}

async function agent(c: Ctx): Promise<number> {
  noPositionals(c, 'agent');
  const idle = c.values['idle-timeout'] ?? '900';
  if (!/^[1-9][0-9]{0,6}$/.test(idle))
    throw vaultError('PCX_USAGE', `--idle-timeout "${idle}" is not a positive whole number of seconds`);
  let onSignal: (s: NodeJS.Signals) => void = () => {};
  const signalled = new Promise<NodeJS.Signals>((r) => (onSignal = r));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const log = createLogger({ daemon: 'vault-agent', stream: c.io.stderr });
    const handle = await startVaultAgent({
      socketPath: c.values.socket ? path(c, c.values.socket) : defaultAgentSocket(),
      idleTimeoutMs: Number(idle) * 1000,
      log,
    });
    const signal = await signalled;
    log('info', `${signal}: locking every workspace and stopping`);
    await handle.close();
    log('info', 'stopped');
    return 0;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

async function unlock(c: Ctx): Promise<number> {
  noPositionals(c, 'unlock');
  const file = fileOf(c);
  const workspace = workspaceOf(c);
  const params = await withVault(c, async (vault) => vault.activeKek().params);
  const credentials = credentialsOf(c);
  try {
    if (params.provider === 'passphrase' && !credentials.passphrase)
      credentials.passphrase = takeLine(await readAll(c.io.stdin), () =>
        vaultError('PCX_VAULT_LOCKED', `no passphrase for workspace "${workspace}" on stdin`, {
          hint: 'pipe it on stdin or give --passphrase-file FILE',
        }),
      );
    if (params.provider === 'pkcs11' && !credentials.pin)
      credentials.pin = takeLine(await readAll(c.io.stdin), () =>
        vaultError('PCX_VAULT_LOCKED', `no PIN for workspace "${workspace}" on stdin`, {
          hint: 'pipe it on stdin or give --pin-file FILE',
        }),
      );
    const client = agentClient(c);
    try {
      const r = await client.unlock({ workspace, vault: file, ...credentials });
      c.io.stdout.write(
        `unlocked workspace "${workspace}" (KEK version ${r.kek_version}); it locks after ` +
          `${Math.round(r.idle_timeout_ms / 1000)} s without use\n`,
      );
    } finally {
      client.close();
    }
  } finally {
    wipe(credentials.passphrase, credentials.pin);
  }
  return 0;
}

async function lock(c: Ctx): Promise<number> {
  noPositionals(c, 'lock');
  if (!c.values.all) workspaceOf(c);
  const client = agentClient(c);
  try {
    const locked = await client.lock(c.values.all ? undefined : c.values.workspace);
    c.io.stdout.write(locked.length ? `locked ${locked.map((w) => `"${w}"`).join(', ')}\n` : 'nothing was unlocked\n');
  } finally {
    client.close();
  }
  return 0;
}

async function status(c: Ctx): Promise<number> {
  noPositionals(c, 'status');
  const client = agentClient(c);
  try {
    const s = await client.status();
    if (c.values.json) c.io.stdout.write(`${JSON.stringify(s)}\n`);
    else if (s.workspaces.length === 0) c.io.stdout.write('no workspace is unlocked\n');
    else
      for (const w of s.workspaces)
        c.io.stdout.write(
          `${w.workspace}\tKEK v${w.kek_version}\tunlocked ${w.unlocked_at}\tlocks in ` +
            `${Math.round(w.locks_in_ms / 1000)} s\n`,
        );
  } finally {
    client.close();
  }
  return 0;
}

async function put(c: Ctx): Promise<number> {
  const name = nameOf(c, 'put');
  let value: Uint8Array;
  if (c.values.file !== undefined) {
    const f = path(c, c.values.file);
    try {
      value = readFileSync(f);
    } catch (e) {
      throw vaultError('PCX_USAGE', `cannot read --file "${c.values.file}": ${errno(e)}`);
    }
  } else {
    value = takeLine(await readAll(c.io.stdin), () =>
      vaultError('PCX_VAULT_EMPTY_VALUE', `the value for "${name}" is empty; nothing was stored`, {
        hint: 'pipe the value on stdin or give --file FILE',
      }),
    );
  }
  try {
    const version = await withKek(c, (vault, kek) => vault.put(kek, name, value));
    c.io.stdout.write(`stored "${name}" version ${version} in workspace "${workspaceOf(c)}"\n`);
  } finally {
    wipe(value);
  }
  return 0;
}

async function get(c: Ctx): Promise<number> {
  const name = nameOf(c, 'get');
  const version = versionOf(c);
  if (!c.values.reveal)
    throw vaultError('PCX_VAULT_REVEAL_REQUIRED', `vault get prints the value of "${name}" only with --reveal`, {
      hint: 'to hand a secret to a program, prefer "portcullis vault exec" (stdin, no terminal, no scrollback)',
    });
  return withKek(c, async (vault, kek) => {
    const r = releaseContext(c, vault, kek);
    try {
      const s = await openSecretForReading(r.options, { name, ...(version ? { version } : {}) });
      try {
        // A copy: a stream may hold the chunk it was given after the write completes (a pipe
        // consumer, a test's PassThrough), so the bytes handed over are not ours to zero.
        await new Promise<void>((res, rej) => c.io.stdout.write(Buffer.from(s.value), (e) => (e ? rej(e) : res())));
      } finally {
        wipe(s.value);
      }
    } finally {
      r.done();
    }
    return 0;
  });
}

async function list(c: Ctx): Promise<number> {
  noPositionals(c, 'list');
  const rows: (SecretInfo & { preview?: string })[] = await withVault(c, async (vault) => {
    const rows = vault.list();
    if (!c.values.preview) return rows;
    // Off by default, and it needs the KEK: each latest version is decrypted for its first bytes.
    const u = await unlocked(c, vault);
    try {
      for (const r of rows) {
        const s = await vault.read(u.kek, r.name, r.latest);
        const p = maskedPreview(s.value);
        wipe(s.value);
        if (p !== undefined) Object.assign(r, { preview: p });
      }
    } finally {
      u.close();
    }
    return rows;
  });
  if (c.values.json) c.io.stdout.write(`${JSON.stringify(rows)}\n`);
  else
    for (const r of rows)
      c.io.stdout.write(
        `${r.name}\tv${r.latest}\t${r.versions} version(s)\t${r.length} bytes\t${r.updatedAt}` +
          `${r.preview === undefined ? '' : `\t${r.preview}`}\n`,
      );
  return 0;
}

/** Shortest values shown with a preview, in bytes; the preview is at most PREVIEW_CHARS of them. */
const PREVIEW_MIN_BYTES = 16;
const PREVIEW_CHARS = 4;

/**
 * "abcd…" for a value of at least 16 bytes whose first 4 bytes are printable ASCII; none
 * otherwise (a short secret would give away too large a share of itself).
 */
export function maskedPreview(value: Uint8Array): string | undefined {
  if (value.length < PREVIEW_MIN_BYTES) return undefined;
  const head = value.subarray(0, PREVIEW_CHARS);
  if (!head.every((b) => b >= 0x21 && b <= 0x7e)) return undefined;
  return `${String.fromCharCode(...head)}…`;
}

async function versions(c: Ctx): Promise<number> {
  const name = nameOf(c, 'versions');
  const rows = await withVault(c, async (vault) => vault.versions(name));
  if (c.values.json) c.io.stdout.write(`${JSON.stringify(rows)}\n`);
  else
    for (const r of rows) c.io.stdout.write(`v${r.version}\t${r.length} bytes\t${r.createdAt}\tKEK v${r.kekVersion}\n`);
  return 0;
}

async function remove(c: Ctx): Promise<number> {
  const name = nameOf(c, 'delete');
  const version = versionOf(c);
  const gone = await withVault(c, async (vault) => vault.delete(name, version));
  c.io.stdout.write(`deleted "${name}" version(s) ${gone.join(', ')}\n`);
  return 0;
}

async function rotateKek(c: Ctx): Promise<number> {
  noPositionals(c, 'rotate-kek');
  return withKek(c, async (vault, oldKek) => {
    const old = vault.activeKek();
    const v = c.values;
    let provider = newProvider(c, { keyFile: v['new-key-file'], passphraseFile: v['new-passphrase-file'] });
    let pin: Uint8Array | undefined;
    if (!provider) {
      if (old.params.provider !== 'pkcs11')
        throw vaultError('PCX_USAGE', `rotating a ${old.provider} KEK needs --new-key-file or --new-passphrase-file`);
      if (!v['pin-file']) throw vaultError('PCX_USAGE', 'rotating a PKCS#11 KEK needs --pin-file (a new token key)');
      pin = readCredentialFile(path(c, v['pin-file']), 'PIN');
      const module = v['pkcs11-module'] ? path(c, v['pkcs11-module']) : old.params.module;
      provider = pkcs11Provider({ pin, module, token: old.params.token });
    }
    try {
      const r = await vault.rotateKek(oldKek, provider);
      c.io.stdout.write(`rewrapped ${r.rewrapped} data key(s) from KEK version ${r.from} to ${r.to}\n`);
      if (old.params.provider === 'pkcs11' && pin) {
        destroyPkcs11Key(old.params, pin, v['pkcs11-module'] ? path(c, v['pkcs11-module']) : undefined);
        say(c, `destroyed the retired key "${old.params.label}" in the token "${old.params.token}"`);
      } else if (old.params.provider === 'keyfile') {
        say(c, `the key file ${old.params.path} is retired; delete it once no backup of the vault needs it`);
      }
    } finally {
      provider.dispose();
      wipe(pin);
    }
    // The agent (if any) holds the retired version: lock it there rather than leave it usable.
    const client = agentClient(c);
    try {
      if ((await client.alive()) && (await client.lock(vault.workspace)).length)
        say(c, `locked "${vault.workspace}" in the agent; unlock it again for the new KEK`);
    } finally {
      client.close();
    }
    return 0;
  });
}

async function exec(c: Ctx): Promise<number> {
  noPositionals(c, 'exec');
  const [command, ...args] = c.command;
  if (!command)
    throw vaultError('PCX_USAGE', 'vault exec needs the command after "--"', {
      hint: 'portcullis vault exec --workspace W --secret NAME -- CMD ARGS…',
    });
  const names = (c.values.secret ?? []).flatMap((s) => s.split(','));
  if (names.length === 0) throw vaultError('PCX_USAGE', 'vault exec needs --secret NAME[,NAME]');
  names.forEach(checkSecretName);
  if (c.values.env && c.values.fd) throw vaultError('PCX_USAGE', '--env and --fd exclude each other');
  const mode: InjectionMode = c.values.env ? 'env' : c.values.fd ? 'fd' : 'stdin';
  const framing = c.values.format ?? 'lines';
  if (framing !== 'lines' && framing !== 'env' && framing !== 'raw')
    throw vaultError('PCX_USAGE', `--format "${framing}" is not lines, env or raw`);
  return withKek(c, async (vault, kek) => {
    const r = releaseContext(c, vault, kek);
    let secrets: Awaited<ReturnType<typeof openSecretsForInjection>>;
    try {
      secrets = await openSecretsForInjection(
        r.options,
        names.map((name) => ({ name })),
      );
    } finally {
      r.done();
    }
    const forward = (s: NodeJS.Signals) => child?.kill(s);
    let child: import('node:child_process').ChildProcess | undefined;
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      const result = await runWithSecrets({
        command,
        args,
        secrets,
        mode,
        framing: framing as StdinFraming,
        cwd: c.io.cwd,
        stdout: c.io.stdout === process.stdout ? 'inherit' : c.io.stdout,
        stderr: c.io.stderr === process.stderr ? 'inherit' : c.io.stderr,
        onSpawn: (ch) => (child = ch),
      });
      return result.status;
    } finally {
      process.removeListener('SIGINT', forward);
      process.removeListener('SIGTERM', forward);
    }
  });
}

async function fingerprints(c: Ctx): Promise<number> {
  noPositionals(c, 'fingerprints');
  const file = fileOf(c);
  const out = c.values.out ? path(c, c.values.out) : file.replace(/\.vault$/, '.fingerprints.json');
  const { text, count } = await withKek(c, async (vault, kek) => {
    const key = await vault.fingerprintKey(kek);
    const secrets = await vault.readAll(kek);
    try {
      const fp = buildFingerprints({ workspace: vault.workspace, key, secrets });
      return { text: serializeFingerprints(fp), count: secrets.length };
    } finally {
      wipe(key);
      for (const s of secrets) wipe(s.value);
    }
  });
  writePrivateAtomically(out, text);
  c.io.stdout.write(`wrote fingerprints of ${count} secret version(s) to ${out}\n`);
  return 0;
}

/** Write `text` to `file` mode 0600 through a temporary file and a rename: never half a file. */
function writePrivateAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${Buffer.from(randomBytes(6)).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const bytes = Buffer.from(text, 'utf8');
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
    fsyncDirectory(dirname(file));
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
    throw vaultError('PCX_VAULT_FINGERPRINTS', `cannot write the fingerprint file "${file}": ${errno(e)}`, {
      hint: 'check that its directory exists and is writable',
    });
  }
}
