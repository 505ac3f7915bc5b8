/**
 * The bypass suite: every way around the proxy we know of, over real sockets. Each case ends by
 * asserting that no byte reached a destination it must not reach (the canaries count
 * connections), and most also that the origin saw nothing when the answer was a refusal.
 */
import t, { type Test } from 'tap';
import { rawExchange, statusOf } from './fixtures.js';
import { curl, proxyFor, settle, world, type World } from './harness.js';
import type { EgressProxy } from '../src/index.js';
import { missingTools, needs, type Tool } from '../../../test/helpers/tools.js';

let w: World;
let proxy: EgressProxy; // loopback opted out of the floor
let strict: EgressProxy; // the floor as shipped
let report: EgressProxy; // report-only mode

// The world's TLS origin gets its certificate from openssl; without it every case is skipped.
t.before(async () => {
  if (missingTools('openssl')) return;
  w = await world();
  proxy = await proxyFor(w);
  strict = await proxyFor(w, { allowLoopback: false });
  report = await proxyFor(w, { mode: 'report' });
});
t.teardown(async () => {
  await w?.close();
});

/** Every case ends by checking that the canaries were never reached. `tools`: the clients it drives. */
function bypass(name: string, ...args: [(tt: Test) => Promise<void>] | [Tool[], (tt: Test) => Promise<void>]): void {
  const [tools, fn] = args.length === 1 ? [[], args[0]] : args;
  t.test(name, needs('openssl', ...tools), async (tt) => {
    await fn(tt);
    await settle(20);
    tt.equal(w.canary.connections, 0, 'nothing connected to the canary (denied port)');
    tt.equal(w.canary2.connections, 0, 'nothing connected to the canary at 127.0.0.2 (unchecked address)');
  });
}

const get = (p: EgressProxy, url: string, host?: string, extra = ''): Promise<string> =>
  rawExchange(
    p.address.port,
    `GET ${url} HTTP/1.1\r\nHost: ${host ?? new URL(url).host}\r\n${extra}Connection: close\r\n\r\n`,
  );

const connectTo = (p: EgressProxy, authority: string, extra = ''): Promise<string> =>
  rawExchange(p.address.port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extra}\r\n`, { ms: 800 });

function lastDecisionHost(): unknown {
  return w.decisions.at(-1)?.resource.host;
}

bypass('allowed absolute-URI GET through curl reaches the origin', ['curl'], async (tt) => {
  const before = w.origin.requests.length;
  const r = await curl([
    '--proxy',
    `http://127.0.0.1:${proxy.address.port}`,
    `http://allowed.test:${w.origin.port}/hello?x=1`,
  ]);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /hello from origin GET \/hello\?x=1/);
  tt.equal(w.origin.requests.length, before + 1);
  tt.equal(w.decisions.at(-1)?.action, 'net.http');
  tt.same(w.decisions.at(-1)?.resource, {
    host: 'allowed.test',
    port: w.origin.port,
    method: 'GET',
    path: '/hello',
    scheme: 'http',
    ip: '127.0.0.1',
  });
});

bypass('an explicit deny is 403 with JSON and X-Portcullis-Reason naming the rule and its because', async (tt) => {
  const before = w.origin.connections;
  const r = await get(proxy, `http://denied.test:${w.origin.port}/`);
  tt.equal(statusOf(r), 403);
  tt.match(r, /x-portcullis-reason: test#1: denied\.test is off limits/i);
  const body = JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4));
  tt.equal(body.decision, 'deny');
  tt.equal(body.reasons[0].rule, 'test#1');
  tt.equal(w.origin.connections, before, 'the origin saw no connection');
});

bypass('the default deny says so', async (tt) => {
  const r = await get(proxy, `http://127.0.0.1:${w.canary.port}/`);
  tt.equal(statusOf(r), 403);
  tt.match(r, /x-portcullis-reason: default deny: no rule allows net\.http to 127\.0\.0\.1:\d+/i);
});

