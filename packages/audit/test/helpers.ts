// Shared by the audit tests: temp dirs, keys, sample records, an in-process sink on a real Unix
// socket (with its teardown) and a raw connection for speaking the wire protocol.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditClient, type AuditRecordInput } from '@portcullis/protocol';
import { AuditLog } from '../src/log.js';
import { generateKey, parseSigningKey, type SigningKey } from '../src/note.js';
import { serveSink } from '../src/server.js';

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'pcx-audit-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function newKey(name = 'test-log'): Promise<{ key: SigningKey; publicKey: string; privateKey: string }> {
  const k = await generateKey(name);
  return { key: await parseSigningKey(k.privateKey), ...k };
}

export function sampleRecord(i: number): AuditRecordInput {
  return {
    source: i % 3 === 0 ? 'egress' : 'fsgate',
    event_id: `evt-${i}`,
    principal: { id: `agent-${i % 4}`, roles: ['worker'] },
    action: i % 2 === 0 ? 'http.request' : 'fs.read',
    resource: { host: 'api.example.com', path: `/v1/items/${i}` },
    context: { project: 'p1', session: 's1' },
    decision: i % 5 === 0 ? 'deny' : 'allow',
    reasons: [{ effect: i % 5 === 0 ? 'deny' : 'allow', policy: 'base', rule: `r${i % 7}` }],
    outcome: { status: 200, bytes: i * 10 },
  };
}

export async function startSink(
  t: Parameters<typeof tempDir>[0] & { teardown(fn: () => unknown): void },
  opts: Partial<Parameters<typeof AuditLog.open>[0]> = {},
) {
  const dir = opts.dir ?? tempDir(t);
  const { key, publicKey } = await newKey();
  const log = await AuditLog.open({ dir, key, ...opts });
  const socketPath = join(dir, 'sink.sock');
  const server = await serveSink({ socketPath, log });
  // Generous deadline: this suite shares a busy machine; deadlines themselves are tested in protocol.
  const client = new AuditClient({ socketPath, connections: 2, timeoutMs: 30_000 });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      client.close();
      await server.close();
      await log.close();
    })());
  // Even when an assertion fails midway, nothing is left listening (a leak would hang the run).
  t.teardown(stop);
  return { dir, log, server, client, socketPath, publicKey, key, stop };
}

/** Send raw lines on a fresh connection; collect answer frames until the sink closes or `want` arrive. */
export function raw(
  socketPath: string,
  data: string | Buffer,
  want: number,
): Promise<{ frames: Record<string, unknown>[]; closed: boolean }> {
  return new Promise((resolve) => {
    const c = createConnection({ path: socketPath });
    let buf = '';
    const frames: Record<string, unknown>[] = [];
    const done = (closed: boolean) => {
      c.destroy();
      resolve({ frames, closed });
    };
    c.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        frames.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (frames.length >= want) setTimeout(() => done(c.readableEnded), 50);
    });
    c.on('end', () => done(true));
    c.on('error', () => done(true));
    c.write(data);
    if (want === 0) setTimeout(() => done(false), 50);
  });
}
