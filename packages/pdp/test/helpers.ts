// Shared by the PDP tests: temp dirs, an in-process daemon on a real Unix socket, and a raw
// NDJSON connection for speaking the wire protocol byte by byte.
import { createConnection, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPdp, type PdpHandle, type PdpOptions } from '../src/index.js';

export interface TestContext {
  teardown(fn: () => unknown): void;
}

export function tempDir(t: TestContext, prefix = 'pcx-pdp-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const BASE_POLICY = `policy "base" {
  allow net.connect when resource.host == "ok.example"
  deny net.connect when resource.host == "evil.example" because "blocked host"
  ask net.connect when resource.host == "ask.example"
}
`;

export interface TestPdp {
  pdp: PdpHandle;
  dir: string;
  socketPath: string;
  policyPath: string;
  logs: string[];
}

export async function startTestPdp(
  t: TestContext,
  options: { policy?: string | null; files?: Record<string, string> } & Partial<PdpOptions> = {},
): Promise<TestPdp> {
  const dir = tempDir(t);
  const policyPath = options.policyPath ?? join(dir, 'policy.pol');
  if (options.policy !== null && options.policyPath === undefined)
    writeFileSync(policyPath, options.policy ?? BASE_POLICY);
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), text);
  const logs: string[] = [];
  const pdp = await startPdp({
    socketPath: join(dir, 'pdp.sock'),
    pollMs: 200,
    ...options,
    policyPath,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  t.teardown(() => pdp.close({ drainTimeoutMs: 500, idleMs: 10 }));
  return { pdp, dir, socketPath: pdp.socketPath, policyPath, logs };
}

export function request(host: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { principal: { id: 'agent-7' }, action: 'net.connect', resource: { host, port: 443 }, ...extra };
}

/** A raw connection: write bytes, read answer frames in arrival order. */
export class RawConn {
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;
  ended = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => {
      this.buf += s;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((r) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        r();
      }),
    );
  }

  static open(path: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once('connect', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next `n` frames, parsed; rejects if the connection closes first or after `ms`. */
  async frames(n: number, ms = 5000): Promise<Array<Record<string, unknown>>> {
    const deadline = Date.now() + ms;
    while (this.lines.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.lines.length} of ${n} frames`);
      if (Date.now() > deadline) throw new Error(`timed out after ${this.lines.length} of ${n} frames`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return this.lines.splice(0, n).map((l) => JSON.parse(l));
  }

  async frame(ms?: number): Promise<Record<string, unknown>> {
    return (await this.frames(1, ms))[0]!;
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function health(socketPath: string): Promise<Record<string, unknown>> {
  const c = await RawConn.open(socketPath);
  try {
    c.write('{"id":"h","health":true}\n');
    return (await c.frame()).health as Record<string, unknown>;
  } finally {
    c.close();
  }
}

/** Poll until `check` holds (a reload is asynchronous), or fail after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
