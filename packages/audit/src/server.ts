/**
 * The sink daemon's socket side: NDJSON over a Unix socket (mode 0660).
 *   → {"id":n,"record":{…}}      ← {"id":n,"ack":{"seq":N,"hash":"…"}} | {"id":n,"error":{code,message}}
 *   → {"id":n,"health":true}     ← {"id":n,"health":{"size":N,"writable":bool,"mode":"default"|"durable"}}
 * A frame that is not JSON, has no valid id (a safe integer or a string of at most 256
 * characters) or is over 1 MiB gets an error and the connection is closed; an invalid record only
 * gets an error. A client that does not read its acks, or has 1024 records awaiting theirs, is
 * not read from until it catches up (as the PDP does). No input can stop the daemon.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  LineDecoder,
  MAX_FRAME_BYTES,
  MAX_ID_CHARS,
  encodeFrame,
  encodeFrameId,
  isFrameId,
  isPcxError,
  listenUnixSocket,
  prepareAuditRecord,
  type FrameId,
  type AuditRecordInput,
  type PcxCode,
} from '@portcullis/protocol';
import type { AuditLog } from './log.js';

export interface SinkServerOptions {
  socketPath: string;
  log: AuditLog;
}

export interface SinkServer {
  close(): Promise<void>;
}

/**
 * Records enqueued on one connection and not yet acked before the sink stops reading from it:
 * a client pipelining without end cannot queue unbounded work (the log's own queue is shared by
 * every connection, so one client must not fill it for the others).
 */
const MAX_PENDING_PER_CONNECTION = 1024;

function errorFrame(id: FrameId | null, code: PcxCode, message: string): string {
  return encodeFrame({ id, error: { code, message } });
}

export async function serveSink(options: SinkServerOptions): Promise<SinkServer> {
  const { socketPath, log } = options;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // Reading stops while the client does not read its acks (the socket's write buffer is full)
    // or has too many records awaiting their ack, and resumes once neither holds: what the sink
    // buffers for one connection stays bounded by one read chunk plus its answers.
    let writeBlocked = false;
    let pending = 0;
    let heldForPending = false;
    const resumeIfFree = (): void => {
      if (!writeBlocked && !heldForPending && !socket.destroyed) socket.resume();
    };
    // Answers produced together (a write batch acks many records at once) leave in one
    // socket write instead of one syscall each.
    let outbox: string[] = [];
    const flush = (): void => {
      const data = outbox.length === 1 ? outbox[0]! : outbox.join('');
      outbox = [];
      if (socket.destroyed) return;
      if (!socket.write(data) && !writeBlocked) {
        writeBlocked = true;
        socket.pause();
        socket.once('drain', () => {
          writeBlocked = false;
          resumeIfFree();
        });
      }
    };
    const send = (frame: string): void => {
      if (outbox.push(frame) === 1) queueMicrotask(flush);
    };
    const settled = (): void => {
      pending--;
      if (heldForPending && pending <= MAX_PENDING_PER_CONNECTION / 2) {
        heldForPending = false;
        resumeIfFree();
      }
    };
    const fatal = (frame: string): void => {
      decoder.stop();
      if (outbox.length > 0) flush();
      socket.end(frame);
    };
    const decoder = new LineDecoder(
      (line) => {
        let frame: unknown;
        try {
          frame = JSON.parse(line);
        } catch {
          return fatal(errorFrame(null, 'PCX_AUDIT_BAD_FRAME', 'frame is not JSON; closing the connection'));
        }
        const f = frame as { id?: unknown; record?: unknown; health?: unknown };
        if (typeof f !== 'object' || f === null || Array.isArray(f) || !isFrameId(f.id)) {
          return fatal(
            errorFrame(
              null,
              'PCX_AUDIT_BAD_FRAME',
              `frame has no valid "id" (a safe integer, or a string of at most ${MAX_ID_CHARS} characters); ` +
                'closing the connection',
            ),
          );
        }
        const id = f.id;
        if (f.health === true) {
          const s = log.state;
          return send(
            encodeFrame({
              id,
              health: { size: s.size, writable: s.writable, mode: s.durable ? 'durable' : 'default' },
            }),
          );
        }
        if (f.record === undefined)
          return send(errorFrame(id, 'PCX_AUDIT_BAD_FRAME', 'frame has neither "record" nor "health"'));
        let input: AuditRecordInput;
        try {
          input = prepareAuditRecord(f.record);
        } catch (e) {
          return send(errorFrame(id, isPcxError(e) ? e.code : 'PCX_AUDIT_INVALID_RECORD', (e as Error).message));
        }
        if (++pending >= MAX_PENDING_PER_CONNECTION && !heldForPending) {
          heldForPending = true;
          socket.pause();
        }
        // Hand-built (hot path): the id is valid (its JSON from encodeFrameId), seq an integer, hash hex.
        const head = '{"id":' + encodeFrameId(id) + ',"ack":{"seq":';
        log.enqueue(
          input,
          (ack) => {
            settled();
            send(`${head}${ack.seq},"hash":"${ack.hash}"}}\n`);
          },
          (e) => {
            settled();
            send(errorFrame(id, e.code, e.message));
          },
        );
      },
      () =>
        fatal(
          errorFrame(
            null,
            'PCX_AUDIT_FRAME_TOO_LARGE',
            `frame is over ${MAX_FRAME_BYTES} bytes; closing the connection`,
          ),
        ),
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await listenUnixSocket(server, socketPath, {
    codes: { path: 'PCX_AUDIT_SOCKET_PATH', inUse: 'PCX_AUDIT_SOCKET_IN_USE', listen: 'PCX_AUDIT_LISTEN' },
  });
  server.on('error', () => {});
  return {
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.end();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 500).unref();
      });
    },
  };
}
