/**
 * A pooled, pipelining NDJSON RPC client over a Unix socket: the transport under the PDP client
 * and the audit client. Each call sends one frame `{"id": n, ...body}` and resolves with the
 * response frame that echoes `n`; responses may arrive in any order.
 *
 * Failure is data: every way a call can fail rejects with a PcxError whose code says which
 * (PCX_RPC_UNAVAILABLE, PCX_RPC_TIMEOUT, PCX_RPC_CLOSED, PCX_RPC_BAD_FRAME, PCX_RPC_OVERLOADED),
 * so that a caller that must fail closed can say "this was a failure, not a policy decision".
 * Nothing here retries a call: a retry could duplicate a non-idempotent write (an audit record);
 * callers decide. Connections are re-established lazily by the next call after a failure.
 */
import { createConnection, type Socket } from 'node:net';
import { PcxError } from './errors.js';
import { LineDecoder, MAX_FRAME_BYTES } from './framing.js';

export interface RpcClientOptions {
  /** Path of the Unix socket. */
  socketPath: string;
  /** Persistent connections to spread calls over (round-robin). Default 1. */
  connections?: number;
  /** Default per-call deadline in milliseconds. Default 250. */
  timeoutMs?: number;
  /** Calls allowed in flight per connection before new calls are refused. Default 65536. */
  maxInFlight?: number;
  /** A name for messages ("PDP", "audit sink"). */
  peerName?: string;
}

export type ResponseFrame = Record<string, unknown> & { id: number };

interface Pending {
  resolve: (frame: ResponseFrame) => void;
  reject: (e: PcxError) => void;
  timer: NodeJS.Timeout;
}

class Connection {
  private socket: Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: string[] = [];
  private flushScheduled = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const socket = this.socket;
    if (!socket || this.outbox.length === 0) return;
    const data = this.outbox.length === 1 ? this.outbox[0]! : this.outbox.join('');
    this.outbox = [];
    socket.write(data);
  };

  constructor(private readonly options: Required<RpcClientOptions>) {}

  get inFlight(): number {
    return this.pending.size;
  }

  call(body: Record<string, unknown>, timeoutMs: number): Promise<ResponseFrame> {
    if (this.pending.size >= this.options.maxInFlight) {
      return Promise.reject(
        new PcxError('PCX_RPC_OVERLOADED', `${this.options.peerName}: too many calls in flight (${this.pending.size})`),
      );
    }
    const id = this.nextId;
    // Ids stay safe integers (the peer refuses any other number); wrapping after 2^53 calls
    // cannot collide with a call still in flight.
    this.nextId = id === Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    // Spread into a fresh object so that a caller's `id` field can never shadow ours.
    const line = JSON.stringify({ ...body, id }) + '\n';
    // The limit is in bytes, as the peer counts it: a line of 600k "é" is 600k UTF-16 units but
    // 1.2 MB, and the peer would close the connection, failing every call pipelined with it.
    // (UTF-8 takes at most 3 bytes per UTF-16 unit, so short lines skip the count.)
    if (line.length > MAX_FRAME_BYTES / 3) {
      const bytes = Buffer.byteLength(line);
      if (bytes > MAX_FRAME_BYTES) {
        return Promise.reject(
          new PcxError(
            'PCX_RPC_FRAME_TOO_LARGE',
            `${this.options.peerName}: request frame is ${bytes} bytes; the limit is ${MAX_FRAME_BYTES}`,
          ),
        );
      }
    }
    if (!this.socket) this.open();
    return new Promise<ResponseFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(new PcxError('PCX_RPC_TIMEOUT', `${this.options.peerName} did not answer within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.outbox.push(line);
      // Batch the frames written in one tick into one write: pipelined callers then cost one
      // syscall per batch instead of one per call.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(this.flush);
      }
    });
  }

  close(): void {
    this.failAll(new PcxError('PCX_RPC_CLOSED', `${this.options.peerName} client closed`));
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): Socket {
    const socket = createConnection({ path: this.options.socketPath });
    this.socket = socket;
    socket.setNoDelay?.(true);
    const decoder = new LineDecoder(
      (line) => this.onLine(socket, line),
      () =>
        this.drop(
          socket,
          new PcxError('PCX_RPC_BAD_FRAME', `${this.options.peerName} sent a frame over ${MAX_FRAME_BYTES} bytes`),
        ),
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES'
          ? 'PCX_RPC_UNAVAILABLE'
          : 'PCX_RPC_CLOSED';
      this.drop(
        socket,
        new PcxError(
          code,
          `${this.options.peerName} unavailable at ${this.options.socketPath}: ${e.code ?? e.message}`,
        ),
      );
    });
    socket.on('close', () =>
      this.drop(socket, new PcxError('PCX_RPC_CLOSED', `${this.options.peerName} closed the connection`)),
    );
    return socket;
  }

  private onLine(socket: Socket, line: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(line);
    } catch {
      this.drop(socket, new PcxError('PCX_RPC_BAD_FRAME', `${this.options.peerName} sent a frame that is not JSON`));
      return;
    }
    const id = (frame as { id?: unknown } | null)?.id;
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || !Number.isSafeInteger(id)) {
      this.drop(
        socket,
        new PcxError('PCX_RPC_BAD_FRAME', `${this.options.peerName} sent a frame without a safe-integer id`),
      );
      return;
    }
    const p = this.pending.get(id as number);
    // An unknown id is the late answer to a call that already timed out: nothing waits for it.
    if (!p) return;
    this.pending.delete(id as number);
    clearTimeout(p.timer);
    p.resolve(frame as ResponseFrame);
  }

  /** Forget a broken socket and fail everything in flight on it; the next call reconnects. */
  private drop(socket: Socket, error: PcxError): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.outbox = [];
    socket.destroy();
    this.failAll(error);
  }

  private failAll(error: PcxError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
  }
}

export class RpcClient {
  private readonly options: Required<RpcClientOptions>;
  private readonly pool: Connection[];
  private next = 0;
  private closed = false;

  constructor(options: RpcClientOptions) {
    this.options = {
      socketPath: options.socketPath,
      connections: Math.max(1, options.connections ?? 1),
      timeoutMs: options.timeoutMs ?? 250,
      maxInFlight: options.maxInFlight ?? 65536,
      peerName: options.peerName ?? 'peer',
    };
    this.pool = Array.from({ length: this.options.connections }, () => new Connection(this.options));
  }

  /** Send `body` (without an id) and wait for the frame that answers it. */
  call(body: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<ResponseFrame> {
    if (this.closed) return Promise.reject(new PcxError('PCX_RPC_CLOSED', `${this.options.peerName} client closed`));
    const conn = this.pool[this.next]!;
    this.next = (this.next + 1) % this.pool.length;
    return conn.call(body, options.timeoutMs ?? this.options.timeoutMs);
  }

  get inFlight(): number {
    let n = 0;
    for (const c of this.pool) n += c.inFlight;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const c of this.pool) c.close();
  }
}
