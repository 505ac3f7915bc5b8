/**
 * End to end: the real `portcullis pdp`, `portcullis audit serve` and `portcullis egress`
 * processes (the built bin), driven by real clients: curl, git (smart HTTP through the proxy,
 * and over a CONNECT tunnel to a TLS server) and Python requests. The only doubles are outside
 * services: origins, a git server and a DNS server on loopback.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { readRecords } from '@portcullis/audit';
import { missingTools, needs } from './helpers/tools.js';
import {
  canary,
  dnsDouble,
  gitBackendHandler,
  origin,
  tlsOrigin,
  type Canary,
  type DnsDouble,
  type Origin,
  type TlsOrigin,
} from '../packages/egress/test/fixtures.js';
import { bin, type Daemon, daemon, run, stop, stopAll } from './daemons.js';

const POLICY = `
policy "egress-e2e" scope global {
  allow net.http, net.connect
    when resource.host in ["allowed.test", "127.0.0.1"] and resource.ip in ["127.0.0.1/32"] and resource.port in PORTS
    because "the test origins"
  deny net.http, net.connect when resource.host == "denied.test" because "denied.test is off limits"
  ask net.http when resource.host == "ask.test" because "needs a human"
}
policy "s-1" scope session "s-1" {
  allow net.http when resource.host == "s1.test" and resource.port in PORTS because "session s-1's origin"
}
policy "s-42" scope session "s-42" {
  allow net.http, net.connect when resource.host == "s42.test" and resource.port in PORTS
    because "session s-42's origin"
}
`;

let dir: string;
let web: Origin;
let tls: TlsOrigin;
let bad: Canary;
let dns: DnsDouble;
let gitHttp: Server;
let gitHttps: Server;
let gitHttpPort = 0;
let gitHttpsPort = 0;
let proxyPort: number;
let pdp: Daemon;
let sink: Daemon;
let egress: Daemon;
let logDir: string;

async function serveGit(): Promise<void> {
  const repos = join(dir, 'repos');
  mkdirSync(repos);
  const work = join(dir, 'work');
  const git = (args: string[], cwd: string) =>
    run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
      env: { GIT_CONFIG_NOSYSTEM: '1', HOME: dir },
    });
  mkdirSync(work);
  await git(['init', '-q'], work);
  writeFileSync(join(work, 'README'), 'hello through the proxy\n');
  await git(['add', 'README'], work);
  await git(['commit', '-q', '-m', 'first'], work);
  await git(['clone', '-q', '--bare', work, join(repos, 'demo.git')], dir);
  gitHttp = createHttpServer(gitBackendHandler(repos));
  await new Promise<void>((r) => gitHttp.listen(0, '127.0.0.1', r));
  gitHttpPort = (gitHttp.address() as AddressInfo).port;
  const certDir = dirname(tls.certFile);
  gitHttps = createHttpsServer(
    { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(tls.certFile) },
    gitBackendHandler(repos),
  );
  await new Promise<void>((r) => gitHttps.listen(0, '127.0.0.1', r));
  gitHttpsPort = (gitHttps.address() as AddressInfo).port;
}

// Every test here goes through the TLS origin (its certificate comes from openssl); the git
// server is set up only when git is installed. Each test names the client it drives (needs()).
t.before(async () => {
  if (missingTools('openssl')) return;
  dir = mkdtempSync(join(tmpdir(), 'pcx-egress-e2e-'));
  web = await origin();
  tls = await tlsOrigin();
  bad = await canary('127.0.0.1');
  dns = await dnsDouble((name, type) =>
    type === 'A' && ['allowed.test', 'denied.test', 'ask.test', 's1.test', 's42.test'].includes(name)
      ? ['127.0.0.1']
      : [],
  );

  // A bare repository with one commit, served over smart HTTP and over HTTPS.
  if (!missingTools('git')) await serveGit();
  writeFileSync(
    join(dir, 'policy.pol'),
    POLICY.replaceAll('PORTS', `[${web.port}, ${tls.port}, ${gitHttpPort}, ${gitHttpsPort}]`),
  );
  const key = join(dir, 'audit.key');
  const kg = await run(process.execPath, [bin, 'audit', 'keygen', '--name', 'e2e', '--out', key]);
  if (kg.code !== 0) throw new Error(kg.stderr);
  logDir = join(dir, 'log');
  pdp = await daemon(['pdp', '--policy', join(dir, 'policy.pol'), '--socket', join(dir, 'pdp.sock')], /listening on/);
  sink = await daemon(
    ['audit', 'serve', '--dir', logDir, '--socket', join(dir, 'audit.sock'), '--key', key],
    /listening on/,
  );
  const e = await daemon(
    [
      'egress',
      '--listen',
      '127.0.0.1:0',
      '--pdp',
      join(dir, 'pdp.sock'),
      '--audit',
      join(dir, 'audit.sock'),
      '--principal',
      'agent-7',
      '--project',
      'alpha',
      '--session',
      's-1',
      '--allow-cidr',
      '127.0.0.0/8',
      '--dns',
      `127.0.0.1:${dns.port}`,
    ],
    /listening on 127\.0\.0\.1:(\d+)/,
  );
  egress = e;
  proxyPort = Number(e.match![1]);
});

t.teardown(async () => {
  await stopAll();
  await Promise.all([
    web?.close(),
    tls?.close(),
    bad?.close(),
    dns?.close(),
    gitHttp && new Promise((r) => gitHttp.close(r)),
    gitHttps && new Promise((r) => gitHttps.close(r)),
  ]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const proxyUrl = (): string => `http://127.0.0.1:${proxyPort}`;

t.test(
  'curl: allowed http, allowed https (CONNECT), denied with the rule and its because',
  needs('openssl', 'curl'),
  async (tt) => {
    const a = await run('curl', ['-sS', '--proxy', proxyUrl(), `http://allowed.test:${web.port}/e2e`]);
    tt.equal(a.code, 0, a.stderr);
    tt.match(a.stdout, /hello from origin GET \/e2e/);
    const b = await run('curl', [
      '-sS',
      '--proxy',
      proxyUrl(),
      '--cacert',
      tls.certFile,
      `https://allowed.test:${tls.port}/e2e`,
    ]);
    tt.equal(b.code, 0, b.stderr);
    tt.match(b.stdout, /hello over tls \/e2e/);
    const c = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://denied.test:${web.port}/`]);
    tt.match(c.stdout, /^HTTP\/1\.1 403/);
    tt.match(c.stdout, /x-portcullis-reason: egress-e2e#\d+: denied\.test is off limits/i);
    const d = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://allowed.test:${bad.port}/`]);
    tt.match(d.stdout, /^HTTP\/1\.1 403/, 'a port the policy does not list is denied');
    const e = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://ask.test:${web.port}/`]);
    tt.match(e.stdout, /"decision":"ask"/);
    tt.equal(bad.connections, 0);
  },
);

t.test('git clone over smart HTTP through the proxy (http.proxy)', needs('openssl', 'git'), async (tt) => {
  const dest = join(dir, 'clone-http');
  const r = await run(
    'git',
    ['-c', `http.proxy=${proxyUrl()}`, 'clone', '-q', `http://allowed.test:${gitHttpPort}/demo.git`, dest],
    { env: { GIT_CONFIG_NOSYSTEM: '1', HOME: dir } },
  );
  tt.equal(r.code, 0, r.stderr);
  tt.equal(readFileSync(join(dest, 'README'), 'utf8'), 'hello through the proxy\n');
});

t.test('git clone over HTTPS through a CONNECT tunnel', needs('openssl', 'git'), async (tt) => {
  const dest = join(dir, 'clone-https');
  const r = await run(
    'git',
    ['-c', `http.proxy=${proxyUrl()}`, 'clone', '-q', `https://allowed.test:${gitHttpsPort}/demo.git`, dest],
    { env: { GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_SSL_CAINFO: tls.certFile } },
  );
  tt.equal(r.code, 0, r.stderr);
  tt.equal(readFileSync(join(dest, 'README'), 'utf8'), 'hello through the proxy\n');
});

t.test('git clone from a denied host fails with the 403', needs('openssl', 'git'), async (tt) => {
  const r = await run(
    'git',
    [
      '-c',
      `http.proxy=${proxyUrl()}`,
      'clone',
      '-q',
      `http://denied.test:${gitHttpPort}/demo.git`,
      join(dir, 'clone-denied'),
    ],
    { env: { GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_TERMINAL_PROMPT: '0' } },
  );
  tt.not(r.code, 0);
  tt.match(r.stderr, /403/);
  tt.notOk(existsSync(join(dir, 'clone-denied', 'README')));
});

t.test('Python requests through HTTP_PROXY/HTTPS_PROXY', needs('openssl', 'python3-requests'), async (tt) => {
  const script =
    'import requests,sys\nr=requests.get(sys.argv[1],timeout=10,verify=sys.argv[2])\nprint(r.status_code, ' +
    'r.text.strip())\nr=requests.get(sys.argv[3],timeout=10)\nprint(r.status_code, ' +
    'r.headers.get("x-portcullis-reason"))';
  const r = await run(
    'python3',
    ['-c', script, `https://allowed.test:${tls.port}/py`, tls.certFile, `http://denied.test:${web.port}/py`],
    { env: { HTTP_PROXY: proxyUrl(), HTTPS_PROXY: proxyUrl(), NO_PROXY: '' } },
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^200 hello over tls \/py\n403 egress-e2e#\d+: denied\.test is off limits/);
});

t.test(
  "curl -U s-42: cannot get session s-42's allows: 407, nothing forwarded; the configured s-1 stands",
  needs('openssl', 'curl'),
  async (tt) => {
    const before = web.requests.length;
    const plain = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://s42.test:${web.port}/s42`]);
    tt.match(plain.stdout, /^HTTP\/1\.1 403 /, 'without a claim: the configured session s-1, which has no such allow');
    const claimed = await run('curl', [
      '-sS',
      '-i',
      '--proxy',
      proxyUrl(),
      '-U',
      's-42:',
      `http://s42.test:${web.port}/s42`,
    ]);
    tt.match(claimed.stdout, /^HTTP\/1\.1 407 Proxy Authentication Required: PCX_IDENTITY_UNPROVEN: session "s-42" is/);
    tt.match(claimed.stdout, /^[^\r]* claimed without an identity token \(the configured session is "s-1"\)/);
    tt.match(claimed.stdout, /\r\nx-portcullis-code: PCX_IDENTITY_UNPROVEN\r\n/i);
    tt.match(claimed.stdout, /\r\nx-portcullis-reason: session "s-42" is claimed without an identity token/i);
    tt.match(claimed.stdout, /"error":\{"code":"PCX_IDENTITY_UNPROVEN","message":"session \\"s-42\\" is claimed/);
    const lease = `${Buffer.from('{"alg":"EdDSA","typ":"pcx-lease+jwt"}').toString('base64url')}.e30.c2ln`;
    const withLease = await run('curl', [
      '-sS',
      '-i',
      '--proxy',
      proxyUrl(),
      '-U',
      `s-42:${lease}`,
      `http://s42.test:${web.port}/s42`,
    ]);
    tt.match(withLease.stdout, /^HTTP\/1\.1 407 .*PCX_IDENTITY_UNPROVEN/, 'a lease is no proof of a session');
    const ignored = await run('curl', [
      '-sS',
      '-i',
      '--proxy',
      proxyUrl(),
      '-U',
      `s-1:${lease}`,
      `http://s42.test:${web.port}/`,
    ]);
    const reason = /\r\nx-portcullis-reason: ([^\r]*)\r\n/i.exec(ignored.stdout)?.[1];
    tt.match(
      reason,
      /^default deny: no rule allows net\.http to s42\.test:\d+; lease "[^"]+" ignored: \w+$/,
      'a lease the PDP ignored says why in the reason header',
    );
    const tunnel = await run('curl', [
      '-sS',
      '-v',
      '--proxy',
      proxyUrl(),
      '-U',
      's-42:',
      `https://s42.test:${tls.port}/s42`,
    ]);
    tt.not(tunnel.code, 0);
    tt.match(tunnel.stderr, /< HTTP\/1\.1 407 Proxy Authentication Required: PCX_IDENTITY_UNPROVEN: session "s-42"/);
    tt.equal(web.requests.length, before, 'the origin saw nothing');
    const own = await run('curl', ['-sS', '--proxy', proxyUrl(), '-U', 's-1:', `http://s1.test:${web.port}/s1`]);
    tt.match(own.stdout, /hello from origin GET \/s1/, 'claiming the configured session changes nothing');
    const none = await run('curl', ['-sS', '--proxy', proxyUrl(), `http://s1.test:${web.port}/s1-bare`]);
    tt.match(none.stdout, /hello from origin GET \/s1-bare/);
    await new Promise((r) => setTimeout(r, 300));
    const refused = [...readRecords(logDir)].filter((r) => r.source === 'egress' && r.outcome?.status === 407);
    tt.ok(refused.length >= 3, 'the refusals are audited');
    for (const r of refused) tt.equal(r.context?.session, 's-1', 'with the configured session');
  },
);

t.test(
  'a denied HTTPS client sees the rule in the status line: curl, Python requests, git',
  needs('openssl', 'curl'),
  async (tt) => {
    const rule = /403 Forbidden: egress-e2e#\d+: denied\.test is off limits/;
    const c = await run('curl', ['-sS', '-v', '--proxy', proxyUrl(), `https://denied.test:${tls.port}/`]);
    tt.not(c.code, 0);
    tt.match(c.stderr, new RegExp(`< HTTP/1\\.1 ${rule.source}`), 'curl -v shows the CONNECT status line');
    const h = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://denied.test:${web.port}/`]);
    tt.match(h.stdout, new RegExp(`^HTTP/1\\.1 ${rule.source}\r\n`), 'plain HTTP too');
    tt.test('Python requests', needs('python3-requests'), async (ttt) => {
      const r = await run(
        'python3',
        [
          '-c',
          'import requests,sys\ntry:\n  requests.get(sys.argv[1],timeout=10)\nexcept Exception as e:\n  print(e)',
          `https://denied.test:${tls.port}/py`,
        ],
        { env: { HTTPS_PROXY: proxyUrl(), NO_PROXY: '' } },
      );
      ttt.match(r.stdout, new RegExp(`Tunnel connection failed: ${rule.source}`));
    });
    tt.test('git', needs('git'), async (ttt) => {
      const r = await run(
        'git',
        ['-c', `http.proxy=${proxyUrl()}`, 'ls-remote', `https://denied.test:${gitHttpsPort}/demo.git`],
        { env: { GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_TERMINAL_PROMPT: '0', GIT_CURL_VERBOSE: '1' } },
      );
      ttt.not(r.code, 0);
      // git's own message is libcurl's ("CONNECT tunnel failed, response 403"); GIT_CURL_VERBOSE shows the line.
      ttt.match(r.stderr, rule);
    });
  },
);

t.test(
  'every request and tunnel is in the audit log: decision and closing records, linked by event_id',
  needs('openssl', 'curl'),
  async (tt) => {
    await new Promise((r) => setTimeout(r, 300));
    const records = [...readRecords(logDir)];
    const egressRecords = records.filter((r) => r.source === 'egress');
    // At least the curl test's own: five decisions (allow, tunnel, deny, denied port, ask) and two closes.
    tt.ok(egressRecords.length >= 7, `${egressRecords.length} records`);
    const decisions = egressRecords.filter((r) => (r.outcome as { phase?: string }).phase === 'decision');
    const closes = egressRecords.filter((r) => (r.outcome as { phase?: string }).phase === 'close');
    for (const c of closes)
      tt.ok(
        decisions.some((d) => d.event_id === c.event_id),
        `close ${c.event_id} has its decision record`,
      );
    const denied = decisions.find((d) => d.resource.host === 'denied.test')!;
    tt.equal(denied.decision, 'deny');
    tt.equal(denied.reasons[0]?.because, 'denied.test is off limits');
    tt.match(denied.reasons[0]?.source ?? '', /policy\.pol:\d+:\d+/);
    const tunnel = closes.find(
      (c) => c.action === 'net.connect' && (c.outcome as { bytes_down?: number }).bytes_down! > 0,
    );
    tt.ok(tunnel, 'a tunnel closing record with bytes');
    tt.equal(decisions.find((d) => d.resource.path === '/e2e')?.context?.project, 'alpha');
  },
);

t.test('the audit sink down: 503 and nothing forwarded; the PDP down: 503', needs('openssl', 'curl'), async (tt) => {
  const before = web.requests.length;
  await stop(sink);
  const r = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://allowed.test:${web.port}/while-sink-down`]);
  tt.match(r.stdout, /^HTTP\/1\.1 503/);
  tt.match(r.stdout, /PCX_EGRESS_AUDIT_UNAVAILABLE/);
  await stop(pdp);
  const s = await run('curl', ['-sS', '-i', '--proxy', proxyUrl(), `http://allowed.test:${web.port}/while-pdp-down`]);
  tt.match(s.stdout, /^HTTP\/1\.1 503/);
  tt.match(s.stdout, /PCX_PDP_UNAVAILABLE/);
  tt.equal(web.requests.length, before, 'the origin saw nothing');
  tt.equal(egress.child.exitCode, null, 'the proxy is still running');
});
