/**
 * Test fixtures with real sockets: a UDP DNS server double (the one outside service the proxy
 * talks to besides origins), canary listeners that count every connection and byte, an origin
 * HTTP server, a TLS server with a self-signed certificate made by openssl, and a raw client.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Canary {
  host: string;
  port: number;
  connections: number;
  bytes: number;
  close(): Promise<void>;
}

/** A listener that must never be reached: it counts connections and bytes, answers nothing. */
export async function canary(host = '127.0.0.1', port = 0): Promise<Canary> {
  const sockets = new Set<Socket>();
  const c = { host, port: 0, connections: 0, bytes: 0 } as Canary;
  const server = createNetServer((s) => {
    c.connections++;
    sockets.add(s);
    s.on('data', (d) => (c.bytes += d.length));
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  c.port = (server.address() as AddressInfo).port;
  c.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return c;
}

export interface Origin {
  port: number;
  connections: number;
  requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }>;
  /** Emits "held" when a "/hold" request arrives. */
  events: EventEmitter;
  /** Answer the "/hold" requests waiting. */
  release(): void;
  close(): Promise<void>;
}

/**
 * An HTTP origin: "/" says hello, "/redirect" redirects to the canary, "/big?n=" sends n bytes,
 * "/hold" says hello only once release() is called (a response the test controls).
 */
export async function origin(options: { host?: string; redirectTo?: string } = {}): Promise<Origin> {
  const held: Array<() => void> = [];
  const o = {
    port: 0,
    connections: 0,
    requests: [],
    events: new EventEmitter(),
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
  } as unknown as Origin;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      o.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: options.redirectTo ?? 'http://127.0.0.1:1/' }).end();
      } else if (req.url === '/hold') {
        held.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from origin GET /hold\n'));
        o.events.emit('held');
      } else if (req.url?.startsWith('/big')) {
        const n = Number(new URL(req.url, 'http://x').searchParams.get('n') ?? '1000');
        res
          .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n })
          .end(Buffer.alloc(n, 97));
      } else {
        res
          .writeHead(200, {
            'content-type': 'text/plain',
            connection: 'keep-alive, x-secret-hop',
            'x-secret-hop': 'must-not-reach-client',
          })
          .end(`hello from origin ${req.method} ${req.url}\n`);
      }
    });
  });
  server.on('connection', () => o.connections++);
  await new Promise<void>((r) => server.listen(0, options.host ?? '127.0.0.1', r));
  o.port = (server.address() as AddressInfo).port;
  o.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return o;
}

export interface TlsOrigin {
  port: number;
  connections: number;
  certFile: string;
  close(): Promise<void>;
}

/** A TLS origin with a fresh self-signed certificate for allowed.test and 127.0.0.1 (openssl). */
export async function tlsOrigin(): Promise<TlsOrigin> {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-egress-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=allowed.test',
      '-addext',
      'subjectAltName=DNS:allowed.test,IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  const t = { port: 0, connections: 0, certFile: cert } as TlsOrigin;
  const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello over tls ${req.url}\n`);
  });
  server.on('secureConnection', () => t.connections++);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.port = (server.address() as AddressInfo).port;
  t.close = () =>
    new Promise((res) => {
      server.closeAllConnections();
      server.close(() => {
        rmSync(dir, { recursive: true, force: true });
        res();
      });
    });
  return t;
}

export interface DnsDouble {
  port: number;
  queries: string[];
  close(): Promise<void>;
}

/**
 * A real UDP DNS server on loopback answering A/AAAA from `answer(name, type, n)`, where n counts
 * earlier queries for that name and type (rebinding answers differ between queries).
 */
export async function dnsDouble(answer: (name: string, type: 'A' | 'AAAA', n: number) => string[]): Promise<DnsDouble> {
  const sock = createSocket('udp4');
  const d = { port: 0, queries: [] as string[] } as DnsDouble;
  const counts = new Map<string, number>();
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    let off = 12;
    const labels: string[] = [];
    while (off < msg.length && msg[off] !== 0) {
      const len = msg[off]!;
      labels.push(msg.subarray(off + 1, off + 1 + len).toString('ascii'));
      off += len + 1;
    }
    const qEnd = off + 5;
    const qtype = msg.readUInt16BE(off + 1);
    const name = labels.join('.').toLowerCase();
    const type = qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : undefined;
    d.queries.push(`${name} ${type ?? qtype}`);
    const key = `${name}/${type}`;
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    const addrs = type ? answer(name, type, n).filter((a) => (type === 'A' ? !a.includes(':') : a.includes(':'))) : [];
    const answers = addrs.map((a) => {
      const rdata = type === 'A' ? Buffer.from(a.split('.').map(Number)) : ipv6Bytes(a);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
      rr.writeUInt16BE(qtype, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(0, 6); // TTL 0: a rebinding server's favourite
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180 | (answers.length === 0 && !known(name) ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    sock.send(Buffer.concat([header, msg.subarray(12, qEnd), ...answers]), rinfo.port, rinfo.address);
  });
  const known = (name: string): boolean => answer(name, 'A', 0).length + answer(name, 'AAAA', 0).length > 0;
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  d.port = sock.address().port;
  d.close = () => new Promise((r) => sock.close(() => r()));
  return d;
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return b;
}

/** Send raw bytes, collect everything the peer sends until it closes or `ms` pass. */
export function rawExchange(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: { ms?: number; gapMs?: number } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(out).toString('latin1'));
    };
    const timer = setTimeout(done, options.ms ?? 2000);
    s.on('data', (d) => out.push(d));
    s.on('close', done);
    s.on('error', done);
    const parts = Array.isArray(data) ? data : [data];
    let i = 0;
    const next = (): void => {
      if (i >= parts.length || s.destroyed) return;
      s.write(parts[i++]!);
      setTimeout(next, options.gapMs ?? 0);
    };
    s.on('connect', next);
  });
}

export function statusOf(response: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
  return m ? Number(m[1]) : 0;
}

/**
 * A smart-HTTP git server: node http(s) in front of `git http-backend` (CGI, spawned with an
 * argument array and the CGI environment). Serves the repositories under `root`.
 */
export function gitBackendHandler(root: string) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: '127.0.0.1',
        GIT_CONFIG_NOSYSTEM: '1',
        HOME: root,
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    child.on('close', () => res.end());
  };
}
