/**
 * bench/egress: the egress proxy against squid and tinyproxy (and no proxy at all), in one run.
 *
 *   node bench/run.mjs egress        (needs a build: node scripts/bootstrap.mjs build)
 *
 * Measured, each at concurrency 1 and 64:
 *  - absolute-URI HTTP through the proxy (wrk, keep-alive): requests/s, p50 and p99 latency;
 *  - requests inside CONNECT tunnels (one keep-alive tunnel per client connection, plain HTTP
 *    inside so that TLS cost does not hide the proxy's): requests/s, p50, p99;
 *  - bulk throughput through one tunnel (MB/s), against a direct connection.
 * The origin runs in its own process. Portcullis runs as in production: the real PDP daemon and
 * audit sink processes, every request decided by the PDP (its decision cache is off) and its
 * decision record acknowledged by the sink before forwarding, plus a closing record.
 * squid and tinyproxy get an allowlist ACL equivalent to the policy (the origin's address and
 * ports only, CONNECT included) and keep their access logs on, as the proxy keeps its audit log.
 * Figures are reported as ratios to baselines measured in this same run.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport, type Chart } from '../lib/report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
const SECONDS = Number(process.env.EGRESS_BENCH_SECONDS ?? 5);
const BULK_BYTES = 256 * 1024 * 1024;

type Target = 'direct' | 'portcullis' | 'squid' | 'tinyproxy';
interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) the proxy's processes spent per request (portcullis: egress + PDP + sink). */
  cpuUsPerRequest?: number;
}

/**
 * CPU seconds a process has used so far (Linux /proc; the machine is shared, so this is what a
 * request costs whatever the load).
 */
function cpuSeconds(pids: number[]): number {
  let s = 0;
  for (const pid of pids) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    s += (Number(f[11]) + Number(f[12])) / 100;
  }
  return s;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

const children: ChildProcess[] = [];
function start(
  cmd: string,
  args: string[],
  ready: RegExp,
  name: string,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out}`)), 20_000);
    const on = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}): ${out}`));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

// ---- HTTP through the proxy: wrk ----

function wrk(url: string, connections: number, proxyTarget?: string): Promise<Run> {
  const args = ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency'];
  let script: string | undefined;
  if (proxyTarget) {
    // Absolute-URI requests to the proxy, with the Host header of the real target.
    script = join(tmpdir(), `pcx-wrk-${process.pid}.lua`);
    writeFileSync(
      script,
      `wrk.headers["Host"] = "${new URL(proxyTarget).host}"\nrequest = function() return wrk.format("GET", ` +
        `"${proxyTarget}") end\n`,
    );
    args.push('-s', script);
  }
  args.push(url);
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (SECONDS + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}\n${stdout}`));
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
      const pct = (p: string): number => {
        const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
        if (!m) return NaN;
        return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      };
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
      const errors = /Socket errors: (.*)/.exec(stdout);
      if (non2xx || !Number.isFinite(rps))
        return reject(new Error(`wrk saw failures (${non2xx?.[0] ?? ''} ${errors?.[0] ?? ''}):\n${stdout}`));
      resolve({ rps, p50: pct('50'), p99: pct('99') });
    });
  });
}

// ---- requests inside CONNECT tunnels: a minimal keep-alive client ----

function openTunnel(proxyPort: number | undefined, originPort: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(proxyPort ?? originPort, '127.0.0.1');
    s.setNoDelay(true);
    s.once('error', reject);
    if (proxyPort === undefined) return s.once('connect', () => resolve(s));
    s.once('connect', () =>
      s.write(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`),
    );
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      else if (end + 4 < head.length) reject(new Error('unexpected bytes after the CONNECT answer'));
      else resolve(s);
    };
    s.on('data', onData);
  });
}