bypass('ask is 403 with decision ask and what to request', async (tt) => {
  const before = w.origin.connections;
  const r = await get(proxy, `http://ask.test:${w.origin.port}/x`);
  tt.equal(statusOf(r), 403);
  const body = JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4));
  tt.equal(body.decision, 'ask');
  tt.equal(body.request.action, 'net.http');
  tt.equal(body.request.resource.host, 'ask.test');
  tt.equal(w.origin.connections, before);
});

for (const spelling of [
  '127.1',
  '2130706433',
  '0x7f.0.0.1',
  '0177.0.0.1',
  '0x7f.1',
  '127.0.0.1.',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '127.0.1',
]) {
  bypass(`IP spelling ${spelling} is canonicalised before the PDP sees it`, async (tt) => {
    const r = await get(proxy, `http://${spelling}:${w.canary.port}/`, `${spelling}:${w.canary.port}`);
    tt.equal(statusOf(r), 403);
    const seen = lastDecisionHost();
    tt.equal(seen, spelling === '127.0.1' ? '127.0.0.1' : '127.0.0.1', 'the PDP saw the canonical address');
    tt.equal(w.decisions.at(-1)?.resource.ip, '127.0.0.1');
  });
}

bypass('a decimal spelling of an allowed address is allowed as that address', async (tt) => {
  const r = await get(proxy, `http://2130706433:${w.origin.port}/`, `2130706433:${w.origin.port}`);
  tt.equal(statusOf(r), 200);
  tt.equal(lastDecisionHost(), '127.0.0.1');
});

bypass('case and a trailing dot are canonicalised before the PDP sees the name', async (tt) => {
  const r = await get(proxy, `http://ALLOWED.Test.:${w.origin.port}/case`, `Allowed.TEST:${w.origin.port}`);
  tt.equal(statusOf(r), 200);
  tt.equal(lastDecisionHost(), 'allowed.test');
});

bypass('raw non-ASCII in the request line is refused (clients send IDNs as punycode)', async (tt) => {
  const r = await get(proxy, `http://b\u00fccher.test:${w.canary.port}/`, `xn--bcher-kva.test:${w.canary.port}`);
  tt.equal(statusOf(r), 400);
});

for (const [name, addr] of [
  ['loopback literal', '127.0.0.1'],
  ['a name resolving to loopback', 'allowed.test'],
  ['cloud metadata', '169.254.169.254'],
  ['AWS IPv6 metadata', '[fd00:ec2::254]'],
  ['Alibaba metadata', '100.100.100.200'],
  ['unspecified', '0.0.0.0'],
  ['IPv6 unspecified', '[::]'],
  ['IPv6 loopback', '[::1]'],
  ['IPv6 link-local with zone id', '[fe80::1%25eth0]'],
  ['NAT64 embedding loopback', '[64:ff9b::7f00:1]'],
  ['6to4 embedding loopback', '[2002:7f00:1::]'],
  ['IPv4-compatible loopback', '[::127.0.0.1]'],
  ['octal loopback', '0177.0.0.01'],
] as const) {
  bypass(`floor refuses ${name} (${addr}) without asking the PDP`, async (tt) => {
    const before = w.decisions.length;
    const originBefore = w.origin.connections;
    const r = await get(strict, `http://${addr}:${w.origin.port}/`, `${addr}:${w.origin.port}`);
    tt.equal(statusOf(r), 403);
    tt.match(r, /x-portcullis-reason: floor: /i);
    tt.equal(w.decisions.length, before, 'the PDP was not asked');
    tt.equal(w.origin.connections, originBefore);
  });
}

bypass('the proxy refuses to connect to itself, even with loopback opted out', async (tt) => {
  const r = await get(proxy, `http://127.0.0.1:${proxy.address.port}/`);
  tt.equal(statusOf(r), 403);
  tt.match(r, /x-portcullis-reason: floor:self/i);
  const c = await connectTo(proxy, `127.0.0.1:${proxy.address.port}`);
  tt.equal(statusOf(c), 403);
});

