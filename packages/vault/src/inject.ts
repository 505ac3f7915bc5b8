/**
 * Handing secrets to a child process: on its standard input by default, as environment
 * variables or on an inherited file descriptor only when asked.
 *
 * Stdin framing (documented in the README, "Injection"):
 * - `lines` (default): each value followed by "\n", in the order the secrets were named;
 *   a value holding "\n" or "\r" is refused (PCX_VAULT_FRAMING) — use `raw`;
 * - `env`: `NAME=value\n` per secret (NAME as stored), same restriction;
 * - `raw`: exactly the bytes of one secret, nothing added (binary values, PEM keys).
 * After the last byte the input is closed, so a reader sees end-of-file.
 *
 * The channel is a connected Unix stream socket (made in a private 0700 directory and removed
 * at once), not a pipe, because a socket tells us what a pipe cannot: a reader that exits or
 * closes its end with bytes unread makes the kernel reset our end (ECONNRESET), and a write
 * after it closed fails (EPIPE). Either is PCX_VAULT_CHILD_EXITED, even when all the bytes fit
 * in the socket buffer before the child ran. (Node's own stdio pipes are sockets too; on Linux
 * a socket cannot be reopened through /dev/stdin, so a child must read fd 0 itself.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants } from 'node:os';
import { vaultError } from './errors.js';
import { wipe } from './crypto.js';
import { envName } from './names.js';
import type { OpenedSecret } from './store.js';

export type StdinFraming = 'lines' | 'env' | 'raw';
export type ChildOutput = 'inherit' | 'ignore' | number | NodeJS.WritableStream;
export type InjectionMode = 'stdin' | 'env' | 'fd';

/** The file descriptor a child gets its secrets on in `fd` mode (its number is also in PORTCULLIS_SECRETS_FD). */
export const SECRETS_FD = 3;

