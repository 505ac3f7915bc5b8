/**
 * Where the vault agent listens, and the checks that make its socket per-user.
 *
 * Node has no SO_PEERCRED (nor getpeereid, nor SCM_CREDENTIALS), so the peer's uid cannot be
 * read from a connection without native code. What guards the agent instead is what connect(2)
 * itself enforces: connecting to a Unix socket needs write permission on the socket file and
 * search permission on every directory above it. The socket is 0600 from bind (umask) in a
 * directory that must be owned by the agent's uid with no group or other permissions (0700),
 * checked when the agent starts and again on every connection (a directory or socket whose
 * owner or mode changed, or a socket file replaced, makes the agent refuse the connection).
 * Only the owner — and root, which SO_PEERCRED would let through as well — can connect.
 * README "The agent's socket" says what this does not cover.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { vaultError } from './errors.js';

/**
 * $PORTCULLIS_VAULT_AGENT, else $XDG_RUNTIME_DIR/portcullis/vault-agent.sock, else
 * /tmp/portcullis-vault-<uid>/agent.sock.
 */
export function defaultAgentSocket(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PORTCULLIS_VAULT_AGENT) return env.PORTCULLIS_VAULT_AGENT;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'portcullis', 'vault-agent.sock');
  return join(tmpdir(), `portcullis-vault-${process.getuid?.() ?? 'user'}`, 'agent.sock');
}

/** Create the socket's directory 0700 if missing; refuse one that others could enter. */
export function preparePrivateDirectory(socketPath: string): void {
  const dir = dirname(socketPath);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw vaultError(
      'PCX_VAULT_AGENT_SOCKET',
      `cannot create the agent's directory ${dir}: ${(e as NodeJS.ErrnoException).code}`,
    );
  }
  const why = privateDirectoryProblem(dir);
  if (why) {
    throw vaultError('PCX_VAULT_AGENT_SOCKET', `the agent's directory ${dir} ${why}`, {
      hint:
        `the agent's socket must be in a directory only you can enter: chmod 700 "${dir}", ` +
        'or choose another --socket',
    });
  }
}

/** Why `dir` is not private to this uid, or undefined when it is. */
export function privateDirectoryProblem(dir: string): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (e) {
    return `cannot be inspected (${(e as NodeJS.ErrnoException).code})`;
  }
  if (!st.isDirectory()) return 'is not a directory (a symbolic link is refused too)';
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `belongs to uid ${st.uid}, not to you (uid ${uid})`;
  if ((st.mode & 0o077) !== 0) return `has mode ${(st.mode & 0o777).toString(8)}; group and others must have no access`;
  return undefined;
}

/** Why the socket file is no longer the agent's own private socket, or undefined. */
export function socketProblem(socketPath: string, ino: number): string | undefined {
  const dirWhy = privateDirectoryProblem(dirname(socketPath));
  if (dirWhy) return `its directory ${dirWhy}`;
  try {
    const st = lstatSync(socketPath);
    if (!st.isSocket() || st.ino !== ino) return 'the socket file was replaced';
    if ((st.mode & 0o077) !== 0) return `the socket has mode ${(st.mode & 0o777).toString(8)}`;
  } catch (e) {
    return `the socket file is gone (${(e as NodeJS.ErrnoException).code})`;
  }
  return undefined;
}
