/**
 * bench/audit: the audit sink against a floor, in one run.
 *
 *   node bench/run.mjs audit            (AUDIT_BENCH_SECONDS=3 by default per configuration)
 *
 * For each ack mode (default: ack after write, fsync in group commits; durable: ack after
 * fdatasync) and 1 and 32 concurrent producers: acknowledged records/s and p50/p99 ack latency.
 * A producer is what a PEP does: append one record, wait for its ack, repeat; each has its own
 * AuditClient connection — or, in the "shared client" configurations, all producers share one
 * AuditClient with two connections, as a PEP process does (its requests pipeline over them).
 * The sink is the real `portcullis audit serve` process. The floor (floor.ts) is a process with
 * the same socket, framing, group writes and client, appending the same record bytes with no
 * validation, redaction, canonical JSON, hashing, Merkle tree or signing (+ fdatasync before the
 * ack in the durable case). Then the verifier's speed on the log the default 32-producer run
 * wrote (best of three runs after one warm-up run). Figures are ratios to the floor measured in
 * the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditClient, type AuditRecordInput } from '@portcullis/protocol';
import { verifyLog } from '@portcullis/audit';
import { writeReport, type Chart } from '../lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 3);
const CLI = "import { main } from '@portcullis/cli'; process.exitCode = await main(process.argv.slice(1));";
const tsNode = ['--conditions=portcullis-source', '--import', 'tsx'];

function record(i: number): AuditRecordInput {
  return {
    source: 'egress',
    event_id: `evt-${i}`,
    principal: { id: `agent-${i % 16}`, roles: ['worker'] },
    action: 'http.request',
    resource: { host: 'api.example.com', port: 443, method: 'GET', path: `/v1/items/${i}` },
    context: { project: 'proj-1', blueprint: 'bp', session: 'sess-1' },
    decision: 'allow',
    reasons: [{ effect: 'allow', policy: 'egress', rule: 'allow-api', source: 'egress.pol:12:3' }],
    outcome: { status: 200, bytes: 1834 },
  };
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function start(args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  // The floor says it is ready on stdout, the sink in its JSON log on stderr (passed through).
  child.stderr!.pipe(process.stderr);
  await new Promise<void>((resolve, reject) => {
    const on = (c: Buffer): void => {
      out += c.toString();
      if (ready.test(out)) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => reject(new Error(`exited ${code} before it was ready`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  children.delete(child);
}

interface Result {
  recordsPerSec: number;
  /**
   * Server-process CPU time (user + system) per acknowledged record: less sensitive to a busy machine than throughput.
   */
  serverCpuUsPerRecord: number;
  p50Ms: number;
  p99Ms: number;
  acked: number;
}

/** utime + stime of a process in µs, from /proc (Linux). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // clock ticks (USER_HZ = 100)
}

/**
 * `shared`: the producers share one AuditClient with two connections, as a PEP process does (the
 * egress proxy's many concurrent requests append through one client); otherwise each producer
 * has its own client and connection.
 */
async function drive(socketPath: string, producers: number, shared: boolean, server: ChildProcess): Promise<Result> {
  const one = shared ? new AuditClient({ socketPath, connections: 2, timeoutMs: 10_000 }) : undefined;
  const clients = Array.from({ length: producers }, () => one ?? new AuditClient({ socketPath, timeoutMs: 10_000 }));
  let i = 0;
  let measuring = false;
  let stopAt = 0;
  const latencies: number[] = [];
  const loop = async (c: AuditClient): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      await c.append(record(i++));
      const t1 = performance.now();
      if (t1 >= stopAt) return;
      if (measuring) latencies.push(t1 - t0);
    }
  };
  // Half a second of warm-up, then SECONDS measured.
  const began = performance.now();
  stopAt = began + 500 + SECONDS * 1000;
  let cpu0 = 0;
  setTimeout(() => {
    measuring = true;
    cpu0 = cpuUs(server.pid!);
  }, 500);
  await Promise.all(clients.map(loop));
  const cpu = cpuUs(server.pid!) - cpu0;
  for (const c of new Set(clients)) c.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number =>
    Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN) * 1000) / 1000;
  return {
    recordsPerSec: Math.round(latencies.length / SECONDS),
    serverCpuUsPerRecord: Math.round((cpu / latencies.length) * 10) / 10,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    acked: latencies.length,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'pcx-bench-audit-'));
