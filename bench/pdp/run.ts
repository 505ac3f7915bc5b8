/**
 * bench/pdp: the PDP over its Unix socket, side by side in one run with
 *   (a) the floor: a trivial NDJSON echo server on a Unix socket (echo-server.ts), and
 *   (b) the Cerbos PDP (the npm `cerbos` binary) serving an equivalent policy, over its HTTP JSON
 *       API (POST /api/check/resources) on loopback.
 * Each server is its own process; this process is the client. Echo and Portcullis are driven by
 * the same client (the protocol package's RpcClient, which the PdpClient is built on), so their
 * ratio isolates the server. Cerbos is driven by node:http with a keep-alive agent (one socket
 * per concurrent client), the cheapest fair Node client for an HTTP/JSON API; HTTP framing costs
 * the client more than NDJSON does, which this run cannot separate from Cerbos's own cost —
 * read that ratio as "what a Node PEP would see". Cerbos has no pipelining over HTTP/1.1, so
 * its pipelined cell is left empty.
 *
 * Measures: sequential round trips (median, p99; 1 client), throughput with 1 and 32 concurrent
 * clients (one connection each), and pipelined throughput (one connection, 256 in flight);
 * in interleaved rounds (echo, portcullis, cerbos, echo, …), reporting the median of the rounds.
 * Writes bench/results/pdp.json and pdp.svg. Run: node bench/run.mjs pdp (after a build).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RpcClient } from '@portcullis/protocol';
import { writeReport } from '../lib/report.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'pcx-bench-pdp-'));
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 2000);
// The machine is shared: targets are measured in interleaved rounds and each figure is the
// median over rounds, so a burst of outside load does not land on one target only.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PIPELINE_DEPTH = 256;

// The request every target decides: an allowed egress connection by an agent with a role.
const REQUEST = {
  principal: { id: 'agent-7', roles: ['developer'], team: 'core' },
  action: 'net.connect',
  resource: { host: 'api.github.com', port: 443, ip: '140.82.112.6' },
  context: { project: 'alpha', session: 's-42' },
};

// The same policy for Portcullis and Cerbos: allow GitHub and the npm registry on 443, deny the
// private ranges whatever the host.
const PORTCULLIS_POLICY = `policy "egress" {
  allow net.connect when resource.host matches ["**.github.com", "registry.npmjs.org"] and resource.port == 443
  deny net.connect when resource.ip in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] because "private ranges"
}
`;
const CERBOS_POLICY = `apiVersion: api.cerbos.dev/v1
resourcePolicy:
  version: default
  resource: net
  rules:
    - actions: ["connect"]
      effect: EFFECT_ALLOW
      roles: ["*"]
      condition:
        match:
          expr: >-
            R.attr.port == 443 && (R.attr.host == "github.com" || R.attr.host.endsWith(".github.com") ||
            R.attr.host == "registry.npmjs.org")
    - actions: ["connect"]
      effect: EFFECT_DENY
      roles: ["*"]
      condition:
        match:
          expr: >-
            R.attr.ip.inIPAddrRange("10.0.0.0/8") || R.attr.ip.inIPAddrRange("172.16.0.0/12") ||
            R.attr.ip.inIPAddrRange("192.168.0.0/16")
`;

/** Spawn a server; resolve when its output matches `ready` (at once when there is nothing to wait for). */
function start(
  cmd: string,
  args: string[],
  ready: RegExp | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildProcess> {
  const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let seen = '';
  return new Promise((resolve, reject) => {
    if (!ready) return resolve(child);
    const timer = setTimeout(() => reject(new Error(`${cmd} did not become ready:\n${seen}`)), 30_000);
    const check = (s: Buffer) => {
      seen += s.toString();
      if (ready.test(seen)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready:\n${seen}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

type Call = () => Promise<unknown>;

interface Target {
  name: string;
  /** The server process, for its CPU time. */
  pid: number;
  /** A client with `connections` persistent connections. */
  client(connections: number): { call: Call; close(): void };
  pipelined: boolean;
}

/** One call at a time for `ms` (after a warm-up): the round-trip latency distribution. */
async function sequential(call: Call, ms: number) {
  const warmUntil = performance.now() + ms / 5;
  while (performance.now() < warmUntil) await call(); // JIT, connection
  const lat: number[] = [];
  const t0 = performance.now();
  const until = t0 + ms;
  for (let s = t0; s < until; ) {
    await call();
    const e = performance.now();
    lat.push(e - s);
    s = e;
  }
  const total = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const n = lat.length;
  return {
    medianUs: lat[Math.floor(n / 2)]! * 1000,
    p99Us: lat[Math.floor(n * 0.99)]! * 1000,
    perSec: n / (total / 1000),
  };
}

/** CPU time (user + system, all threads) a process has used so far, in µs (Linux /proc). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  // After "pid (comm) ", utime and stime are fields 12 and 13 (0-based), in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Calls per second with `workers` concurrent callers for `ms`, and the server's CPU µs per call. */
async function throughput(
  call: Call,
  workers: number,
  ms: number,
  pid: number,
): Promise<{ perSec: number; serverCpuUs: number }> {
  let stop = false;
  let done = 0;
  const loop = async () => {
    while (!stop) {
      await call();
      done++;
    }
  };
  // Warm up for a fifth of the phase, then count.
  const warm = Array.from({ length: workers }, loop);
  await new Promise((r) => setTimeout(r, ms / 5));
  const before = done;
  const cpu0 = cpuUs(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const counted = done - before;
  const elapsed = performance.now() - t0;
  const cpu = cpuUs(pid) - cpu0;
  stop = true;
  await Promise.all(warm);
  return { perSec: counted / (elapsed / 1000), serverCpuUs: cpu / counted };
}

function ndjsonTarget(
  name: string,
  pid: number,
  socketPath: string,
  check: (frame: Record<string, unknown>) => boolean,
): Target {
  return {
    name,
    pid,
    pipelined: true,
    client(connections) {
      const rpc = new RpcClient({ socketPath, connections, timeoutMs: 10_000, peerName: name });
      return {
        call: async () => {
          const f = await rpc.call({ request: REQUEST });
          if (!check(f)) throw new Error(`${name}: unexpected answer ${JSON.stringify(f)}`);
        },
        close: () => rpc.close(),
      };
    },
  };
}

function cerbosTarget(pid: number, port: number): Target {
  let n = 0;
  return {
    name: 'cerbos',
    pid,
    pipelined: false,
    client(connections) {
      const agent = new Agent({ keepAlive: true, maxSockets: connections });
      const call = () =>
        new Promise<void>((resolve, reject) => {
          const body = JSON.stringify({
            requestId: String(++n),
            principal: {
              id: REQUEST.principal.id,
              roles: REQUEST.principal.roles,
              attr: { team: REQUEST.principal.team },
            },
            resources: [{ actions: ['connect'], resource: { kind: 'net', id: 'r', attr: REQUEST.resource } }],
          });
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port,
              path: '/api/check/resources',
              method: 'POST',
              agent,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () => {
                const effect = JSON.parse(text)?.results?.[0]?.actions?.connect;
                if (effect !== 'EFFECT_ALLOW') reject(new Error(`cerbos: unexpected answer ${text}`));
                else resolve();
              });
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      return { call, close: () => agent.destroy() };
    },
  };
}

async function measure(target: Target) {
  const one = target.client(1);
  const seq = await sequential(one.call, PHASE_MS);
  one.close();
  const c32 = target.client(32);
  const t32 = await throughput(c32.call, 32, PHASE_MS, target.pid);
  c32.close();
  let piped: { perSec: number; serverCpuUs: number } | null = null;
  if (target.pipelined) {
    const p = target.client(1);
    piped = await throughput(p.call, PIPELINE_DEPTH, PHASE_MS, target.pid);
    p.close();
  }
  const r = {
    ...seq,
    clients32PerSec: t32.perSec,
    pipelinedPerSec: piped?.perSec ?? null,
    // Server CPU per call with 32 clients: the server's own cost, whatever else the shared
    // cores are doing (the throughput figures depend on that; this one much less).
    serverCpuUsPerCall: t32.serverCpuUs,
    serverCpuUsPipelined: piped?.serverCpuUs ?? null,
  };
  console.log(
    `  ${target.name.padEnd(10)} median ${r.medianUs.toFixed(1)} µs  p99 ${r.p99Us.toFixed(1)} µs  1 client ` +
      `${r.perSec.toFixed(0)}/s  32 clients ${t32.perSec.toFixed(0)}/s  pipelined ` +
      `${piped?.perSec.toFixed(0) ?? '-'}/s  server CPU ${r.serverCpuUsPerCall.toFixed(1)} µs/call (pipelined ` +
      `${r.serverCpuUsPipelined?.toFixed(1) ?? '-'})`,
  );
  return r;
}

// --- start the three servers -------------------------------------------------------------
const tsxArgs = ['--conditions=portcullis-source', '--import', 'tsx'];
const echoSock = join(work, 'echo.sock');
const echoProc = await start(process.execPath, [...tsxArgs, join(here, 'echo-server.ts'), echoSock], /ready/);

writeFileSync(join(work, 'egress.pol'), PORTCULLIS_POLICY);
const pdpSock = join(work, 'pdp.sock');
const pdpProc = await start(
  process.execPath,
  [
    join(root, 'packages', 'cli', 'bin', 'portcullis.js'),
    'pdp',
    '--policy',
    join(work, 'egress.pol'),
    '--socket',
    pdpSock,
  ],
  /listening on/,
);

const cerbosBin = createRequire(realpathSync(join(root, 'bench', 'node_modules', 'cerbos', 'index.js'))).resolve(
  `@cerbos/cerbos-${process.platform}-${process.arch}`,
);
mkdirSync(join(work, 'cerbos-policies'));
writeFileSync(join(work, 'cerbos-policies', 'net.yaml'), CERBOS_POLICY);
const [httpPort, grpcPort] = [await freePort(), await freePort()];
writeFileSync(
  join(work, 'cerbos.yaml'),
  `server:\n  httpListenAddr: "127.0.0.1:${httpPort}"\n  grpcListenAddr: "127.0.0.1:${grpcPort}"\nstorage:\n  ` +
    `driver: disk\n  disk:\n    directory: ${join(work, 'cerbos-policies')}\n    watchForChanges: false\naudit:\n  ` +
    `enabled: false\n`,
);
const cerbosProc = await start(
  cerbosBin,
  ['server', `--config=${join(work, 'cerbos.yaml')}`, '--log-level=error'],
  undefined,
  { ...process.env, CERBOS_NO_TELEMETRY: '1' },
);
// Cerbos logs little at level error; wait for its HTTP port to answer.
const cerbos = cerbosTarget(cerbosProc.pid!, httpPort);
for (let i = 0; ; i++) {
  const probe = cerbos.client(1);
  try {
    await probe.call();
    probe.close();
    break;
  } catch (e) {
    probe.close();
    if (i > 300) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- measure, one target at a time ---------------------------------------------------------
type Result = Awaited<ReturnType<typeof measure>>;
const targetList = [
  ndjsonTarget('echo', echoProc.pid!, echoSock, (f) => typeof f.request === 'object'),
  ndjsonTarget(
    'portcullis',
    pdpProc.pid!,
    pdpSock,
    (f) => f.decision === 'allow' && typeof f.policy_version === 'string',
  ),
  cerbos,
];
const rounds: Record<string, Result[]> = { echo: [], portcullis: [], cerbos: [] };
const loadBefore = loadavg();
for (let round = 1; round <= ROUNDS; round++) {
  console.log(`round ${round}/${ROUNDS}`);
  for (const target of targetList) rounds[target.name]!.push(await measure(target));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summarise = (rs: Result[]): Result => ({
  medianUs: median(rs.map((r) => r.medianUs)),
  p99Us: median(rs.map((r) => r.p99Us)),
  perSec: median(rs.map((r) => r.perSec)),
  clients32PerSec: median(rs.map((r) => r.clients32PerSec)),
  pipelinedPerSec: rs[0]!.pipelinedPerSec === null ? null : median(rs.map((r) => r.pipelinedPerSec!)),
  serverCpuUsPerCall: median(rs.map((r) => r.serverCpuUsPerCall)),
  serverCpuUsPipelined: rs[0]!.serverCpuUsPipelined === null ? null : median(rs.map((r) => r.serverCpuUsPipelined!)),
});
const echo = summarise(rounds.echo!);
const pdp = summarise(rounds.portcullis!);
const cer = summarise(rounds.cerbos!);

const ratios = {
  medianVsEcho: pdp.medianUs / echo.medianUs,
  p99VsEcho: pdp.p99Us / echo.p99Us,
  pipelinedVsEcho: pdp.pipelinedPerSec! / echo.pipelinedPerSec!,
  clients32VsEcho: pdp.clients32PerSec / echo.clients32PerSec,
  clients32VsCerbos: pdp.clients32PerSec / cer.clients32PerSec,
  sequentialVsCerbos: pdp.perSec / cer.perSec,
  serverCpuVsCerbos: pdp.serverCpuUsPerCall / cer.serverCpuUsPerCall,
};
const targets = {
  'median round trip within 1.5x of the echo floor': ratios.medianVsEcho <= 1.5,
  'pipelined throughput at least 60% of the floor': ratios.pipelinedVsEcho >= 0.6,
  'throughput with 32 clients at least 10x Cerbos': ratios.clients32VsCerbos >= 10,
};
console.log('ratios', ratios);
console.log('targets', targets);

const out = writeReport(
  'pdp',
  {
    request: REQUEST,
    settings: { phaseMs: PHASE_MS, rounds: ROUNDS, pipelineDepth: PIPELINE_DEPTH },
    // The cores are shared with other work: the 1-minute load average before and after says how much.
    loadAverage: { before: loadBefore[0], after: loadavg()[0] },
    results: { echo, portcullis: pdp, cerbos: cer },
    rounds,
    ratios,
    targets,
    notes: [
      'One client process (Node, single-threaded) drives every target; each server is its own process; all share ' +
        'the same cores.',
      'echo and portcullis use the same client (RpcClient over the Unix socket); cerbos uses node:http keep-alive ' +
        'over loopback TCP (its HTTP JSON API).',
      'Cerbos cannot pipeline over HTTP/1.1: its pipelined cell is empty.',
    ],
  },
  [
    {
      title: 'sequential round trip, 1 client (µs, lower is better)',
      unit: 'µs',
      categories: ['median', 'p99'],
      series: [
        { name: 'echo floor', values: [echo.medianUs, echo.p99Us] },
        { name: 'portcullis', values: [pdp.medianUs, pdp.p99Us] },
        { name: 'cerbos', values: [cer.medianUs, cer.p99Us] },
      ],
    },
    {
      title: 'throughput (decisions/s, higher is better)',
      unit: '/s',
      log: true,
      categories: ['1 client', '32 clients', `pipelined (1 conn, ${PIPELINE_DEPTH} in flight)`],
      series: [
        { name: 'echo floor', values: [echo.perSec, echo.clients32PerSec, echo.pipelinedPerSec] },
        { name: 'portcullis', values: [pdp.perSec, pdp.clients32PerSec, pdp.pipelinedPerSec] },
        { name: 'cerbos', values: [cer.perSec, cer.clients32PerSec, null] },
      ],
      note:
        'cerbos: HTTP/1.1 has no pipelining, so no pipelined figure; its client is node:http (keep-alive), the ' +
        'others RpcClient over NDJSON.',
    },
    {
      title: 'server CPU per decision (µs, lower is better)',
      unit: 'µs',
      log: true,
      categories: ['32 clients', 'pipelined'],
      series: [
        { name: 'echo floor', values: [echo.serverCpuUsPerCall, echo.serverCpuUsPipelined] },
        { name: 'portcullis', values: [pdp.serverCpuUsPerCall, pdp.serverCpuUsPipelined] },
        { name: 'cerbos', values: [cer.serverCpuUsPerCall, null] },
      ],
      note:
        'user + system CPU of the server process (all threads) over the phase, divided by the calls answered; ' +
        '/proc, 10 ms ticks.',
    },
  ],
);
console.log(`wrote ${out.json} and ${out.svg}`);
process.exit(0);