/** The bytes a child reads in `framing`; the caller wipes them. */
export function frameSecrets(secrets: OpenedSecret[], framing: StdinFraming): Uint8Array {
  if (framing === 'raw') {
    if (secrets.length !== 1)
      throw vaultError('PCX_VAULT_FRAMING', `raw framing carries exactly one secret, not ${secrets.length}`, {
        hint: 'name one secret, or use --format lines or env',
      });
    return Uint8Array.from(secrets[0]!.value);
  }
  for (const s of secrets) {
    if (s.value.includes(0x0a) || s.value.includes(0x0d))
      throw vaultError(
        'PCX_VAULT_FRAMING',
        `secret "${s.name}" holds a line break, which ${framing} framing cannot carry`,
        {
          hint: 'inject it alone with --format raw',
        },
      );
  }
  const parts: Uint8Array[] = [];
  for (const s of secrets) {
    if (framing === 'env') parts.push(Buffer.from(`${s.name}=`, 'utf8'));
    parts.push(s.value, NEWLINE);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const NEWLINE = Uint8Array.of(0x0a);

export interface RunWithSecretsOptions {
  command: string;
  args: string[];
  /** The released secrets (openSecretsForInjection); wiped by runWithSecrets once delivered. */
  secrets: OpenedSecret[];
  /** How the child gets them. Default "stdin". */
  mode?: InjectionMode;
  /** Stdin and fd framing. Default "lines". */
  framing?: StdinFraming;
  /** The child's environment, without secrets (env mode adds them). Default process.env. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Where the child's stdout and stderr go: inherited, ignored, a file descriptor, or a stream
   * this process copies them to (runWithSecrets resolves once the copy is complete). Default "inherit".
   */
  stdout?: ChildOutput;
  stderr?: ChildOutput;
  /** Called with the child once it runs (e.g. to forward signals). */
  onSpawn?: (child: ChildProcess) => void;
}

export interface ChildResult {
  /** The exit code, or 128 + the signal's number when a signal ended it (as a shell reports it). */
  status: number;
  signal: NodeJS.Signals | null;
}

/** A connected socket pair: `ours` stays here, `theirs` goes to the child. */
async function socketPair(): Promise<{ ours: Socket; theirs: Socket }> {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-inject-')); // 0700: nobody else can connect
  const path = join(dir, 's');
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const ours = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      ours.once('connect', resolve);
      ours.once('error', reject);
    });
    const theirs = await accepted;
    theirs.pause();
    return { ours, theirs };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Run `command` with the secrets delivered as asked; resolves with its exit status once it
 * exits. PCX_VAULT_EXEC_FAILED when it cannot start (secrets never sent), PCX_VAULT_CHILD_EXITED
 * when it left before reading them all.
 */
export async function runWithSecrets(options: RunWithSecretsOptions): Promise<ChildResult> {
  const mode = options.mode ?? 'stdin';
  const framing = options.framing ?? 'lines';
  let payload: Uint8Array | undefined;
  let pair: { ours: Socket; theirs: Socket } | undefined;
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  try {
    if (mode === 'env') {
      for (const s of options.secrets) {
        if (s.value.includes(0))
          throw vaultError(
            'PCX_VAULT_FRAMING',
            `secret "${s.name}" holds a NUL byte, which an environment variable cannot carry`,
          );
        // A JS string: the one copy here that cannot be zeroed (README "Memory").
        env[envName(s.name)] = Buffer.from(s.value.buffer, s.value.byteOffset, s.value.length).toString('utf8');
      }
    } else {
      payload = frameSecrets(options.secrets, framing);
      pair = await socketPair();
      if (mode === 'fd') env.PORTCULLIS_SECRETS_FD = String(SECRETS_FD);
    }
    const out = options.stdout ?? 'inherit';
    const err = options.stderr ?? 'inherit';
    const stdio: (Socket | 'inherit' | 'ignore' | 'pipe' | number)[] = [
      mode === 'stdin' ? pair!.theirs : mode === 'fd' ? 'inherit' : 'ignore',
      typeof out === 'object' ? 'pipe' : out,
      typeof err === 'object' ? 'pipe' : err,
    ];
    if (mode === 'fd') stdio.push(pair!.theirs);
    const child = spawn(options.command, options.args, { stdio, env, ...(options.cwd ? { cwd: options.cwd } : {}) });
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    // The child holds its own copy of the socket now; ours goes, so that only the child can read.
    pair?.theirs.destroy();
    try {
      await spawned;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw vaultError('PCX_VAULT_EXEC_FAILED', `cannot run "${options.command}": ${code ?? (e as Error).message}`, {
        hint: code === 'ENOENT' ? 'check the command name and PATH' : 'check that it is executable',
      });
    }
    const copied = [copy(child.stdout, out), copy(child.stderr, err)];
    options.onSpawn?.(child);
    const exited = new Promise<ChildResult>((resolve) =>
      child.once('exit', (code, signal) =>
        resolve({ status: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0), signal }),
      ),
    );
    const delivered = pair ? deliver(pair.ours, payload!, exited) : Promise.resolve(true);
    const [result, complete] = await Promise.all([exited, delivered, ...copied]);
    if (!complete) {
      throw vaultError(
        'PCX_VAULT_CHILD_EXITED',
        `"${options.command}" exited (status ${result.status}) before reading all of its secrets`,
        { hint: mode === 'fd' ? `the command must read fd ${SECRETS_FD}` : 'the command must read its standard input' },
      );
    }
    return result;
  } finally {
    wipe(payload);
    for (const s of options.secrets) wipe(s.value);
    pair?.ours.destroy();
    pair?.theirs.destroy();
  }
}

/** Copy a piped child output into `to` (never ending `to`); resolves when the child's side closed. */
function copy(from: NodeJS.ReadableStream | null, to: ChildOutput): Promise<void> {
  if (!from || typeof to !== 'object') return Promise.resolve();
  from.pipe(to, { end: false });
  return new Promise<void>((resolve) => {
    from.once('end', resolve);
    from.once('error', () => resolve());
  });
}

/**
 * Write the payload and close our side; resolves true when the child took every byte (our end
 * saw end-of-file, or the child still holds its end after exiting, e.g. a grandchild has it),
 * false when the kernel reports that the reader went away with bytes unread.
 */
function deliver(ours: Socket, payload: Uint8Array, exited: Promise<unknown>): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const settle = (v: boolean) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    ours.on('error', (e: NodeJS.ErrnoException) => {
      // ECONNRESET: closed with bytes unread; EPIPE: closed before we wrote.
      settle(!(e.code === 'ECONNRESET' || e.code === 'EPIPE'));
    });
    ours.on('data', () => {}); // the child writes nothing here; reading is what surfaces a reset
    ours.once('end', () => settle(true));
    ours.end(payload);
    // The kernel closes an exiting child's descriptors before its parent learns of the exit, so
    // a reset is already queued on our socket when `exit` fires; two turns of the loop let it in.
    void exited.then(() => setImmediate(() => setImmediate(() => settle(true))));
  });
}
