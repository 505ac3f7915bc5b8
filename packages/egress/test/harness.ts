/**
 * The bypass suite's world: origins that may be reached, canaries that must never be, a DNS
 * double, and proxies (one with loopback opted out of the floor, one strict).
 *
 * The PDP and the audit sink are injected here as in-process doubles of their clients' shapes,
 * so that these package tests exercise the proxy alone; the end-to-end suite in test/ runs the
 * same proxy against the real PDP daemon and the real audit sink.
 */
import { execFile } from 'node:child_process';
import type { Decision, DecisionRequest } from '@portcullis/protocol';
import {
  dnsResolver,
  EgressMetrics,
  startEgressProxy,
  type EgressAuditRecord,
  type EgressProxy,
} from '../src/index.js';
import {
  canary,
  dnsDouble,
  origin,
  tlsOrigin,
  type Canary,
  type DnsDouble,
  type Origin,
  type TlsOrigin,
} from './fixtures.js';

export interface World {
  origin: Origin;
  tls: TlsOrigin;
  /** 127.0.0.1 on a port the policy denies. */
  canary: Canary;
  /** 127.0.0.2 on the origin's port: reached only if an unchecked address is dialled. */
  canary2: Canary;
  dns: DnsDouble;
  decisions: DecisionRequest[];
  records: EgressAuditRecord[];
  logs: Array<Record<string, unknown>>;
  pdp: { down: boolean };
  sink: { down: boolean; delayMs: number; ackedAt: number[] };
  metrics: EgressMetrics;
  close(): Promise<void>;
}

/**
 * The policy the doubles implement (the e2e suite writes the same in the policy language):
 * allow net.* to allowed.test, mixed.test, rebind.test and 127.0.0.1 on the origin and TLS
 * ports when resource.ip is 127.0.0.1; deny denied.test explicitly; ask for ask.test. Only the
 * doubles say: unicode.test's rule has a non-ASCII because with a CR LF in it, leased.test is a
 * default deny with an ignored lease, broken.test a deny the PDP could not evaluate.
 */
function policyDouble(world: World): (r: DecisionRequest) => Promise<Decision> {
  const hosts = new Set(['allowed.test', 'mixed.test', 'rebind.test', '127.0.0.1', 'ask.test', 'denied.test']);
  return async (r) => {
    world.decisions.push(r);
    if (world.pdp.down)
      return {
        decision: 'deny',
        reasons: [],
        error: { code: 'PCX_PDP_UNAVAILABLE', message: 'PDP unavailable at /nowhere' },
      };
    const { host, port, ip } = r.resource as { host: string; port: number; ip?: string };
    if (host === 'denied.test')
      return {
        decision: 'deny',
        reasons: [
          {
            effect: 'deny',
            policy: 'test',
            rule: 'test#1',
            because: 'denied.test is off limits',
            source: 'test.pol:1:1',
          },
        ],
        policy_version: 'sha256:test',
      };
    if (host === 'unicode.test')
      return {
        decision: 'deny',
        reasons: [{ effect: 'deny', policy: 'test', rule: 'test#4', because: 'verboten für dich\r\nX-Injected: 1' }],
        policy_version: 'sha256:test',
      };
    if (host === 'leased.test')
      return { decision: 'deny', reasons: [{ lease: 'lease-42', ignored: 'expired' }], policy_version: 'sha256:test' };
    if (host === 'broken.test') {
      const error = { code: 'PCX_REQ_BAD_TYPE', message: 'context.session must be a string' };
      return { decision: 'deny', reasons: [{ error }], error, policy_version: 'sha256:test' };
    }
    if (host === 'ask.test')
      return {
        decision: 'ask',
        reasons: [{ effect: 'ask', policy: 'test', rule: 'test#2', because: 'needs a human' }],
        policy_version: 'sha256:test',
      };
    const ports = new Set([world.origin.port, world.tls.port]);
    if (hosts.has(host) && ports.has(port) && ip === '127.0.0.1') {
      return {
        decision: 'allow',
        reasons: [{ effect: 'allow', policy: 'test', rule: 'test#3', because: 'the origin' }],
        policy_version: 'sha256:test',
      };
    }
    return { decision: 'deny', reasons: [], policy_version: 'sha256:test' };
  };
}

export async function world(): Promise<World> {
  const w = {
    decisions: [],
    records: [],
    logs: [],
    pdp: { down: false },
    sink: { down: false, delayMs: 0, ackedAt: [] as number[] },
    metrics: new EgressMetrics(),
  } as unknown as World;
  w.origin = await origin({});
  w.tls = await tlsOrigin();
  w.canary = await canary('127.0.0.1');
  w.canary2 = await canary('127.0.0.2', w.origin.port);
  w.dns = await dnsDouble((name, type, n) => {
    if (type !== 'A') return name === 'v6only.test' ? ['::1'] : [];
    switch (name) {
      case 'allowed.test':
      case 'denied.test':
      case 'ask.test':
      case 'unicode.test':
      case 'leased.test':
      case 'broken.test':
        return ['127.0.0.1'];
      case 'private.test':
        return ['127.0.0.2'];
      case 'mixed.test':
        return ['127.0.0.2', '127.0.0.1'];
      case 'rebind.test':
        // Allowed on odd queries, the canary on even ones (TTL 0).
        return [n % 2 === 0 ? '127.0.0.1' : '127.0.0.2'];
      default:
        return [];
    }
  });
  const closers: Array<() => Promise<void>> = [];
  w.close = async () => {
    for (const c of closers.reverse()) await c();
    await Promise.all([w.origin.close(), w.tls.close(), w.canary.close(), w.canary2.close(), w.dns.close()]);
  };
  (w as World & { closers: typeof closers }).closers = closers;
  return w;
}

export async function proxyFor(
  w: World,
  options: {
    allowLoopback?: boolean;
    mode?: 'enforce' | 'report';
    headersTimeoutMs?: number;
    maxHeaderBytes?: number;
    selfEndpoints?: Array<{ host: string; port: number }>;
  } = {},
): Promise<EgressProxy> {
  const proxy = await startEgressProxy({
    listen: { host: '127.0.0.1', port: 0 },
    principal: { id: 'agent-7', roles: ['developer'] },
    context: { project: 'alpha', session: 's-1' },
    mode: options.mode ?? 'enforce',
    decide: policyDouble(w),
    audit: async (record) => {
      if (w.sink.down) throw Object.assign(new Error('sink down'), { code: 'PCX_RPC_UNAVAILABLE' });
      if (w.sink.delayMs > 0) await new Promise((r) => setTimeout(r, w.sink.delayMs));
      w.records.push(structuredClone(record));
      w.sink.ackedAt.push(performance.now());
      return { seq: w.records.length, hash: 'x' };
    },
    resolve: dnsResolver({ servers: [`127.0.0.1:${w.dns.port}`] }),
    allowCidrs: options.allowLoopback === false ? [] : ['127.0.0.0/8'],
    headersTimeoutMs: options.headersTimeoutMs ?? 1000,
    maxHeaderBytes: options.maxHeaderBytes ?? 8192,
    metrics: w.metrics,
    ...(options.selfEndpoints ? { selfEndpoints: options.selfEndpoints } : {}),
    log: (e) => w.logs.push(e),
  });
  (w as World & { closers: Array<() => Promise<void>> }).closers.push(() => proxy.close());
  return proxy;
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function curl(args: string[], timeoutMs = 10_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', String(timeoutMs / 1000), ...args],
      { timeout: timeoutMs + 2000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Wait until in-flight closing records have landed. */
export async function settle(ms = 50): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}
