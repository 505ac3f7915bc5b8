/**
 * One observability format for every daemon, checked on the real processes: the PDP, the audit
 * sink, the egress proxy and the vault agent each log only JSON lines on stderr ({time, level,
 * daemon, msg, …}), each announces itself with one "listening on …" line, and every metric a
 * daemon serves (the PDP and the proxy have metrics; the sink and the agent have none) is named
 * portcullis_….
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { isListeningLine } from '@portcullis/protocol';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');

interface Daemon {
  child: ChildProcess;
  stderr: string;
  stdout: string;
  listening: string;
  exited: Promise<number | null>;
}

function start(t: Test, args: string[]): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const d: Daemon = { child, stderr: '', stdout: '', listening: '', exited };
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (d.stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      d.stderr += s;
      const line = d.stderr.split('\n').find((l) => isListeningLine(l));
      if (line && !d.listening) {
        d.listening = line;
        resolve(d);
      }
    });
    void exited.then((code) => reject(new Error(`${args[0]} exited ${code}: ${d.stderr}`)));
  });
}

async function stop(d: Daemon): Promise<number | null> {
  d.child.kill('SIGTERM');
  return d.exited;
}

function metricNames(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^# (?:HELP|TYPE) (\S+)/.exec(line) ?? /^([^#\s{]+)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return [...names];
}

/** One request through the proxy, so that the request counters exist. 192.0.2.1 is TEST-NET-1. */
function viaProxy(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'GET', path: 'http://192.0.2.1/x', headers: { host: '192.0.2.1' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

t.test('every daemon logs JSON lines on stderr and names its metrics portcullis_…', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-obs-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'p.pol'), 'policy "obs" scope global {\n  allow fs.read when resource.path == "/x"\n}\n');
  const key = join(dir, 'audit.key');
  const keygen = spawn(process.execPath, [bin, 'audit', 'keygen', '--name', 'obs', '--out', key], { stdio: 'ignore' });
  tt.equal(await new Promise((r) => keygen.once('exit', r)), 0, 'audit keygen');

  const pdp = await start(tt, [
    'pdp',
    '--policy',
    join(dir, 'p.pol'),
    '--socket',
    join(dir, 'pdp.sock'),
    '--metrics',
    '127.0.0.1:0',
  ]);
  const sink = await start(tt, [
    'audit',
    'serve',
    '--dir',
    join(dir, 'log'),
    '--socket',
    join(dir, 'audit.sock'),
    '--key',
    key,
  ]);
  const egress = await start(tt, [
    'egress',
    '--listen',
    '127.0.0.1:0',
    '--pdp',
    join(dir, 'pdp.sock'),
    '--audit',
    join(dir, 'audit.sock'),
    '--principal',
    'agent-obs',
    '--metrics',
    '127.0.0.1:0',
  ]);
  const agent = await start(tt, ['vault', 'agent', '--socket', join(dir, 'agent', 'agent.sock')]);
  const proxyPort = Number(JSON.parse(egress.listening).port);
  tt.equal(await viaProxy(proxyPort), 403, 'a request the policy does not allow is denied');

  // The metrics URLs come from the log lines that announce them (the ports were chosen by the OS).
  const urls = [pdp.stderr, egress.stderr].map((text) => {
    const line = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { metrics?: string })
      .find((l) => typeof l.metrics === 'string');
    return line!.metrics!;
  });
  const scraped: string[] = [];
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    scraped.push(text);
    const names = metricNames(text);
    tt.ok(names.length >= 5, `${url} serves metrics (${names.length} names)`);
    tt.same(
      names.filter((n) => !n.startsWith('portcullis_')),
      [],
      `every metric at ${url} is named portcullis_…`,
    );
  }
  tt.match(scraped[0], /^portcullis_pdp_decisions_total\{decision="deny"\} [1-9]/m, 'the PDP counted the deny');
  tt.match(scraped[1], /^portcullis_egress_requests_total\{.*\} 1$/m, 'the proxy counted the request');

  for (const d of [agent, egress, sink, pdp]) tt.equal(await stop(d), 0, `${d.child.spawnargs[2]} stopped with exit 0`);
  for (const [name, d] of [
    ['pdp', pdp],
    ['audit', sink],
    ['egress', egress],
    ['vault-agent', agent],
  ] as const) {
    const lines = d.stderr.split('\n').filter((l) => l !== '');
    tt.ok(lines.length >= 2, `${name} logged its start and its stop`);
    const bad: string[] = [];
    for (const text of lines) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text);
      } catch {
        bad.push(text);
        continue;
      }
      const { time, level, daemon, msg } = line;
      const keys = Object.keys(line).slice(0, 4);
      if (
        keys.join() !== 'time,level,daemon,msg' ||
        typeof time !== 'string' ||
        Number.isNaN(Date.parse(time)) ||
        !['debug', 'info', 'warn', 'error'].includes(String(level)) ||
        daemon !== name ||
        typeof msg !== 'string'
      )
        bad.push(text);
    }
    tt.same(bad, [], `every line ${name} wrote to stderr is a log line of the one format`);
    tt.equal(lines.filter((l) => isListeningLine(l)).length, 1, `${name} says once that it is listening`);
    tt.equal(d.stdout, '', `${name} writes nothing but its log`);
  }
});
