/**
 * The sink daemon's socket side: NDJSON over a Unix socket (mode 0660).
 *   → {"id":n,"record":{…}}      ← {"id":n,"ack":{"seq":N,"hash":"…"}} | {"id":n,"error":{code,message}}
 *   → {"id":n,"health":true}     ← {"id":n,"health":{"size":N,"writable":bool,"mode":"default"|"durable"}}
 * A frame that is not JSON, has no numeric id or is over 1 MiB gets an error and the connection
 * is closed; an invalid record only gets an error. No input can stop the daemon.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  LineDecoder,
  MAX_FRAME_BYTES,
  encodeFrame,
  isPcxError,
  listenUnixSocket,
  prepareAuditRecord,
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

function errorFrame(id: unknown, code: PcxCode, message: string): string {
  return encodeFrame({ id: typeof id === 'number' ? id : null, error: { code, message } });
}

export async function serveSink(options: SinkServerOptions): Promise<SinkServer> {
  const { socketPath, log } = options;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // Answers produced together (a write batch acks many records at once) leave in one
    // socket write instead of one syscall each.
    let outbox: string[] = [];
    const flush = (): void => {
      const data = outbox.length === 1 ? outbox[0]! : outbox.join('');
      outbox = [];
      if (!socket.destroyed) socket.write(data);
    };
    const send = (frame: string): void => {
      if (outbox.push(frame) === 1) queueMicrotask(flush);
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
        if (typeof f !== 'object' || f === null || Array.isArray(f) || typeof f.id !== 'number') {
          return fatal(errorFrame(null, 'PCX_AUDIT_BAD_FRAME', 'frame has no numeric "id"; closing the connection'));
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
        log.enqueue(
          input,
          // Hand-built (hot path): id is a number from JSON.parse, seq an integer, hash hex.
          (ack) => send(`{"id":${id},"ack":{"seq":${ack.seq},"hash":"${ack.hash}"}}\n`),
          (e) => send(errorFrame(id, e.code, e.message)),
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
