/**
 * Prometheus text exposition for the proxy, served on an optional loopback-only port. Counters
 * are plain numbers keyed by a label string: the hot path pays one Map lookup per increment.
 */
import { createServer, type Server } from 'node:http';
import { PcxError } from '@portcullis/protocol';
import { canonicalHost } from './address.js';
import { listenOn } from './listen.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.counts[i]!++;
  }
}

export class EgressMetrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly help = new Map<string, string>();
  private readonly decisionLatency = new Histogram();
  activeTunnels = 0;

  constructor() {
    this.help.set(
      'portcullis_egress_requests_total',
      'Requests and tunnels by action, decision and whether it was enforced.',
    );
    this.help.set(
      'portcullis_egress_refusals_total',
      'Requests refused before a decision (bad target, bad host, floor, limits), by code.',
    );
    this.help.set(
      'portcullis_egress_failures_total',
      'Fail-closed answers because the PDP or the audit sink was unavailable.',
    );
    this.help.set('portcullis_egress_bytes_total', 'Bytes forwarded, by direction.');
    this.help.set(
      'portcullis_egress_audit_close_failures_total',
      'Closing records (the totals of a forwarded request or tunnel) the audit sink did not acknowledge.',
    );
  }

  inc(name: string, labels: string, by = 1): void {
    let m = this.counters.get(name);
    if (!m) this.counters.set(name, (m = new Map()));
    m.set(labels, (m.get(labels) ?? 0) + by);
  }

  observeDecision(seconds: number): void {
    this.decisionLatency.observe(seconds);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, series] of this.counters) {
      out.push(`# HELP ${name} ${this.help.get(name) ?? name}`, `# TYPE ${name} counter`);
      for (const [labels, v] of series) out.push(`${name}${labels ? `{${labels}}` : ''} ${v}`);
    }
    out.push(
      '# HELP portcullis_egress_active_tunnels CONNECT tunnels open now.',
      '# TYPE portcullis_egress_active_tunnels gauge',
    );
    out.push(`portcullis_egress_active_tunnels ${this.activeTunnels}`);
    const h = this.decisionLatency;
    out.push('# HELP portcullis_egress_decision_seconds Time from request head to decision (resolve, PDP, audit ack).');
    out.push('# TYPE portcullis_egress_decision_seconds histogram');
    BUCKETS.forEach((b, i) => {
      out.push(`portcullis_egress_decision_seconds_bucket{le="${b}"} ${h.counts[i]}`);
    });
    out.push(`portcullis_egress_decision_seconds_bucket{le="+Inf"} ${h.count}`);
    out.push(`portcullis_egress_decision_seconds_sum ${h.sum}`, `portcullis_egress_decision_seconds_count ${h.count}`);
    return out.join('\n') + '\n';
  }
}

/** Throws unless `host` is a loopback address: metrics reveal destinations. */
export function checkMetricsHost(host: string): string {
  const h = canonicalHost(host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);
  if (h.kind !== 'ip' || !(h.host === '::1' || h.host.startsWith('127.'))) {
    throw new PcxError('PCX_EGRESS_METRICS_NOT_LOOPBACK', `metrics must listen on a loopback address, not "${host}"`, {
      hint: 'use --metrics 127.0.0.1:PORT',
    });
  }
  return h.host;
}

/** Serve `GET /metrics` on a loopback address only. */
export async function serveMetrics(metrics: EgressMetrics, listen: { host: string; port: number }): Promise<Server> {
  const host = { host: checkMetricsHost(listen.host) };
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try GET /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
  });
  await listenOn(server, { host: host.host, port: listen.port }, 'the metrics server');
  return server;
}