try {
  const keygen = spawn(
    process.execPath,
    [
      ...tsNode,
      '--input-type=module',
      '-e',
      CLI,
      '--',
      'audit',
      'keygen',
      '--name',
      'bench',
      '--out',
      join(dir, 'key'),
    ],
    { cwd: here, stdio: 'ignore' },
  );
  await new Promise((r) => keygen.on('exit', r));

  const modes = ['default', 'durable'] as const;
  const configurations = [
    { p: 1, shared: false, name: '1 producer' },
    { p: 32, shared: false, name: '32 producers' },
    { p: 32, shared: true, name: '32 producers, shared client' },
  ];
  const results: Record<string, Record<string, Result>> = {};
  let verifyDir = '';
  for (const mode of modes) {
    for (const { p, shared, name } of configurations) {
      const label = `${mode}, ${name}`;
      // Floor first, then the sink, with fresh files each.
      const floorSock = join(dir, `floor-${mode}-${p}${shared ? 's' : ''}.sock`);
      const floor = await start(
        [...tsNode, join(here, 'floor.ts'), floorSock, join(dir, `floor-${mode}-${p}${shared ? 's' : ''}.log`), mode],
        /listening/,
      );
      const f = await drive(floorSock, p, shared, floor);
      await stop(floor);
      const logDir = join(dir, `log-${mode}-${p}${shared ? '-shared' : ''}`);
      const sinkSock = join(dir, `sink-${mode}-${p}${shared ? 's' : ''}.sock`);
      const sink = await start(
        [
          ...tsNode,
          '--input-type=module',
          '-e',
          CLI,
          '--',
          'audit',
          'serve',
          '--dir',
          logDir,
          '--socket',
          sinkSock,
          '--key',
          join(dir, 'key'),
          ...(mode === 'durable' ? ['--durable'] : []),
        ],
        /listening on/,
      );
      const s = await drive(sinkSock, p, shared, sink);
      await stop(sink);
      if (mode === 'default' && p === 32 && !shared) verifyDir = logDir;
      results[label] = { floor: f, sink: s };
      console.log(
        `${label}: sink ${s.recordsPerSec} rec/s p99 ${s.p99Ms} ms ${s.serverCpuUsPerRecord} µs CPU/rec | floor ` +
          `${f.recordsPerSec} rec/s p99 ${f.p99Ms} ms ${f.serverCpuUsPerRecord} µs CPU/rec | ratio ` +
          `${(s.recordsPerSec / f.recordsPerSec).toFixed(2)}`,
      );
    }
  }

  const bytes = readdirSync(join(verifyDir, 'segments')).reduce(
    (n, f) => n + statSync(join(verifyDir, 'segments', f)).size,
    0,
  );
  // One untimed run first (JIT warm-up, page cache), then the best of three.
  let secs = Infinity;
  let v = await verifyLog(verifyDir);
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    v = await verifyLog(verifyDir);
    secs = Math.min(secs, (performance.now() - t0) / 1000);
  }
  if (!v.ok) throw new Error(`the benchmark log does not verify: ${JSON.stringify(v.problems[0])}`);
  const verify = {
    records: v.records,
    seconds: Math.round(secs * 1000) / 1000,
    recordsPerSec: Math.round(v.records / secs),
    MBPerSec: Math.round((bytes / 2 ** 20 / secs) * 10) / 10,
  };
  console.log(
    `verify: ${verify.records} records in ${verify.seconds} s = ${verify.recordsPerSec} rec/s (${verify.MBPerSec} ` +
      `MB/s)`,
  );

  const labels = Object.keys(results);
  const at = (l: string): Record<string, Result> => results[l]!;
  const ratios: Record<string, number> = Object.fromEntries(
    labels.map((l) => [l, Math.round((at(l).sink!.recordsPerSec / at(l).floor!.recordsPerSec) * 100) / 100]),
  );
  const targets = {
    'default, 32 producers ≥ 50,000 rec/s (own connections)': at('default, 32 producers').sink!.recordsPerSec >= 50_000,
    'default, 32 producers ≥ 50,000 rec/s (shared client)':
      at('default, 32 producers, shared client').sink!.recordsPerSec >= 50_000,
    'within 2× of the floor, every configuration': Object.values(ratios).every((r) => r >= 0.5),
    'verify ≥ 500,000 rec/s': verify.recordsPerSec >= 500_000,
  };
  const charts: Chart[] = [
    {
      title: 'acknowledged records/s (higher is better)',
      unit: 'rec/s',
      categories: labels,
      series: [
        { name: 'portcullis sink', values: labels.map((l) => at(l).sink!.recordsPerSec) },
        { name: 'floor (plain appends)', values: labels.map((l) => at(l).floor!.recordsPerSec) },
      ],
    },
    {
      title: 'p99 ack latency (lower is better)',
      unit: 'ms',
      categories: labels,
      series: [
        { name: 'portcullis sink', values: labels.map((l) => at(l).sink!.p99Ms) },
        { name: 'floor (plain appends)', values: labels.map((l) => at(l).floor!.p99Ms) },
      ],
      log: true,
    },
    {
      title: 'sink throughput as a fraction of the floor (1 = floor)',
      unit: '×',
      categories: labels,
      series: [{ name: 'sink / floor', values: labels.map((l) => ratios[l]!) }],
    },
    {
      title: 'server CPU time per acknowledged record (lower is better)',
      unit: 'µs',
      categories: labels,
      series: [
        { name: 'portcullis sink', values: labels.map((l) => at(l).sink!.serverCpuUsPerRecord) },
        { name: 'floor (plain appends)', values: labels.map((l) => at(l).floor!.serverCpuUsPerRecord) },
      ],
    },
    {
      title: 'verify speed',
      unit: 'rec/s',
      categories: [`${verify.records} records`],
      series: [{ name: 'portcullis audit verify', values: [verify.recordsPerSec] }],
    },
  ];
  const load = loadavg().map((x) => Math.round(x * 100) / 100);
  const out = writeReport(
    'audit',
    { seconds: SECONDS, loadAverageAtEnd: load, results, ratios, verify, targets },
    charts,
  );
  console.log(`targets: ${JSON.stringify(targets)}\nwrote ${out.json} and ${out.svg}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
