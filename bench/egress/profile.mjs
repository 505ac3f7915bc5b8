// Profiling harness (not the benchmark): origin + real PDP + real audit sink + egress, then wrk.
//   node bench/egress/profile.mjs [--cpu-prof DIR] [--seconds N]
// Prints req/s, p50/p99 at c=1 and c=64 through the proxy and the CPU time each process (origin,
// PDP, sink, egress) spent per request; with --cpu-prof the egress process writes a .cpuprofile
// into DIR on exit (open it in Chrome DevTools). `--only 64` runs one concurrency.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, '..', '..', 'packages', 'cli', 'bin', 'portcullis.js');
const { values } = parseArgs({
  options: { 'cpu-prof': { type: 'string' }, seconds: { type: 'string', default: '5' }, only: { type: 'string' } },
});
const dir = mkdtempSync(join(tmpdir(), 'pcx-eprof-'));
const children = [];
function start(args, ready, nodeFlags = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const on = (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) resolve({ child, m });
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
}
const named = {};
// CPU seconds (user+system) a process has used so far, from /proc (Linux only).
const cpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
function wrk(port, originUrl, c) {
  const script = join(dir, 'w.lua');
  writeFileSync(
    script,
    `wrk.headers["Host"] = "${new URL(originUrl).host}"\nrequest = function() return wrk.format("GET", ` +
      `"${originUrl}") end\n`,
  );
  const before = Object.fromEntries(Object.entries(named).map(([k, ch]) => [k, cpu(ch.pid)]));
  const out = execFileSync(
    'wrk',
    ['-t1', `-c${c}`, `-d${values.seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)[1];
  const p50 = /\s50%\s+(\S+)/.exec(out)[1];
  const p99 = /\s99%\s+(\S+)/.exec(out)[1];
  const bad = /Non-2xx.*|Socket errors.*/.exec(out)?.[0] ?? '';
  const n = Number(rps) * Number(values.seconds);
  const per = Object.entries(named)
    .map(([k, ch]) => `${k} ${((1e6 * (cpu(ch.pid) - before[k])) / n).toFixed(0)}`)
    .join(', ');
  return `c=${c} ${rps} req/s p50 ${p50} p99 ${p99} ${bad}\n    CPU µs/request: ${per}`;
}
try {
  const origin = await start([join(here, 'origin.mjs')], /\{"http":(\d+)/);
  named.origin = origin.child;
  const originPort = Number(origin.m[1]);
  writeFileSync(
    join(dir, 'p.pol'),
    `policy "bench" scope global {\n  allow net.http, net.connect when resource.ip in ["127.0.0.1/32"] and ` +
      `resource.port in [${originPort}] because "the benchmark origin"\n}\n`,
  );
  spawnSync(process.execPath, [bin, 'audit', 'keygen', '--name', 'bench', '--out', join(dir, 'audit.key')]);
  named.pdp = (
    await start([bin, 'pdp', '--policy', join(dir, 'p.pol'), '--socket', join(dir, 'pdp.sock')], /listening on/)
  ).child;
  named.audit = (
    await start(
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
    )
  ).child;
  const flags = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [];
  const eg = await start(
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
    flags,
  );
  const port = Number(eg.m[1]);
  named.egress = eg.child;
  const url = `http://127.0.0.1:${originPort}/`;
  const cs = values.only ? [Number(values.only)] : [1, 64];
  for (const c of cs) {
    wrk(port, url, c);
    console.log(wrk(port, url, c));
  }
  // SIGINT lets the egress command close cleanly so that --cpu-prof writes its profile.
  eg.child.kill('SIGINT');
  await new Promise((r) => eg.child.once('exit', r));
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  rmSync(dir, { recursive: true, force: true });
}
