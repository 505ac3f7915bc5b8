/**
 * The vault agent (`portcullis vault agent`): holds unlocked KEKs in memory, per workspace, for
 * the desktop profile — like ssh-agent, the keys stay in the agent and clients ask it to wrap
 * and unwrap data keys.
 *
 * Promises:
 * - only the owner's uid can connect (agent-socket.ts: a 0600 socket in a 0700 directory,
 *   re-checked on every connection);
 * - each workspace is unlocked on its own: an entry is keyed by workspace and vault id, and the
 *   associated data of every wrap is built here from the entry's own binding, so a KEK unlocked
 *   for one workspace never opens another's keys (not even when two share a key file);
 * - a workspace locks after `idleTimeoutMs` without use, on `lock`, and when the agent stops;
 *   locking zeroes the KEK (sodium_memzero) or closes its token session;
 * - bad input (not JSON, no id, oversized, unknown requests) gets an error frame and, for framing
 *   errors, the connection is closed; the agent itself never dies from input.
 *
 * Wire: NDJSON, one request per line, answers carry the request's id:
 *   → {"id":1,"unlock":{"workspace":"w","vault":"/abs/w.vault","passphrase":"<base64>"}}
 *   ← {"id":1,"unlocked":{"workspace":"w","kek_version":1}}
 *   → {"id":2,"unwrap":{"workspace":"w","vault_id":"…","kek_version":1,
 *       "subject":{"name":"n","version":1},"wrapped":"<b64>"}}
 *   ← {"id":2,"key":"<base64>"}
 *   ← {"id":3,"error":{"code":"PCX_VAULT_LOCKED","message":"…"}}
 */
