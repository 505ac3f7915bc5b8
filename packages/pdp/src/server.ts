/**
 * The PDP's socket server: NDJSON frames over a Unix socket (packages/pdp/README.md, "Wire protocol").
 *
 * Hot path, per request frame: JSON.parse, the engine's decision (a decision-tree walk), one
 * JSON.stringify of the decision spliced after the id, appended to the connection's outbox. The
 * outbox is written once per tick (all answers to one read chunk of pipelined frames go out in
 * one write), and a client that stops reading pauses our reading of it (backpressure), so a
 * hostile client cannot make us buffer unboundedly.
 *
 * Protocol errors (bad JSON, not an object, no id, a frame over 1 MiB) get an error frame with
 * the id when known (else null) and the connection is closed; the daemon never dies from input.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { stat, unlink } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { trace, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import {
  LineDecoder,
  MAX_FRAME_BYTES,
  MAX_ID_CHARS,
  encodeFrameId,
  isFrameId,
  listenUnixSocket,
  type Decision,
  type Logger,
  type PcxCode,
} from '@portcullis/protocol';
import { AnswerEncoder } from './answer.js';
import type { Engine } from './engine.js';
import type { PdpMetrics } from './metrics.js';

/** The PDP logs through protocol's one logger (JSON lines). */
export type Log = Logger;

export interface ServerOptions {
  socketPath: string;
  engine: Engine;
  metrics: PdpMetrics;
  log: Log;
  maxConnections?: number;
}

export interface DrainOptions {
  /** Give up waiting for in-flight requests after this long, then close. Default 5000 ms. */
  drainTimeoutMs?: number;
  /** A connection with nothing in flight and no new frame for this long is closed. Default 100 ms. */
  idleMs?: number;
}

/**
 * Requests awaiting asynchronous work (a first lease verification) per connection before we stop
 * reading from it: a client pipelining fresh tokens cannot queue unbounded work.
 */
const MAX_PENDING_PER_CONNECTION = 1024;

export class PdpServer {
  private readonly server: Server;
  private readonly conns = new Set<Connection>();
  private socketIno = 0;
  private closing: Promise<void> | undefined;
  readonly tracer: Tracer = trace.getTracer('portcullis-pdp');
  /** Encodes every answer of this server (it remembers the last policy version's JSON). */
  readonly answers = new AnswerEncoder();

  private constructor(readonly options: ServerOptions) {
    // allowHalfOpen: a client may send its frames and shut down its side; it still gets every
    // answer (we end our side once nothing is in flight).
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.maxConnections = options.maxConnections ?? 4096;
  }

  static async listen(options: ServerOptions): Promise<PdpServer> {
    const s = new PdpServer(options);
    await s.bind();
    return s;
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private async bind(): Promise<void> {
    const listening = await listenUnixSocket(this.server, this.options.socketPath, {
      codes: { path: 'PCX_PDP_SOCKET_PATH', inUse: 'PCX_PDP_SOCKET_IN_USE', listen: 'PCX_PDP_LISTEN' },
    });
    this.socketIno = listening.ino;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this);
    this.conns.add(conn);
    this.options.metrics.connections++;
    socket.once('close', () => {
      this.conns.delete(conn);
      this.options.metrics.connections--;
      conn.dispose();
    });
  }

  /**
   * Stop accepting, answer everything already received, then close: SIGTERM's drain. Idle
   * connections are closed once quiet for `idleMs`; anything left at the deadline is cut.
   */
  close(options: DrainOptions = {}): Promise<void> {
    this.closing ??= this.drain(options.drainTimeoutMs ?? 5000, options.idleMs ?? 100);
    return this.closing;
  }

