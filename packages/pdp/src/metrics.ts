/**
 * Prometheus metrics for the PDP, kept as plain numbers (the hot path only increments fields)
 * and rendered in the text exposition format when scraped. No client library: the set is small
 * and fixed, and a scrape must not cost the decision path anything.
 */
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import { PcxError } from '@portcullis/protocol';

/** Upper bounds in seconds: decisions take microseconds; the tail shows event-loop stalls. */
const LATENCY_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

export class PdpMetrics {
  readonly decisions = { allow: 0, deny: 0, ask: 0 };
  readonly reloads = { ok: 0, failed: 0 };
  readonly errors = new Map<string, number>();
  readonly leasesIgnored = new Map<string, number>();
  inFlight = 0;
  connections = 0;
  policyLoaded = 0;
  private readonly bucketCounts = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  private latencyCount = 0;
  private latencySum = 0;

  /** Record `count` observations of `seconds` (requests answered together share one clock read). */
  observeLatency(seconds: number, count: number): void {
    this.latencyCount += count;
    this.latencySum += seconds * count;
    // Buckets are cumulative at render time; here each observation lands in its first bucket.
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]!) {
        this.bucketCounts[i]! += count;
        return;
      }
    }
  }

  countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  countIgnoredLease(reason: string): void {
    this.leasesIgnored.set(reason, (this.leasesIgnored.get(reason) ?? 0) + 1);
  }

  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('portcullis_pdp_decisions_total', 'counter', 'Decisions answered, by outcome.');
    for (const [k, v] of Object.entries(this.decisions))
      out.push(`portcullis_pdp_decisions_total{decision="${k}"} ${v}`);
    family(
      'portcullis_pdp_decision_duration_seconds',
      'histogram',
      "Time from a request's arrival (its read chunk) to its answer encoded.",
    );
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      cumulative += this.bucketCounts[i]!;
      out.push(`portcullis_pdp_decision_duration_seconds_bucket{le="${LATENCY_BUCKETS[i]}"} ${cumulative}`);
    }
    out.push(`portcullis_pdp_decision_duration_seconds_bucket{le="+Inf"} ${this.latencyCount}`);
    out.push(`portcullis_pdp_decision_duration_seconds_sum ${this.latencySum}`);
    out.push(`portcullis_pdp_decision_duration_seconds_count ${this.latencyCount}`);
    family(
      'portcullis_pdp_reloads_total',
      'counter',
      'Policy reloads, by result (a failed reload keeps the last good set).',
    );
    for (const [k, v] of Object.entries(this.reloads)) out.push(`portcullis_pdp_reloads_total{result="${k}"} ${v}`);
    family('portcullis_pdp_errors_total', 'counter', 'Errors by stable code: protocol errors and malformed requests.');
    for (const [k, v] of this.errors) out.push(`portcullis_pdp_errors_total{code="${escapeLabel(k)}"} ${v}`);
    family('portcullis_pdp_leases_ignored_total', 'counter', 'Leases presented but ignored, by reason.');
    for (const [k, v] of this.leasesIgnored)
      out.push(`portcullis_pdp_leases_ignored_total{reason="${escapeLabel(k)}"} ${v}`);
    family('portcullis_pdp_in_flight', 'gauge', 'Requests received and not yet answered.');
    out.push(`portcullis_pdp_in_flight ${this.inFlight}`);
    family('portcullis_pdp_connections', 'gauge', 'Open client connections.');
    out.push(`portcullis_pdp_connections ${this.connections}`);
    family(
      'portcullis_pdp_policy_loaded',
      'gauge',
      '1 when a valid policy set is loaded, else 0 (every request is denied).',
    );
    out.push(`portcullis_pdp_policy_loaded ${this.policyLoaded}`);
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

export interface MetricsAddress {
  host: string;
  port: number;
}

/**
 * Parse "HOST:PORT" ("[::1]:9464" for IPv6). Metrics reveal traffic patterns and policy state,
 * so only loopback hosts are accepted unless the operator says otherwise explicitly.
 */
export function parseMetricsAddress(spec: string, options: { allowRemote?: boolean } = {}): MetricsAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  if (!m)
    throw new PcxError('PCX_PDP_METRICS_ADDRESS', `--metrics "${spec}" is not HOST:PORT`, {
      hint: 'e.g. --metrics 127.0.0.1:9464',
    });
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65535) throw new PcxError('PCX_PDP_METRICS_ADDRESS', `--metrics port ${port} is out of range`);
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (!loopback && !options.allowRemote) {
    throw new PcxError(
      'PCX_PDP_METRICS_NOT_LOOPBACK',
      `--metrics ${spec} is not a loopback address; refusing to expose metrics beyond this host`,
      {
        hint: 'bind 127.0.0.1 (or ::1), or pass --metrics-allow-remote if you really mean it',
      },
    );
  }
  return { host, port };
}

export async function serveMetrics(
  metrics: PdpMetrics,
  address: MetricsAddress,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new PcxError(
          'PCX_PDP_METRICS_LISTEN',
          `cannot serve metrics on ${address.host}:${address.port}: ${e.code ?? e.message}`,
        ),
      ),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address();
  return { server, port: typeof bound === 'object' && bound ? bound.port : address.port };
}