for (const [name, url, host] of [
  ['brackets around a name', 'http://[allowed.test]:PORT/', '[allowed.test]:PORT'],
  ['user info in the URL', 'http://allowed.test:PORT@127.0.0.1:CANARY/', 'allowed.test:PORT'],
  ['a percent-encoded host', 'http://%61llowed.test:PORT/', 'allowed.test:PORT'],
  ['an unconvertible IDN', 'http://xn--zz.test:PORT/', 'xn--zz.test:PORT'],
  ['an empty label', 'http://allowed..test:PORT/', 'allowed..test:PORT'],
  ['a bad port', 'http://allowed.test:99999/', 'allowed.test:99999'],
] as const) {
  bypass(`refuses ${name} with 400 and a PCX code`, async (tt) => {
    const before = w.origin.connections;
    const fill = (s: string): string =>
      s.replaceAll('PORT', String(w.origin.port)).replaceAll('CANARY', String(w.canary.port));
    const r = await rawExchange(
      proxy.address.port,
      `GET ${fill(url)} HTTP/1.1\r\nHost: ${fill(host)}\r\nConnection: close\r\n\r\n`,
    );
    tt.equal(statusOf(r), 400);
    tt.match(r, /"code":"PCX_EGRESS_/);
    tt.equal(w.origin.connections, before);
  });
}

bypass("the proxy's other endpoints (the metrics port) are refused like the proxy itself", async (tt) => {
  const withMetrics = await proxyFor(w, { selfEndpoints: [{ host: '127.0.0.1', port: w.origin.port }] });
  const before = w.origin.connections;
  const r = await get(withMetrics, `http://allowed.test:${w.origin.port}/`);
  tt.equal(statusOf(r), 403);
  tt.match(r, /x-portcullis-reason: floor:self/i);
  tt.equal(w.origin.connections, before);
});

bypass('port smuggling evil:443.allowed in CONNECT is refused', async (tt) => {
  const r = await connectTo(proxy, `127.0.0.1:${w.canary.port}.allowed.test:${w.tls.port}`);
  tt.equal(statusOf(r), 400);
  tt.match(r, /PCX_EGRESS_BAD_HOST/);
});

bypass('a Host header that differs from the target is refused', async (tt) => {
  const before = w.origin.connections;
  const r = await get(proxy, `http://allowed.test:${w.origin.port}/`, `127.0.0.1:${w.canary.port}`);
  tt.equal(statusOf(r), 400);
  tt.match(r, /PCX_EGRESS_HOST_MISMATCH/);
  tt.equal(w.origin.connections, before);
});

bypass('TRACE is refused', async (tt) => {
  const before = w.origin.connections;
  const r = await rawExchange(
    proxy.address.port,
    `TRACE http://allowed.test:${w.origin.port}/ HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\nConnection: ` +
      `close\r\n\r\n`,
  );
  tt.equal(statusOf(r), 405);
  tt.equal(w.origin.connections, before);
});

bypass('origin-form and https:// targets are refused: this is a forward proxy', async (tt) => {
  const a = await rawExchange(
    proxy.address.port,
    `GET / HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\nConnection: close\r\n\r\n`,
  );
  tt.equal(statusOf(a), 400);
  const b = await rawExchange(
    proxy.address.port,
    `GET https://allowed.test:${w.tls.port}/ HTTP/1.1\r\nHost: allowed.test:${w.tls.port}\r\nConnection: close\r\n\r\n`,
  );
  tt.equal(statusOf(b), 400);
  tt.match(b, /CONNECT/);
});

bypass('redirects are passed to the client, never followed', async (tt) => {
  const before = w.origin.requests.length;
  const r = await get(proxy, `http://allowed.test:${w.origin.port}/redirect`);
  tt.equal(statusOf(r), 302);
  tt.equal(w.origin.requests.length, before + 1, 'one request upstream, no follow-up');
});

bypass('hop-by-hop headers are stripped both ways', async (tt) => {
  const r = await get(
    proxy,
    `http://allowed.test:${w.origin.port}/hop`,
    undefined,
    'Connection: x-private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic ' +
      'cy0xOg==\r\nProxy-Foo: 1\r\nX-Kept: yes\r\n',
  );
  tt.equal(statusOf(r), 200);
  const seen = w.origin.requests.at(-1)!.headers;
  tt.equal(seen['x-kept'], 'yes');
  for (const h of ['x-private', 'keep-alive', 'te', 'proxy-authorization', 'proxy-foo'])
    tt.equal(seen[h], undefined, `${h} not forwarded`);
  tt.notMatch(r, /x-secret-hop/i, 'a response header named in Connection is not passed back');
});

bypass('a WebSocket upgrade through an absolute URI is refused', async (tt) => {
  const before = w.origin.connections;
  const r = await rawExchange(
    proxy.address.port,
    `GET http://allowed.test:${w.origin.port}/ws HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\nConnection: ` +
      `Upgrade\r\nUpgrade: websocket\r\n\r\n`,
  );
  tt.equal(statusOf(r), 501);
  tt.equal(w.origin.connections, before);
});

bypass('slowloris: a head that never completes is cut off by the header timeout', async (tt) => {
  const started = Date.now();
  const parts = [
    `GET http://127.0.0.1:${w.canary.port}/ HTTP/1.1\r\n`,
    'X-A: 1\r\n',
    'X-B: 1\r\n',
    'X-C: 1\r\n',
    'X-D: 1\r\n',
    'X-E: 1\r\n',
    'X-F: 1\r\n',
  ];
  const r = await rawExchange(proxy.address.port, parts, { gapMs: 400, ms: 5000 });
  const elapsed = Date.now() - started;
  tt.ok(elapsed < 4000, `closed after ${elapsed} ms`);
  tt.match(statusOf(r), /^(408|0)$/, 'a 408 or a plain close');
});

bypass('oversized headers get 431', async (tt) => {
  const r = await get(proxy, `http://allowed.test:${w.origin.port}/`, undefined, `X-Big: ${'a'.repeat(20_000)}\r\n`);
  tt.equal(statusOf(r), 431);
});

for (const [name, head] of [
  ['Content-Length with Transfer-Encoding', 'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n'],
  ['conflicting Content-Length headers', 'Content-Length: 5\r\nContent-Length: 40\r\n'],
  ['an obfuscated Transfer-Encoding', 'Transfer-Encoding: xchunked\r\n'],
] as const) {
  bypass(`request smuggling: ${name} is refused`, async (tt) => {
    const before = w.origin.requests.length;
    const smuggled = `GET http://127.0.0.1:${w.canary.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${w.canary.port}\r\n\r\n`;
    const r = await rawExchange(
      proxy.address.port,
      `POST http://allowed.test:${w.origin.port}/ HTTP/1.1\r\nHost: ` +
        `allowed.test:${w.origin.port}\r\n${head}\r\n0\r\n\r\n${smuggled}`,
    );
    tt.equal(statusOf(r), 400);
    tt.equal(w.origin.requests.length, before, 'nothing forwarded');
  });
}

bypass('pipelined requests to different hosts are each decided', async (tt) => {
  const one = `GET http://allowed.test:${w.origin.port}/one HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\n\r\n`;
  const two = `GET http://127.0.0.1:${w.canary.port}/two HTTP/1.1\r\nHost: 127.0.0.1:${w.canary.port}\r\n\r\n`;
  const three =
    `GET http://allowed.test:${w.origin.port}/three HTTP/1.1\r\nHost: ` +
    `allowed.test:${w.origin.port}\r\nConnection: close\r\n\r\n`;
  const r = await rawExchange(proxy.address.port, one + two + three);
  const statuses = [...r.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  tt.same(statuses, [200, 403, 200]);
  tt.match(r, /hello from origin GET \/one[\s\S]*hello from origin GET \/three/);
});

bypass('CONNECT through curl to a TLS origin (allowed)', ['curl'], async (tt) => {
  const before = w.tls.connections;
  const r = await curl([
    '--proxy',
    `http://127.0.0.1:${proxy.address.port}`,
    '--cacert',
    w.tls.certFile,
    `https://allowed.test:${w.tls.port}/secure`,
  ]);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /hello over tls \/secure/);
  tt.equal(w.tls.connections, before + 1);
  tt.same(w.decisions.at(-1)?.resource, { host: 'allowed.test', port: w.tls.port, ip: '127.0.0.1' });
  tt.equal(w.decisions.at(-1)?.action, 'net.connect');
});

bypass('CONNECT to a denied port of an allowed host is 403', ['curl'], async (tt) => {
  const r = await connectTo(proxy, `allowed.test:${w.canary.port}`);
  tt.equal(statusOf(r), 403);
  const c = await curl(['--proxy', `http://127.0.0.1:${proxy.address.port}`, `https://allowed.test:${w.canary.port}/`]);
  tt.not(c.code, 0);
  tt.match(c.stderr, /403/);
});

bypass('CONNECT to an IP spelling of the canary is 403', async (tt) => {
  const r = await connectTo(proxy, `0x7f.1:${w.canary.port}`);
  tt.equal(statusOf(r), 403);
  tt.equal(lastDecisionHost(), '127.0.0.1');
});

bypass('bytes sent right behind an allowed CONNECT go through the tunnel, after the check', async (tt) => {
  const inner = `GET /early HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\nConnection: close\r\n\r\n`;
  const r = await rawExchange(
    proxy.address.port,
    `CONNECT allowed.test:${w.origin.port} HTTP/1.1\r\nHost: allowed.test:${w.origin.port}\r\n\r\n${inner}`,
  );
  tt.match(r, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK/);
  tt.match(r, /hello from origin GET \/early/);
});

bypass('bytes sent right behind a denied CONNECT are never forwarded', async (tt) => {
  const r = await rawExchange(
    proxy.address.port,
    `CONNECT 127.0.0.1:${w.canary.port} HTTP/1.1\r\nHost: 127.0.0.1:${w.canary.port}\r\n\r\nGET /smuggled ` +
      `HTTP/1.1\r\n\r\n`,
  );
  tt.equal(statusOf(r), 403);
  tt.equal(w.canary.bytes, 0);
});

bypass('CONNECT without a port is 400', async (tt) => {
  const r = await connectTo(proxy, 'allowed.test');
  tt.equal(statusOf(r), 400);
});

bypass('DNS rebinding: each request resolves once and dials only what was checked', async (tt) => {
  const statuses: number[] = [];
  const queriesBefore = w.dns.queries.filter((q) => q === 'rebind.test A').length;
  for (let i = 0; i < 6; i++) statuses.push(statusOf(await get(proxy, `http://rebind.test:${w.origin.port}/r${i}`)));
  tt.same(statuses, [200, 403, 200, 403, 200, 403], 'the answers alternate between the origin and 127.0.0.2');
  const queries = w.dns.queries.filter((q) => q === 'rebind.test A').length - queriesBefore;
  tt.equal(queries, 6, 'one resolution per request, none after the check');
});

bypass('DNS answers with a denied and an allowed address: the denied one is dropped', async (tt) => {
  const before = w.decisions.length;
  const r = await get(proxy, `http://mixed.test:${w.origin.port}/m`);
  tt.equal(statusOf(r), 200);
  const asked = w.decisions.slice(before).map((d) => d.resource.ip);
  tt.same(asked.sort(), ['127.0.0.1', '127.0.0.2'], 'the PDP was asked about both addresses');
});

bypass('DNS answers with only denied addresses: deny', async (tt) => {
  const r = await get(proxy, `http://private.test:${w.origin.port}/`);
  tt.equal(statusOf(r), 403);
});

bypass('a name that does not resolve and that the policy denies gets the 403, not a 502', async (tt) => {
  const r = await get(proxy, `http://nowhere.test:${w.origin.port}/`);
  tt.equal(statusOf(r), 403);
  tt.same(
    w.decisions.at(-1)?.resource,
    { host: 'nowhere.test', port: w.origin.port, method: 'GET', path: '/', scheme: 'http' },
    'asked without an address',
  );
});

bypass('rebinding to loopback under the strict floor: refused before the PDP', async (tt) => {
  const r = await get(strict, `http://rebind.test:${w.origin.port}/`);
  tt.equal(statusOf(r), 403);
  tt.match(r, /floor/);
});

bypass('PDP unavailable: 503, nothing forwarded', async (tt) => {
  const before = w.origin.connections;
  w.pdp.down = true;
  try {
    const r = await get(proxy, `http://allowed.test:${w.origin.port}/`);
    tt.equal(statusOf(r), 503);
    tt.match(r, /PCX_PDP_UNAVAILABLE/);
    const c = await connectTo(proxy, `allowed.test:${w.tls.port}`);
    tt.equal(statusOf(c), 503);
  } finally {
    w.pdp.down = false;
  }
  tt.equal(w.origin.connections, before);
});

bypass('audit sink unavailable: 503, nothing forwarded', ['curl'], async (tt) => {
  const before = w.origin.connections;
  const tlsBefore = w.tls.connections;
  w.sink.down = true;
  try {
    const r = await get(proxy, `http://allowed.test:${w.origin.port}/`);
    tt.equal(statusOf(r), 503);
    tt.match(r, /PCX_EGRESS_AUDIT_UNAVAILABLE/);
    const c = await curl([
      '--proxy',
      `http://127.0.0.1:${proxy.address.port}`,
      '--cacert',
      w.tls.certFile,
      `https://allowed.test:${w.tls.port}/`,
    ]);
    tt.not(c.code, 0);
  } finally {
    w.sink.down = false;
  }
  tt.equal(w.origin.connections, before);
  tt.equal(w.tls.connections, tlsBefore);
});

bypass(
  'the decision record is acknowledged before the origin sees a byte; a closing record carries the totals',
  async (tt) => {
    w.sink.delayMs = 150;
    let originSawAt = 0;
    const before = w.origin.requests.length;
    const watcher = setInterval(() => {
      if (!originSawAt && w.origin.requests.length > before) originSawAt = performance.now();
    }, 1);
    try {
      const r = await get(proxy, `http://allowed.test:${w.origin.port}/big?n=12345`);
      tt.equal(statusOf(r), 200);
    } finally {
      clearInterval(watcher);
      w.sink.delayMs = 0;
    }
    await settle(200);
    const decision = w.records.findLast((x) => x.outcome.phase === 'decision' && x.resource.path === '/big')!;
    const close = w.records.find((x) => x.outcome.phase === 'close' && x.event_id === decision.event_id)!;
    tt.ok(decision && close, 'both records exist and share the event_id');
    const ackIndex = w.records.indexOf(decision);
    tt.ok(w.sink.ackedAt[ackIndex]! <= originSawAt, 'acknowledged before the origin received the request');
    tt.equal(close.outcome.status, 200);
    tt.equal(close.outcome.bytes_down, 12345);
    tt.equal(typeof close.outcome.duration_ms, 'number');
    tt.equal(decision.decision, 'allow');
    tt.same(
      decision.reasons.map((x) => x.rule),
      ['test#3'],
    );
  },
);

bypass('a tunnel produces decision and closing records with byte counts', ['curl'], async (tt) => {
  const r = await curl([
    '--proxy',
    `http://127.0.0.1:${proxy.address.port}`,
    '--cacert',
    w.tls.certFile,
    `https://allowed.test:${w.tls.port}/t`,
  ]);
  tt.equal(r.code, 0, r.stderr);
  await settle(100);
  const close = w.records.findLast((x) => x.outcome.phase === 'close' && x.action === 'net.connect')!;
  tt.ok(close);
  tt.ok(w.records.some((x) => x.outcome.phase === 'decision' && x.event_id === close.event_id));
  tt.ok(close.outcome.bytes_up! > 100, `bytes up ${close.outcome.bytes_up}`);
  tt.ok(close.outcome.bytes_down! > 100, `bytes down ${close.outcome.bytes_down}`);
});

bypass('report-only mode forwards a would-deny, audits it as such and logs it', async (tt) => {
  const before = w.origin.requests.length;
  const r = await get(report, `http://denied.test:${w.origin.port}/reported`);
  tt.equal(statusOf(r), 200);
  tt.equal(w.origin.requests.length, before + 1);
  const rec = w.records.findLast((x) => x.outcome.phase === 'decision')!;
  tt.equal(rec.decision, 'deny');
  tt.equal(rec.outcome.mode, 'report');
  tt.equal(rec.outcome.enforced, false);
  tt.equal(rec.policy_version, 'sha256:test', 'the deciding version is recorded, for audit replay');
  tt.ok(w.logs.some((l) => l.event === 'report_only_would_deny' && l.host === 'denied.test'));
});

bypass('report-only mode still fails closed and keeps the floor', async (tt) => {
  w.pdp.down = true;
  try {
    tt.equal(statusOf(await get(report, `http://allowed.test:${w.origin.port}/`)), 503);
  } finally {
    w.pdp.down = false;
  }
  tt.equal(statusOf(await get(report, `http://127.0.0.1:${report.address.port}/`)), 403);
});

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
/** Unsigned tokens: the proxy verifies nothing (the PDP does); only their shape routes them. */
const leaseHeader = b64url({ alg: 'EdDSA', typ: 'pcx-lease+jwt' });
const leaseToken = `${leaseHeader}.${b64url({ jti: 'lease-42' })}.c2lnbmF0dXJlLXNlY3JldA`;
const identityToken =
  `${b64url({ alg: 'EdDSA', typ: 'pcx-identity+jwt', kid: 'k1' })}.` +
  `${b64url({ jti: 'id-7', sub: 'agent-7', pcx_session: 's-99' })}.aWRlbnRpdHktc2lnbmF0dXJl`;

bypass(
  'Proxy-Authorization narrows: the configured session with a lease; only its id is recorded',
  ['curl'],
  async (tt) => {
    const r = await curl([
      '--proxy',
      `http://127.0.0.1:${proxy.address.port}`,
      '--proxy-user',
      `s-1:${leaseToken}`,
      `http://allowed.test:${w.origin.port}/leased`,
    ]);
    tt.equal(r.code, 0, r.stderr);
    const d = w.decisions.at(-1)!;
    tt.same(d.principal, { id: 'agent-7', roles: ['developer'] });
    tt.same(d.context, { project: 'alpha', session: 's-1', leases: [leaseToken] }, 'the configured context is kept');
    await settle(50);
    const recs = w.records.filter((x) => x.resource.path === '/leased');
    tt.equal(recs.length, 2);
    for (const rec of recs) tt.same(rec.context?.leases, ['lease-42']);
    tt.notMatch(
      JSON.stringify(w.records) + JSON.stringify(w.logs),
      leaseToken.split('.')[2]!,
      'the token never reaches a record or a log',
    );
    tt.notOk(w.origin.requests.at(-1)!.headers['proxy-authorization']);
  },
);

bypass('a session claimed without an identity token is refused with 407 and never decided', async (tt) => {
  const before = { decisions: w.decisions.length, origin: w.origin.requests.length };
  for (const user of ['s-99:', `s-99:${leaseToken}`]) {
    const http = await get(
      proxy,
      `http://allowed.test:${w.origin.port}/claimed`,
      undefined,
      `Proxy-Authorization: Basic ${Buffer.from(user).toString('base64')}\r\n`,
    );
    tt.match(http, /^HTTP\/1\.1 407 Proxy Authentication Required: PCX_IDENTITY_UNPROVEN: session "s-99" is claimed/);
    tt.match(http, /\r\nx-portcullis-code: PCX_IDENTITY_UNPROVEN\r\n/i);
    tt.match(http, /\r\nx-portcullis-reason: session "s-99" is claimed without an identity token/i);
    tt.match(http, /\r\nproxy-authenticate: Basic realm="portcullis"\r\n/i);
    tt.match(http, /"code":"PCX_IDENTITY_UNPROVEN"/);
    const tunnel = await connectTo(
      proxy,
      `allowed.test:${w.tls.port}`,
      `Proxy-Authorization: Basic ${Buffer.from(user).toString('base64')}\r\n`,
    );
    tt.match(tunnel, /^HTTP\/1\.1 407 Proxy Authentication Required: PCX_IDENTITY_UNPROVEN: /);
    tt.match(tunnel, /"code":"PCX_IDENTITY_UNPROVEN"/);
  }
  tt.equal(w.decisions.length, before.decisions, 'the PDP was never asked with the claimed session');
  tt.equal(w.origin.requests.length, before.origin, 'nothing was forwarded');
  await settle(50);
  const rec = w.records.at(-1)!;
  tt.equal(rec.outcome.status, 407);
  tt.same(rec.context, { project: 'alpha', session: 's-1' }, 'the configured identity is what is recorded');
});

bypass(
  'a session claimed with an identity token goes to the PDP as context.identity; only its id is recorded',
  async (tt) => {
    const r = await curl([
      '--proxy',
      `http://127.0.0.1:${proxy.address.port}`,
      '--proxy-user',
      `s-99:${identityToken} ${leaseToken}`,
      `http://allowed.test:${w.origin.port}/proven`,
    ]);
    tt.equal(r.code, 0, r.stderr);
    const d = w.decisions.at(-1)!;
    tt.same(d.principal, { id: 'agent-7', roles: ['developer'] }, 'no claim names another principal');
    tt.same(d.context, { project: 'alpha', session: 's-99', identity: identityToken, leases: [leaseToken] });
    await settle(50);
    const recs = w.records.filter((x) => x.resource.path === '/proven');
    tt.equal(recs.length, 2);
    for (const rec of recs)
      tt.same(rec.context, { project: 'alpha', session: 's-99', identity: 'id-7', leases: ['lease-42'] });
    tt.notMatch(JSON.stringify(w.records) + JSON.stringify(w.logs), identityToken.split('.')[2]!);
  },
);

bypass('two Proxy-Authorization headers are refused, whichever comes first', async (tt) => {
  const one = `Proxy-Authorization: Basic ${Buffer.from('s-1:').toString('base64')}\r\n`;
  const other = `Proxy-Authorization: Basic ${Buffer.from(`s-99:${identityToken}`).toString('base64')}\r\n`;
  for (const extra of [one + other, other + one]) {
    const r = await get(proxy, `http://allowed.test:${w.origin.port}/twice`, undefined, extra);
    tt.equal(statusOf(r), 400);
    tt.match(r, /more than one Proxy-Authorization header/);
  }
});

bypass('refusals are audited too, without the query string; denials record their 403', async (tt) => {
  const r = await rawExchange(
    proxy.address.port,
    `GET http://[allowed.test]:${w.origin.port}/p?api_key=hunter2 HTTP/1.1\r\nHost: ` +
      `allowed.test:${w.origin.port}\r\nConnection: close\r\n\r\n`,
  );
  tt.equal(statusOf(r), 400);
  await settle(50);
  const rec = w.records.at(-1)!;
  tt.equal(rec.decision, 'deny');
  tt.equal(rec.reasons[0]?.error?.code, 'PCX_EGRESS_BAD_HOST');
  tt.equal(rec.outcome.status, 400);
  tt.equal(rec.policy_version, undefined, 'no policy decided a refusal');
  tt.notMatch(JSON.stringify(rec), /hunter2/);
  await get(proxy, `http://denied.test:${w.origin.port}/`);
  const denial = w.records.at(-1)!;
  tt.equal(denial.outcome.status, 403);
  tt.equal(denial.outcome.forwarded, false);
  tt.equal(denial.policy_version, 'sha256:test');
});

bypass('a malformed Proxy-Authorization is 400', async (tt) => {
  const r = await get(proxy, `http://allowed.test:${w.origin.port}/`, undefined, 'Proxy-Authorization: Bearer abc\r\n');
  tt.equal(statusOf(r), 400);
  tt.match(r, /PCX_IDENTITY_BAD_CREDENTIALS/);
});

bypass('garbage and binary input get 400 and the proxy keeps serving', async (tt) => {
  const r = await rawExchange(
    proxy.address.port,
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]),
  );
  tt.equal(statusOf(r), 400);
  const ok = await get(proxy, `http://allowed.test:${w.origin.port}/after-garbage`);
  tt.equal(statusOf(ok), 200);
});

// Reads the counters the cases above left, among them the audit failure of a curl case.
bypass('metrics count decisions and refusals', ['curl'], async (tt) => {
  const text = w.metrics.render();
  tt.match(text, /portcullis_egress_requests_total\{action="net.http",decision="deny",enforced="true"\} \d+/);
  tt.match(text, /portcullis_egress_refusals_total\{code="PCX_EGRESS_FLOOR"\} \d+/);
  tt.match(text, /portcullis_egress_failures_total\{peer="audit"\} \d+/);
  tt.match(text, /portcullis_egress_decision_seconds_count \d+/);
});