import { createServer, type Server, type Socket } from 'node:net';
import { unlinkSync, lstatSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import {
  createLogger,
  LineDecoder,
  encodeFrame,
  isPcxError,
  listenUnixSocket,
  type Logger,
} from '@portcullis/protocol';
import { fromBase64, toBase64, wipe } from './crypto.js';
import { vaultError } from './errors.js';
import type { Kek, WrapSubject } from './kek.js';
import { checkSecretName, checkWorkspace } from './names.js';
import { defaultAgentSocket, preparePrivateDirectory, socketProblem } from './agent-socket.js';
import { type Credentials, providerFor } from './providers.js';
import { openVault } from './store.js';

export interface VaultAgentOptions {
  /** The socket (default: defaultAgentSocket()). Its directory is created 0700 if missing. */
  socketPath?: string;
  /** Lock a workspace after this long without a wrap or unwrap, in milliseconds. Default 900000 (15 min). */
  idleTimeoutMs?: number;
  /** Where the agent logs (default: protocol's JSON lines on stderr, `"daemon": "vault-agent"`). */
  log?: Logger;
}

export interface VaultAgentHandle {
  socketPath: string;
  /** Workspaces unlocked now. */
  unlocked(): string[];
  /** Lock everything, stop listening, remove the socket. Idempotent. */
  close(): Promise<void>;
}

/** Requests are small (a wrapped key, a passphrase); anything bigger is hostile. */
const MAX_AGENT_FRAME = 64 * 1024;

interface Entry {
  workspace: string;
  vault: string;
  vaultId: string;
  kek: Kek;
  unlockedAt: number;
  lastUsed: number;
  timer: NodeJS.Timeout;
}

export async function startVaultAgent(options: VaultAgentOptions = {}): Promise<VaultAgentHandle> {
  const socketPath = options.socketPath ?? defaultAgentSocket();
  const idleMs = options.idleTimeoutMs ?? 900_000;
  const log = options.log ?? createLogger({ daemon: 'vault-agent' });
  preparePrivateDirectory(socketPath);
  const entries = new Map<string, Entry>();
  const sockets = new Set<Socket>();
  let ino = -1;

  const lock = (workspace: string, why: string): boolean => {
    const e = entries.get(workspace);
    if (!e) return false;
    entries.delete(workspace);
    clearTimeout(e.timer);
    e.kek.destroy();
    log('info', `locked workspace "${workspace}" (${why})`, { workspace });
    return true;
  };

  const touch = (e: Entry) => {
    e.lastUsed = Date.now();
    e.timer.refresh();
  };

  const entryFor = (req: Record<string, unknown>): Entry => {
    const workspace = checkWorkspace(str(req.workspace, 'workspace'));
    const e = entries.get(workspace);
    if (!e || e.vaultId !== req.vault_id) {
      throw vaultError('PCX_VAULT_LOCKED', `workspace "${workspace}" is locked`, {
        hint: `portcullis vault unlock --workspace ${workspace}`,
      });
    }
    if (e.kek.binding.kekVersion !== req.kek_version) {
      throw vaultError(
        'PCX_VAULT_LOCKED',
        `the agent holds KEK version ${e.kek.binding.kekVersion} of workspace "${workspace}", ` +
          `not ${String(req.kek_version)}`,
        { hint: `the KEK was rotated: portcullis vault unlock --workspace ${workspace}` },
      );
    }
    touch(e);
    return e;
  };

  async function handle(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (frame.health === true) return { health: { status: 'ok', unlocked: entries.size } };
    if (frame.status === true) {
      const now = Date.now();
      return {
        status: {
          idle_timeout_ms: idleMs,
          workspaces: [...entries.values()].map((e) => ({
            workspace: e.workspace,
            vault: e.vault,
            kek_version: e.kek.binding.kekVersion,
            unlocked_at: new Date(e.unlockedAt).toISOString(),
            locks_in_ms: Math.max(0, e.lastUsed + idleMs - now),
          })),
        },
      };
    }
    if (isObject(frame.unlock)) return { unlocked: await unlock(frame.unlock) };
    if (isObject(frame.lock)) {
      const l = frame.lock;
      const names = l.all === true ? [...entries.keys()] : [checkWorkspace(str(l.workspace, 'workspace'))];
      return { locked: names.filter((w) => lock(w, 'asked')) };
    }
    if (isObject(frame.unwrap)) {
      const u = frame.unwrap;
      const e = entryFor(u);
      const key = await e.kek.unwrap(b64(u.wrapped, 'wrapped'), subject(u.subject));
      if (!key) {
        throw vaultError(
          'PCX_VAULT_DECRYPT_FAILED',
          `a wrapped key of workspace "${e.workspace}" failed authentication`,
        );
      }
      try {
        return { key: toBase64(key) };
      } finally {
        wipe(key);
      }
    }
    if (isObject(frame.wrap)) {
      const w = frame.wrap;
      const e = entryFor(w);
      const key = b64(w.key, 'key');
      try {
        return { wrapped: toBase64(await e.kek.wrap(key, subject(w.subject))) };
      } finally {
        wipe(key);
      }
    }
    throw vaultError(
      'PCX_VAULT_AGENT_BAD_FRAME',
      'unknown request (expected unlock, lock, status, wrap, unwrap or health)',
    );
  }

  async function unlock(u: Record<string, unknown>): Promise<Record<string, unknown>> {
    const workspace = checkWorkspace(str(u.workspace, 'workspace'));
    const file = str(u.vault, 'vault');
    if (!isAbsolute(file)) throw vaultError('PCX_VAULT_AGENT_BAD_FRAME', '"vault" must be an absolute path');
    const credentials: Credentials = {};
    if (u.passphrase !== undefined) credentials.passphrase = b64(u.passphrase, 'passphrase');
    if (u.pin !== undefined) credentials.pin = b64(u.pin, 'pin');
    if (u.key_file !== undefined) credentials.keyFile = str(u.key_file, 'key_file');
    if (u.pkcs11_module !== undefined) credentials.pkcs11Module = str(u.pkcs11_module, 'pkcs11_module');
    const vault = await openVault({ file, workspace, readonly: true });
    try {
      const provider = providerFor(vault.activeKek().params, credentials, workspace);
      try {
        const kek = await vault.unlock(provider);
        lock(workspace, 'unlocked again');
        const timer = setTimeout(() => lock(workspace, `idle for ${Math.round(idleMs / 1000)} s`), idleMs);
        timer.unref();
        entries.set(workspace, {
          workspace,
          vault: file,
          vaultId: vault.vaultId,
          kek,
          unlockedAt: Date.now(),
          lastUsed: Date.now(),
          timer,
        });
        log('info', `unlocked workspace "${workspace}" (KEK version ${kek.binding.kekVersion})`, {
          workspace,
          kek_version: kek.binding.kekVersion,
        });
        return { workspace, kek_version: kek.binding.kekVersion, idle_timeout_ms: idleMs };
      } finally {
        provider.dispose();
      }
    } finally {
      wipe(credentials.passphrase, credentials.pin);
      vault.close();
    }
  }

  const server: Server = createServer((socket) => {
    // The peer check Node allows (see agent-socket.ts): the socket must still be private.
    const problem = socketProblem(socketPath, ino);
    if (problem) {
      log('warn', `refused a connection: ${problem}; locking everything`);
      for (const w of [...entries.keys()]) lock(w, 'socket no longer private');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const reply = (frame: Record<string, unknown>) => {
      if (!socket.destroyed) socket.write(encodeFrame(frame));
    };
    const decoder = new LineDecoder(
      (line) => {
        let frame: unknown;
        try {
          frame = JSON.parse(line);
        } catch {
          reply({ id: null, error: { code: 'PCX_VAULT_AGENT_BAD_FRAME', message: 'the frame is not JSON' } });
          socket.end();
          return;
        }
        const id = isObject(frame) ? frame.id : undefined;
        if (!isObject(frame) || !Number.isSafeInteger(id)) {
          reply({ id: null, error: { code: 'PCX_VAULT_AGENT_BAD_FRAME', message: 'the frame has no integer "id"' } });
          socket.end();
          return;
        }
        handle(frame).then(
          (answer) => reply({ id, ...answer }),
          (e) =>
            reply({
              id,
              error: isPcxError(e)
                ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) }
                : { code: 'PCX_VAULT_AGENT_BAD_FRAME', message: 'the request could not be carried out' },
            }),
        );
      },
      () => {
        reply({
          id: null,
          error: { code: 'PCX_VAULT_AGENT_FRAME_TOO_LARGE', message: `a frame is over ${MAX_AGENT_FRAME} bytes` },
        });
        socket.end();
      },
      { maxFrameBytes: MAX_AGENT_FRAME },
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });

  ({ ino } = await listenUnixSocket(server, socketPath, {
    mode: 0o600,
    codes: { path: 'PCX_VAULT_AGENT_SOCKET', inUse: 'PCX_VAULT_AGENT_SOCKET_IN_USE', listen: 'PCX_VAULT_AGENT_LISTEN' },
  }));
  log('info', `listening on ${socketPath}`, { socket: socketPath });

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    unlocked: () => [...entries.keys()],
    close() {
      closing ??= (async () => {
        for (const w of [...entries.keys()]) lock(w, 'agent stopping');
        const stopped = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) s.end();
        const cut = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1000);
        await stopped;
        clearTimeout(cut);
        try {
          if (lstatSync(socketPath).ino === ino) unlinkSync(socketPath);
        } catch {
          // already gone
        }
      })();
      return closing;
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096)
    throw vaultError('PCX_VAULT_AGENT_BAD_FRAME', `"${field}" must be a non-empty string`);
  return v;
}

function b64(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
    throw vaultError('PCX_VAULT_AGENT_BAD_FRAME', `"${field}" must be base64`);
  return fromBase64(v);
}

function subject(v: unknown): WrapSubject {
  if (v === 'fingerprint-key' || v === 'kek-check') return v;
  if (isObject(v) && typeof v.name === 'string' && Number.isSafeInteger(v.version) && (v.version as number) > 0)
    return { name: checkSecretName(v.name), version: v.version as number };
  throw vaultError('PCX_VAULT_AGENT_BAD_FRAME', '"subject" must be {name, version}, "fingerprint-key" or "kek-check"');
}