  private async drain(timeoutMs: number, idleMs: number): Promise<void> {
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    await this.unlinkOwnSocket();
    const all = [...this.conns].map((c) => c.drain(idleMs));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const r = await Promise.race([Promise.all(all).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.options.log(
        'warn',
        `drain: ${this.conns.size} connection(s) still busy after ${timeoutMs} ms; closing them`,
      );
      for (const c of this.conns) c.destroy();
    }
    await stopped;
  }

  /** Remove the socket file only if it is still ours: a successor may already have bound the path. */
  private async unlinkOwnSocket(): Promise<void> {
    const st = await stat(this.options.socketPath).catch(() => undefined);
    if (st && st.ino === this.socketIno) await unlink(this.options.socketPath).catch(() => {});
  }

  /** Called by connections: the engine and counters, for the hot path. */
  decide(request: unknown): Decision | Promise<Decision> {
    return this.options.engine.decide(request);
  }
}

class Connection {
  private readonly decoder: LineDecoder;
  private outbox: string[] = [];
  private flushScheduled = false;
  private pending = 0;
  private heldForPending = false;
  private chunkStart = 0;
  private syncAnswered = 0;
  private ending = false;
  private draining = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleMs = 0;
  private drained: (() => void) | undefined;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.outbox.length === 0) return;
    if (!this.socket.writable) {
      this.outbox = []; // the connection is gone or closing: nobody to answer
      return;
    }
    const data = this.outbox.length === 1 ? this.outbox[0]! : this.outbox.join('');
    this.outbox = [];
    if (!this.socket.write(data, this.written) && !this.ending) {
      // The client is not reading its answers: stop reading its requests until it does.
      this.socket.pause();
      this.socket.once('drain', () => {
        if (!this.heldForPending) this.socket.resume();
        if (this.draining) this.checkQuiet();
      });
    }
    if (this.draining) this.checkQuiet();
  };
  /** A write reached the kernel: while draining, that may make the connection quiet. */
  private readonly written = (): void => {
    if (this.draining) this.checkQuiet();
  };

  constructor(
    private readonly socket: Socket,
    private readonly server: PdpServer,
  ) {
    this.decoder = new LineDecoder(
      (line) => this.onLine(line),
      () =>
        this.fatal(null, 'PCX_PDP_FRAME_TOO_LARGE', `frame exceeds ${MAX_FRAME_BYTES} bytes; the connection is closed`),
    );
    socket.on('data', (chunk: Buffer) => {
      // Latency is timed per chunk, not per request (a clock read costs as much as a tenth of a
      // decision): each request answered synchronously from this chunk is observed as the time
      // from the chunk's arrival to the end of its processing, queueing behind its neighbours included.
      this.chunkStart = performance.now();
      this.syncAnswered = 0;
      this.decoder.push(chunk);
      if (this.syncAnswered > 0)
        this.server.options.metrics.observeLatency((performance.now() - this.chunkStart) / 1000, this.syncAnswered);
      if (this.draining) this.checkQuiet();
    });
    // A client that vanishes mid-frame or mid-answer is its own problem, never ours.
    socket.on('error', () => {});
    socket.on('end', () => {
      // The client half-closed: answer what is in flight, then close our side.
      this.ending = true;
      this.decoder.stop();
      this.endWhenIdle();
    });
  }

  private onLine(line: string): void {
    const t0 = this.chunkStart;
    let frame: unknown;
    try {
      frame = JSON.parse(line);
    } catch {
      this.fatal(null, 'PCX_PDP_BAD_FRAME', 'frame is not valid JSON; send one JSON object per line');
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.fatal(null, 'PCX_PDP_BAD_FRAME', 'frame must be a JSON object with an "id"');
      return;
    }
    const f = frame as { id?: unknown; request?: unknown; health?: unknown };
    const id = f.id;
    if (!isFrameId(id)) {
      this.fatal(
        null,
        'PCX_PDP_BAD_FRAME',
        `frame has no valid "id" (a safe integer, or a string of at most ${MAX_ID_CHARS} characters)`,
      );
      return;
    }
    const head = '{"id":' + encodeFrameId(id) + ',';
    if (f.request !== undefined) {
      const span = this.server.tracer.startSpan('pdp.decide');
      let d: Decision | Promise<Decision>;
      try {
        d = this.server.decide(f.request);
      } catch (e) {
        // The evaluator is total by contract; should that ever break, deny this one request
        // rather than let an exception in a socket handler take the daemon down.
        d = internalError(e, this.server.options.log);
      }
      if (d instanceof Promise) {
        const metrics = this.server.options.metrics;
        metrics.inFlight++;
        if (++this.pending === MAX_PENDING_PER_CONNECTION) {
          this.heldForPending = true;
          this.socket.pause();
        }
        d.then(
          (decision) => this.answer(head, decision, t0, span, f.request),
          (e: unknown) => this.answer(head, internalError(e, this.server.options.log), t0, span, f.request),
        ).finally(() => {
          metrics.inFlight--;
          this.pending--;
          if (this.heldForPending && this.pending <= MAX_PENDING_PER_CONNECTION / 2) {
            this.heldForPending = false;
            if (!this.socket.writableNeedDrain) this.socket.resume(); // else the 'drain' handler resumes
          }
          if (this.ending) this.endWhenIdle();
          else if (this.draining) this.checkQuiet();
        });
      } else {
        this.answer(head, d, -1, span, f.request);
        this.syncAnswered++;
      }
    } else if (f.health === true) {
      this.send(head + '"health":' + JSON.stringify(this.server.options.engine.health()) + '}\n');
    } else {
      this.server.options.metrics.countError('PCX_PDP_BAD_FRAME');
      this.send(
        head +
          '"error":{"code":"PCX_PDP_BAD_FRAME","message":"frame has neither \\"request\\" nor \\"health\\": true"}}\n',
      );
    }
  }

  /** `t0` is when the request's chunk arrived, for asynchronous answers; -1 for synchronous ones (timed per chunk). */
  private answer(head: string, d: Decision, t0: number, span: ReturnType<Tracer['startSpan']>, request: unknown): void {
    this.send(this.server.answers.encode(head, d));
    const m = this.server.options.metrics;
    m.decisions[d.decision]++;
    if (d.error) m.countError(d.error.code);
    for (const r of d.reasons) if (r.ignored) m.countIgnoredLease(r.ignored);
    if (t0 >= 0) m.observeLatency((performance.now() - t0) / 1000, 1);
    // isRecording() is false for the no-op tracer: attributes cost nothing unless traced.
    if (span.isRecording()) {
      const req = request as { action?: unknown; principal?: { id?: unknown } } | null;
      span.setAttributes({
        'pcx.decision': d.decision,
        'pcx.policy_version': d.policy_version ?? '',
        'pcx.action': typeof req?.action === 'string' ? req.action : '',
        'pcx.principal': typeof req?.principal?.id === 'string' ? req.principal.id : '',
        'pcx.reasons': d.reasons.length,
        ...(d.error ? { 'pcx.error_code': d.error.code } : {}),
      });
      if (d.error) span.setStatus({ code: SpanStatusCode.ERROR, message: d.error.code });
    }
    span.end();
  }

  private send(line: string): void {
    this.outbox.push(line);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** A protocol error: say so, then close; frames already in flight on this connection are dropped. */
  private fatal(id: null, code: PcxCode, message: string): void {
    this.server.options.metrics.countError(code);
    this.decoder.stop();
    this.send(JSON.stringify({ id, error: { code, message } }) + '\n');
    this.flush();
    // Close fully once the error is written: a hostile client must not keep a half-open socket.
    this.socket.destroySoon();
  }

  private endWhenIdle(): void {
    if (this.pending > 0) return;
    this.flush();
    this.socket.end();
  }

  drain(idleMs: number): Promise<void> {
    this.draining = true;
    this.idleMs = idleMs;
    return new Promise<void>((resolve) => {
      this.drained = resolve;
      if (this.socket.destroyed) return resolve();
      this.checkQuiet();
    });
  }

  /** While draining: a connection with nothing pending and no partial frame ends after idleMs. */
  private checkQuiet(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    // Not quiet while anything is in flight, half-received, unsent, or held back by backpressure.
    if (
      this.pending > 0 ||
      this.decoder.bufferedBytes > 0 ||
      this.outbox.length > 0 ||
      this.socket.writableLength > 0 ||
      this.socket.isPaused()
    )
      return;
    this.idleTimer = setTimeout(() => {
      this.flush();
      this.socket.destroySoon();
    }, this.idleMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  dispose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.decoder.stop();
    this.drained?.();
  }
}

function internalError(e: unknown, log: Log): Decision {
  // Not reachable by design (the engine never rejects); if it happens, fail closed and say so.
  log('error', `internal error while deciding: ${(e as Error)?.stack ?? String(e)}`);
  const error = { code: 'PCX_PDP_INTERNAL', message: 'the PDP failed to decide this request; denied' };
  return { decision: 'deny', reasons: [{ error }], error };
}
