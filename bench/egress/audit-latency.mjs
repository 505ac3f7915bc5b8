// How long an audit append takes to be acknowledged: AuditClient against a real
// `portcullis audit serve`, at concurrency 1 and 64, with records shaped like the proxy's.
//   node bench/egress/audit-latency.mjs [--seconds N] [--connections N] [--only 1|64] [--sink-prof DIR]
//   (needs a build)
// Prints appends/s, p50/p99 ack latency and the sink's CPU time per append (from /proc).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AuditClient } from '../../packages/protocol/dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, '..', '..', 'packages', 'cli', 'bin', 'portcullis.js');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '2' },
    'sink-prof': { type: 'string' },
    only: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const dir = mkdtempSync(join(tmpdir(), 'pcx-audit-lat-'));
const cpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
let sink;
try {
  spawnSync(process.execPath, [bin, 'audit', 'keygen', '--name', 'bench', '--out', join(dir, 'audit.key')]);
  sink = spawn(
    process.execPath,
    [
      ...(values['sink-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['sink-prof']] : []),
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
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise((resolve, reject) => {
    let out = '';
    const on = (d) => {
      out += d;
      if (/listening on/.test(out)) resolve();
    };
    sink.stdout.on('data', on);
    sink.stderr.on('data', on);
    sink.on('exit', (c) => reject(new Error(`sink exited ${c}: ${out}`)));
  });
  const client = new AuditClient({ socketPath: join(dir, 'audit.sock'), connections: Number(values.connections) });
  const record = (i) => ({
    source: 'egress',
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    principal: { id: 'bench' },
    action: 'net.http',
    resource: { host: '127.0.0.1', port: 8080, method: 'GET', path: '/', scheme: 'http', ip: '127.0.0.1' },
    decision: 'allow',
    reasons: [{ effect: 'allow', policy: 'bench', rule: 'bench#1', because: 'the benchmark origin' }],
    outcome: { phase: 'decision', mode: 'enforce', enforced: true, forwarded: true },
  });
  let i = 0;
  for (const c of values.only ? [Number(values.only)] : [1, 64]) {
    // Warm-up, then measure.
    for (const measure of [false, true]) {
      const lat = [];
      const c0 = cpu(sink.pid);
      const deadline = performance.now() + (measure ? seconds : 1) * 1000;
      await Promise.all(
        Array.from({ length: c }, async () => {
          while (performance.now() < deadline) {
            const t = performance.now();
            await client.append(record(i++));
            lat.push(performance.now() - t);
          }
        }),
      );
      if (!measure) continue;
      lat.sort((a, b) => a - b);
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(3);
      const sinkUs = ((cpu(sink.pid) - c0) * 1e6) / lat.length;
      console.log(
        `c=${String(c).padEnd(2)} ${(lat.length / seconds).toFixed(0)} appends/s  ack p50 ${q(0.5)} ms  p99 ` +
          `${q(0.99)} ms  sink CPU ${sinkUs.toFixed(0)} µs/append`,
      );
    }
  }
  client.close();
} finally {
  sink?.kill('SIGTERM');
  await new Promise((r) => (sink?.exitCode === null ? sink.once('exit', r) : r()));
  rmSync(dir, { recursive: true, force: true });
}
