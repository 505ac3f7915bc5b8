/**
 * End-to-end helpers: start the built `portcullis` bin as a real daemon and wait for its ready
 * line, stop it with SIGTERM (waiting for its exit), and run a command to completion.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
if (!existsSync(join(root, 'packages', 'cli', 'dist', 'bin.js')))
  throw new Error('build first: node scripts/bootstrap.mjs build');

export interface Daemon {
  child: ChildProcess;
  /** stdout and stderr, interleaved. */
  stderr: string;
  match?: RegExpMatchArray;
}

const daemons: Daemon[] = [];

/** Starts `portcullis ARGS…`; resolves once its output matches `ready`. */
export function daemon(args: string[], ready: RegExp): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const d: Daemon = { child, stderr: '' };
    daemons.push(d);
    const timer = setTimeout(() => reject(new Error(`not ready: ${args[0]}: ${d.stderr}`)), 15_000);
    const onData = (s: string): void => {
      d.stderr += s;
      const m = ready.exec(d.stderr);
      if (m) {
        clearTimeout(timer);
        d.match = m;
        resolve(d);
      }
    };
    // Daemons announce themselves on stdout or stderr; either counts.
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', onData);
    }
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code}: ${d.stderr}`));
    });
  });
}

/** SIGTERM, then waits for the exit; resolves with the exit code. */
export async function stop(d: Daemon): Promise<number | null> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return d.child.exitCode;
  const exited = new Promise<number | null>((r) => d.child.once('exit', (code) => r(code)));
  d.child.kill('SIGTERM');
  return exited;
}

/** Stops every daemon started so far. */
export async function stopAll(): Promise<void> {
  for (const d of daemons) await stop(d);
}

export function run(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: 30_000, env: { ...process.env, ...options.env }, cwd: options.cwd },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