async function tunnelLoad(proxyPort: number | undefined, originPort: number, connections: number): Promise<Run> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => openTunnel(proxyPort, originPort)));
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`);
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          let buf = '';
          let sentAt = 0;
          let need = -1;
          const send = (): void => {
            if (performance.now() >= deadline) {
              s.destroy();
              resolve();
              return;
            }
            sentAt = performance.now();
            s.write(request);
          };
          s.on('data', (d: Buffer) => {
            buf += d.toString('latin1');
            for (;;) {
              if (need < 0) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? NaN);
                if (!Number.isFinite(len)) return reject(new Error(`no content-length: ${buf.slice(0, 200)}`));
                need = end + 4 + len;
              }
              if (buf.length < need) return;
              buf = buf.slice(need);
              need = -1;
              latencies.push(performance.now() - sentAt);
              count++;
              send();
            }
          });
          s.on('error', reject);
          send();
        }),
    ),
  );
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { rps: count / SECONDS, p50: q(0.5), p99: q(0.99) };
}

async function bulk(proxyPort: number | undefined, bulkPort: number): Promise<number> {
  const s = await openTunnel(proxyPort, bulkPort);
  const started = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', resolve);
    s.on('error', reject);
    s.write(`${BULK_BYTES}\n`);
  });
  s.destroy();
  if (got !== BULK_BYTES) throw new Error(`bulk: received ${got} of ${BULK_BYTES} bytes`);
  return BULK_BYTES / 1e6 / ((performance.now() - started) / 1000);
}

// ---- the proxies ----

async function main(): Promise<void> {
  if (!which('wrk')) {
    console.error('bench/egress needs wrk: apt-get update && apt-get install -y wrk squid tinyproxy');
    process.exit(2);
  }
  if (!existsSync(join(root, 'packages', 'cli', 'dist', 'bin.js'))) {
    console.error('bench/egress runs the built proxy: node scripts/bootstrap.mjs build');
    process.exit(2);
  }
  const missing = ['squid', 'tinyproxy'].filter((p) => !which(p));
  if (missing.length > 0)
    console.error(
      `bench/egress: ${missing.join(' and ')} not installed; they are skipped. Install: apt-get update && apt-get ` +
        `install -y ${missing.join(' ')}`,
    );

  // Other work on the machine skews every figure here; the load average is recorded with them.
  const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'pcx-bench-egress-'));
  chmodSync(dir, 0o777); // squid and tinyproxy drop privileges and write their logs here
  const ports: Partial<Record<Target, number>> = {};
  try {
    const origin = await start(process.execPath, [join(here, 'origin.mjs')], /\{"http":(\d+),"bulk":(\d+)\}/, 'origin');
    const originPort = Number(origin.match[1]);
    const bulkPort = Number(origin.match[2]);

    // Portcullis: PDP + audit sink + egress, each its own process.
    writeFileSync(
      join(dir, 'bench.pol'),
      `policy "bench" scope global {\n  allow net.http, net.connect when resource.ip in ["127.0.0.1/32"] and ` +
        `resource.port in [${originPort}, ${bulkPort}] because "the benchmark origin"\n}\n`,
    );
    const kg = spawnSync(
      process.execPath,
      [bin, 'audit', 'keygen', '--name', 'bench', '--out', join(dir, 'audit.key')],
      { encoding: 'utf8' },
    );
    if (kg.status !== 0) throw new Error(kg.stderr);
    const pdp = await start(
      process.execPath,
      [bin, 'pdp', '--policy', join(dir, 'bench.pol'), '--socket', join(dir, 'pdp.sock')],
      /listening on/,
      'pdp',
    );
    const sink = await start(
      process.execPath,
      [
        bin,
        'audit',
        'serve',
        '--dir',
        join(dir, 'log'),
        '--socket',
        join(dir, 'audit.sock'),
        '--key',
        join(dir, 'audit.key'),
      ],
      /listening on/,
      'audit sink',
    );
    const eg = await start(
      process.execPath,
      [
        bin,
        'egress',
        '--listen',
        '127.0.0.1:0',
        '--pdp',
        join(dir, 'pdp.sock'),
        '--audit',
        join(dir, 'audit.sock'),
        '--principal',
        'bench',
        '--allow-cidr',
        '127.0.0.0/8',
      ],
      /listening on 127\.0\.0\.1:(\d+)/,
      'egress',
    );
    ports.portcullis = Number(eg.match[1]);
    const pids: Partial<Record<Target, number[]>> = { portcullis: [eg.child.pid!, pdp.child.pid!, sink.child.pid!] };

    if (which('squid')) {
      const port = await freePort();
      writeFileSync(
        join(dir, 'squid.conf'),
        [
          `http_port 127.0.0.1:${port}`,
          'acl origin dst 127.0.0.1/32',
          `acl origin_ports port ${originPort} ${bulkPort}`,
          'acl CONNECT method CONNECT',
          'http_access allow CONNECT origin origin_ports',
          'http_access allow origin origin_ports',
          'http_access deny all',
          'cache deny all',
          'cache_mem 8 MB',
          `access_log stdio:${join(dir, 'squid-access.log')}`,
          `cache_log ${join(dir, 'squid-cache.log')}`,
          `pid_filename ${join(dir, 'squid.pid')}`,
          `coredump_dir ${dir}`,
          'shutdown_lifetime 0 seconds',
          'forwarded_for delete',
          'via off',
        ].join('\n') + '\n',
      );
      const child = spawn(which('squid')!, ['-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
      children.push(child);
      await waitForPort(port);
      ports.squid = port;
      pids.squid = [child.pid!];
    }
    if (which('tinyproxy')) {
      const port = await freePort();
      writeFileSync(join(dir, 'tinyproxy.filter'), '^127\\.0\\.0\\.1$\n');
      writeFileSync(
        join(dir, 'tinyproxy.conf'),
        [
          `Port ${port}`,
          'Listen 127.0.0.1',
          'Timeout 600',
          'MaxClients 256',
          'Allow 127.0.0.1',
          `ConnectPort ${originPort}`,
          `ConnectPort ${bulkPort}`,
          `Filter "${join(dir, 'tinyproxy.filter')}"`,
          'FilterDefaultDeny Yes',
          'FilterURLs Off',
          `LogFile "${join(dir, 'tinyproxy.log')}"`,
          'LogLevel Info',
          'DisableViaHeader Yes',
        ].join('\n') + '\n',
      );
      const child = spawn(which('tinyproxy')!, ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
      children.push(child);
      await waitForPort(port);
      ports.tinyproxy = port;
      pids.tinyproxy = [child.pid!];
    }

    const targets: Target[] = ['direct', 'portcullis', 'squid', 'tinyproxy'];
    const present = (t: Target): boolean => t === 'direct' || ports[t] !== undefined;
    const originUrl = `http://127.0.0.1:${originPort}/`;
    const http: Record<string, Record<number, Run | null>> = {};
    const tunnel: Record<string, Record<number, Run | null>> = {};
    const bulkMBs: Record<string, number | null> = {};
    for (const t of targets) {
      http[t] = {};
      tunnel[t] = {};
      for (const c of [1, 64]) {
        if (!present(t)) {
          http[t]![c] = null;
          tunnel[t]![c] = null;
          continue;
        }
        // Warm up connections, pools and JITs, then measure.
        const proxyUrl = t === 'direct' ? originUrl : `http://127.0.0.1:${ports[t]}/`;
        await wrk(proxyUrl, c, t === 'direct' ? undefined : originUrl).catch(() => undefined);
        const cpu0 = pids[t] ? cpuSeconds(pids[t]!) : 0;
        http[t]![c] = await wrk(proxyUrl, c, t === 'direct' ? undefined : originUrl);
        if (pids[t])
          http[t]![c]!.cpuUsPerRequest = Math.round(
            ((cpuSeconds(pids[t]!) - cpu0) * 1e6) / (http[t]![c]!.rps * SECONDS),
          );
        console.log(`http   ${t.padEnd(10)} c=${String(c).padEnd(2)} ${fmt(http[t]![c]!)}`);
        tunnel[t]![c] = await tunnelLoad(t === 'direct' ? undefined : ports[t], originPort, c);
        console.log(`tunnel ${t.padEnd(10)} c=${String(c).padEnd(2)} ${fmt(tunnel[t]![c]!)}`);
      }
      if (present(t)) {
        const runs = [];
        for (let i = 0; i < 3; i++) runs.push(await bulk(t === 'direct' ? undefined : ports[t], bulkPort));
        bulkMBs[t] = runs.sort((a, b) => a - b)[1]!;
        console.log(
          `bulk   ${t.padEnd(10)} ${bulkMBs[t]!.toFixed(0)} MB/s (median of 3 × ${BULK_BYTES / 2 ** 20} MiB)`,
        );
      } else bulkMBs[t] = null;
    }

    const added = (kind: typeof http, t: Target, c: number, p: 'p50' | 'p99'): number | null => {
      const a = kind[t]?.[c];
      const d = kind.direct?.[c];
      return a && d ? Math.max(0, a[p] - d[p]) : null;
    };
    const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
      a && b ? a / b : null;
    const verdicts = {
      'http req/s at c=64, portcullis / squid (target >= 1.5)': ratio(
        http.portcullis?.[64]?.rps,
        http.squid?.[64]?.rps,
      ),
      'added p50 at c=1, portcullis - squid in ms (target <= 0)':
        added(http, 'portcullis', 1, 'p50') !== null && added(http, 'squid', 1, 'p50') !== null
          ? added(http, 'portcullis', 1, 'p50')! - added(http, 'squid', 1, 'p50')!
          : null,
      'tunnel req/s at c=64, portcullis / squid (target >= 1)': ratio(
        tunnel.portcullis?.[64]?.rps,
        tunnel.squid?.[64]?.rps,
      ),
      'tunnel req/s at c=1, portcullis / squid (target >= 1)': ratio(
        tunnel.portcullis?.[1]?.rps,
        tunnel.squid?.[1]?.rps,
      ),
      'bulk MB/s, portcullis / direct (target >= 0.9)': ratio(bulkMBs.portcullis, bulkMBs.direct),
      'http req/s at c=64, squid / direct': ratio(http.squid?.[64]?.rps, http.direct?.[64]?.rps),
      'http req/s at c=64, portcullis / direct': ratio(http.portcullis?.[64]?.rps, http.direct?.[64]?.rps),
      // The machine is shared: CPU per request says what a request costs whatever else runs.
      'proxy CPU per http request at c=64, portcullis (egress + PDP + sink) / squid': ratio(
        http.portcullis?.[64]?.cpuUsPerRequest,
        http.squid?.[64]?.cpuUsPerRequest,
      ),
    };
    console.log('\nratios (same run):');
    for (const [k, v] of Object.entries(verdicts)) console.log(`  ${k}: ${v === null ? 'not measured' : v.toFixed(3)}`);

    const flat = (kind: typeof http, f: (r: Run) => number): Chart['series'] =>
      targets.map((t) => ({ name: t, values: [1, 64].map((c) => (kind[t]?.[c] ? f(kind[t]![c]!) : null)) }));
    const proxies = targets.filter((t) => t !== 'direct');
    const charts: Chart[] = [
      {
        title: 'absolute-URI HTTP through the proxy: requests/s (higher is better)',
        unit: 'req/s',
        categories: ['concurrency 1', 'concurrency 64'],
        series: flat(http, (r) => r.rps),
        note: `wrk, keep-alive, ${SECONDS} s per cell; 'direct' is the origin without a proxy.`,
      },
      {
        title: 'added latency over direct, absolute-URI HTTP (lower is better)',
        unit: 'ms',
        categories: ['p50, c=1', 'p99, c=1', 'p50, c=64', 'p99, c=64'],
        series: proxies.map((t) => ({
          name: t,
          values: [
            added(http, t, 1, 'p50'),
            added(http, t, 1, 'p99'),
            added(http, t, 64, 'p50'),
            added(http, t, 64, 'p99'),
          ],
        })),
      },
      {
        title: 'requests inside CONNECT tunnels: requests/s (higher is better)',
        unit: 'req/s',
        categories: ['concurrency 1', 'concurrency 64'],
        series: flat(tunnel, (r) => r.rps),
        note:
          'one keep-alive tunnel per client connection, plain HTTP inside; direct = the same client straight ' +
          'to the origin.',
      },
      {
        title: 'tunnel bulk throughput (higher is better)',
        unit: 'MB/s',
        categories: [`${BULK_BYTES / 2 ** 20} MiB download`],
        series: targets.map((t) => ({ name: t, values: [bulkMBs[t] ?? null] })),
      },
    ];
    const out = writeReport(
      'egress',
      {
        seconds: SECONDS,
        bulkBytes: BULK_BYTES,
        http,
        tunnel,
        bulkMBs,
        ratios: verdicts,
        missing,
        notes:
          'portcullis: real PDP + audit sink processes, PDP decision cache off, every request audited (decision ' +
          'record acked before forwarding, closing record written after the response without delaying it). ' +
          'cpuUsPerRequest: user+system CPU of the proxy processes per request (portcullis counts egress + PDP ' +
          '+ sink).',
        loadAverageAtStart: loadAtStart,
      },
      charts,
    );
    console.log(`\nwrote ${out.json} and ${out.svg}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(r: Run): string {
  return (
    `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ` +
    `ms${r.cpuUsPerRequest === undefined ? '' : `  proxy CPU ${r.cpuUsPerRequest} µs/req`}`
  );
}

await main();
