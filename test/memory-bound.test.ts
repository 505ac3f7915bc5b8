// Hostile clients cannot grow a daemon's memory: a real PDP process and a real `audit serve`
// process (the `portcullis` bin, built dist/; npm test builds first) each take 24 hostile
// connections at once — 8 send a 3 MiB line with no newline (over the 1 MiB frame limit), 8 send
// random bytes (4 connections each), 8 pipeline 8 MiB of valid frames and never read an answer —
// while an honest client keeps asking. The daemons' resident memory (VmRSS from /proc/PID/status,
// sampled every 50 ms) must stay within 192 MiB of what each held after start-up, every honest
// call must be answered, and the non-reading clients must be left holding what the daemon
// refused to read (it stopped reading from them instead of buffering their frames).
// Linux only (/proc); skipped with a reason elsewhere.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditClient, PdpClient, type AuditRecordInput, type DecisionRequest } from '@portcullis/protocol';
import { cli, daemon } from './processes.js';

const MiB = 1024 * 1024;
/** The stated bound: growth of VmRSS over the daemon's own post-start-up figure. */
const MAX_GROWTH_BYTES = 192 * MiB;
const HOSTILE_PER_KIND = 8;

const POLICY = `policy "m" {\n  allow net.connect when resource.host == "ok.example"\n}\n`;
const REQUEST: DecisionRequest = {
  principal: { id: 'agent-1' },
  action: 'net.connect',
  resource: { host: 'ok.example', port: 443 },
};
const record = (i: number): AuditRecordInput => ({
  source: 'egress',
  event_id: `m${i}`,
  principal: { id: 'agent-1' },
  action: 'net.connect',
  resource: { host: 'ok.example', path: `/p/${i}` },
  decision: 'allow',
  reasons: [{ rule: 'r' }],
});

function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the daemon closes `s` (it must: the frame is oversized or not JSON). */
function closedBy(s: Socket): Promise<void> {
  s.on('error', () => {});
  s.resume(); // read (and discard) the error frame, so only the daemon's close ends this
  return new Promise((r) => s.once('close', () => r()));
}

interface Attack {
  /** Every oversized and junk connection was closed by the daemon. */
  closedAll: Promise<void>;
  /** The non-reading connections, still open, still holding unsent bytes. */
  stuck: Socket[];
}

async function attack(socketPath: string, frame: (i: number) => string): Promise<Attack> {
  const closes: Promise<void>[] = [];
  for (let i = 0; i < HOSTILE_PER_KIND; i++) {
    const big = await connect(socketPath);
    closes.push(closedBy(big));
    big.write(Buffer.alloc(3 * MiB, 'x'));
    closes.push(
      (async () => {
        for (let j = 0; j < 4; j++) {
          const junk = await connect(socketPath);
          const done = closedBy(junk);
          junk.write(randomBytes(256 * 1024));
          await done;
        }
      })(),
    );
  }
  const stuck: Socket[] = [];
  let pipelined = '';
  for (let i = 0; pipelined.length < 8 * MiB; i++) pipelined += frame(i);
  for (let i = 0; i < HOSTILE_PER_KIND; i++) {
    const s = await connect(socketPath);
    s.on('error', () => {});
    s.pause(); // never read an answer
    s.write(pipelined);
    stuck.push(s);
  }
  return { closedAll: Promise.all(closes).then(() => {}), stuck };
}

async function underAttack(
  t: Test,
  name: string,
  pid: number,
  socketPath: string,
  frame: (i: number) => string,
  honest: () => Promise<void>,
): Promise<void> {
  for (let i = 0; i < 20; i++) await honest(); // warm up: the paths honest calls take are loaded
  const base = vmRss(pid);
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, vmRss(pid));
  }, 50);
  t.teardown(() => clearInterval(sampler));
  const a = await attack(socketPath, frame);
  t.teardown(() => {
    for (const s of a.stuck) s.destroy();
  });
  // Honest calls go on throughout; each must be answered (a failure throws and fails the test).
  let answered = 0;
  let attacking = true;
  const closed = a.closedAll.then(() => {
    attacking = false;
  });
  while (attacking || answered < 50) {
    await honest();
    answered++;
  }
  await closed;
  // The non-readers sent what the kernel took, then the daemon stopped reading: their own
  // buffers still hold most of the 8 MiB.
  for (const s of a.stuck) t.ok(s.writableLength > 4 * MiB, `${name}: a non-reader still holds its frames`);
  peak = Math.max(peak, vmRss(pid));
  clearInterval(sampler);
  t.comment(
    `${name}: VmRSS ${(base / MiB).toFixed(0)} MiB after start-up, peak ${(peak / MiB).toFixed(0)} MiB ` +
      `under attack (+${((peak - base) / MiB).toFixed(0)} MiB); ${answered} honest calls answered`,
  );
  t.ok(peak - base < MAX_GROWTH_BYTES, `${name}: grew ${((peak - base) / MiB).toFixed(0)} MiB, under 192 MiB`);
  t.ok(answered >= 50, `${name}: honest calls answered`);
}

const linux = existsSync('/proc/self/status');

t.test(
  'the PDP stays within its memory bound under hostile connections, and honest calls are answered',
  { skip: linux ? false : 'needs /proc (Linux) to read VmRSS' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-mem-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'policy.pol'), POLICY);
    const socketPath = join(dir, 'pdp.sock');
    const pdp = await daemon(t, ['pdp', '--policy', join(dir, 'policy.pol'), '--socket', socketPath], dir);
    const client = new PdpClient({ socketPath, timeoutMs: 30_000 });
    t.teardown(() => client.close());
    const request = JSON.stringify(REQUEST);
    await underAttack(
      t,
      'pdp',
      pdp.pid!,
      socketPath,
      (i) => `{"id":${i},"request":${request}}\n`,
      async () => {
        const d = await client.decide(REQUEST);
        if (d.decision !== 'allow' || d.error) throw new Error(`honest call not decided: ${JSON.stringify(d)}`);
      },
    );
    t.equal(pdp.exitCode, null, 'the PDP is still running');
  },
);

t.test(
  'the audit sink stays within its memory bound under hostile connections, and honest appends are acked',
  { skip: linux ? false : 'needs /proc (Linux) to read VmRSS' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-mem-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const key = join(dir, 'audit.key');
    t.equal((await cli(['audit', 'keygen', '--name', 'mem.test', '--out', key], dir)).code, 0, 'keygen');
    const socketPath = join(dir, 'sink.sock');
    const sink = await daemon(
      t,
      ['audit', 'serve', '--dir', join(dir, 'log'), '--socket', socketPath, '--key', key],
      dir,
    );
    const client = new AuditClient({ socketPath, timeoutMs: 30_000 });
    t.teardown(() => client.close());
    let n = 0;
    await underAttack(
      t,
      'audit sink',
      sink.pid!,
      socketPath,
      (i) => `{"id":${i},"record":${JSON.stringify(record(1_000_000 + i))}}\n`,
      async () => {
        const ack = await client.append(record(n++));
        if (!Number.isSafeInteger(ack.seq)) throw new Error('honest append not acked');
      },
    );
    t.equal(sink.exitCode, null, 'the sink is still running');
  },
);
