/**
 * Serving on a Unix socket the way every Portcullis daemon must (docs/architecture.md,
 * "Identity and sockets"): the socket file is mode 0660 (or 0600) from the moment it exists, a stale socket
 * left by a crashed daemon is replaced, and a live one, or a path that is not a socket, is never touched.
 */
import { createConnection, type Server } from 'node:net';
import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PcxCode } from './codes.js';
import { PcxError } from './errors.js';

export interface ListenUnixOptions {
  /**
   * The socket file's mode: 0o660 (default) for daemons shared by a pod's containers, or 0o600
   * for a per-user socket (the vault agent), which then no group member can connect to either.
   */
  mode?: 0o660 | 0o600;
  /** The caller's codes for each failure, whole (e.g. PCX_PDP_SOCKET_PATH), so that a grep finds them. */
  codes: {
    /** The path cannot be used: not a socket, or it cannot be inspected, created, probed or removed. */
    path: PcxCode;
    /** A live process is serving the path. */
    inUse: PcxCode;
    /** listen() itself failed. */
    listen: PcxCode;
  };
}

/** Listen on `path`; resolves with the socket file's inode (so a daemon removes only its own file on exit). */
export async function listenUnixSocket(
  server: Server,
  path: string,
  options: ListenUnixOptions,
): Promise<{ ino: number }> {
  const { codes } = options;
  const mode = options.mode ?? 0o660;
  await prepareSocketPath(path, codes);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new PcxError(codes.listen, `cannot listen on ${path}: ${e.code ?? e.message}`, {
          hint: 'check that the directory exists and is writable',
        }),
      ),
    );
    // The socket must never be connectable by others, not even for the moment between bind
    // and chmod: bind happens synchronously inside listen(), so a umask around it covers it.
    let old: number | undefined;
    try {
      old = process.umask(0o777 & ~mode);
    } catch {
      // Worker threads cannot change the umask; the chmod below still applies.
    }
    try {
      server.listen(path, () => resolve());
    } finally {
      if (old !== undefined) process.umask(old);
    }
  });
  await chmod(path, mode);
  return { ino: (await stat(path)).ino };
}

async function prepareSocketPath(path: string, codes: ListenUnixOptions['codes']): Promise<void> {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new PcxError(codes.path, `cannot inspect ${path}: ${e.code ?? e.message}`);
  });
  if (!st) {
    await mkdir(dirname(path), { recursive: true, mode: 0o750 }).catch((e: NodeJS.ErrnoException) => {
      throw new PcxError(codes.path, `cannot create the socket directory ${dirname(path)}: ${e.code ?? e.message}`, {
        hint: 'create it with the right owner, or choose another --socket',
      });
    });
    return;
  }
  if (!st.isSocket()) {
    throw new PcxError(codes.path, `${path} exists and is not a socket; refusing to replace it`, {
      hint: 'remove it, or choose another --socket',
    });
  }
  const alive = await new Promise<boolean>((resolve, reject) => {
    const probe = createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(new PcxError(codes.path, `cannot probe ${path}: ${e.code ?? e.message}`));
    });
  });
  if (alive) {
    throw new PcxError(codes.inUse, `another process is serving ${path}`, {
      hint: 'stop it first, or choose another --socket',
    });
  }
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw new PcxError(codes.path, `cannot remove the stale socket ${path}: ${e.code}`);
  });
}
