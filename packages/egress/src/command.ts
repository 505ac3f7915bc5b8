/**
 * `portcullis egress`: run the proxy against a PDP socket and an audit sink socket. Thin: parse
 * options, wire the protocol clients into the proxy core, log, stop cleanly on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import {
  AuditClient,
  createLogger,
  formatOptions,
  HELP_OPTION,
  PcxError,
  PdpClient,
  positiveIntOption,
  type LogLevel,
  type OptionTable,
  type RequestContext,
} from '@portcullis/protocol';
import { canonicalHost, parseCidrOption, splitHostPort } from './address.js';
import { coalescePerTurn } from './coalesce.js';
import { checkMetricsHost, EgressMetrics, serveMetrics } from './metrics.js';
import { startEgressProxy } from './proxy.js';
import { dnsResolver } from './resolve.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** The proxy's options: its parser, its --help and `portcullis up` all read this one table. */
export const EGRESS_OPTIONS = {
  listen: { type: 'string', value: 'HOST:PORT', default: '127.0.0.1:3128', help: 'where to listen' },
  pdp: { type: 'string', value: 'SOCK', help: "the PDP's Unix socket" },
  audit: { type: 'string', value: 'SOCK', help: "the audit sink's Unix socket" },
  principal: { type: 'string', value: 'ID', help: 'the agent this sidecar belongs to' },
  role: { type: 'string', value: 'ROLE', multiple: true, default: [], help: 'a role of the principal' },
  project: { type: 'string', value: 'P', help: 'the request context: project' },
  blueprint: { type: 'string', value: 'B', help: 'the request context: blueprint' },
  session: {
    type: 'string',
    value: 'S',
    help:
      'the request context: session; a client may add lease tokens with Proxy-Authorization:\n' +
      'Basic base64(session:tokens), and name another session only with an identity token (else 407)',
  },
  mode: {
    type: 'string',
    value: 'enforce|report',
    default: 'enforce',
    help: 'report: would-deny requests are audited as such and forwarded',
  },
  'allow-cidr': {
    type: 'string',
    value: 'CIDR',
    multiple: true,
    default: [],
    help:
      'opt a range out of the built-in floor (loopback, link-local,\n' +
      'metadata, unspecified), e.g. --allow-cidr 10.1.2.0/24',
  },
  dns: {
    type: 'string',
    value: 'HOST:PORT',
    multiple: true,
    default: [],
    help: 'resolve with this DNS server instead of the system resolver',
  },
  metrics: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'serve Prometheus metrics at http://HOST:PORT/metrics (loopback only)',
  },
  'header-timeout': { type: 'string', value: 'MS', default: '10000', help: 'time allowed for a request head' },
  'max-header-bytes': { type: 'string', value: 'N', default: '16384', help: 'largest request head accepted' },
  'pdp-timeout': { type: 'string', value: 'MS', default: '250', help: 'PDP deadline per decision' },
} satisfies OptionTable;

const USAGE = `usage: portcullis egress --pdp SOCK --audit SOCK --principal ID [options]

A deny-by-default HTTP/HTTPS forward proxy. Point clients at it with HTTP_PROXY/HTTPS_PROXY.
Absolute-URI requests are checked as net.http, CONNECT tunnels as net.connect.

options:
${formatOptions(EGRESS_OPTIONS)}`;

/** The proxy's events, by how much an operator should care. */
function eventLevel(event: string): LogLevel {
  if (event === 'internal_error') return 'error';
  if (event.endsWith('_failed') || event.endsWith('_unavailable') || event.startsWith('report_only')) return 'warn';
  return 'info';
}

function endpoint(name: string, text: string): { host: string; port: number } {
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(text, undefined, true);
    const h = canonicalHost(hp.host);
    if (h.kind !== 'ip') throw new Error('not an IP');
    return { host: h.host, port: hp.port };
  } catch {
    throw new PcxError('PCX_USAGE', `${name} ${text} is not IP:PORT`, {
      hint: `e.g. ${name} 127.0.0.1:3128 or ${name} [::1]:3128`,
    });
  }
}

export async function egressCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...EGRESS_OPTIONS, help: HELP_OPTION },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  for (const required of ['pdp', 'audit', 'principal'] as const) {
    if (!values[required])
      throw new PcxError('PCX_USAGE', `missing --${required}`, { hint: 'see portcullis egress --help' });
  }
  if (values.mode !== 'enforce' && values.mode !== 'report')
    throw new PcxError('PCX_USAGE', `--mode ${values.mode} is neither enforce nor report`);
  const mode = values.mode;
  const allowCidrs = values['allow-cidr'];
  allowCidrs.forEach(parseCidrOption); // refuse a bad CIDR before anything starts
  const listen = endpoint('--listen', values.listen);
  const metricsAt = values.metrics ? endpoint('--metrics', values.metrics) : undefined;
  if (metricsAt) checkMetricsHost(metricsAt.host);
  const context: RequestContext = {};
  if (values.project) context.project = values.project;
  if (values.blueprint) context.blueprint = values.blueprint;
  if (values.session) context.session = values.session;

  const log = createLogger({ daemon: 'egress', stream: io.stderr });
  const say = (msg: string, fields?: Record<string, unknown>): void => log('info', msg, fields);
  // One pipelined connection to each peer: the calls of a loop turn are coalesced (below), and a
  // second connection would only split each batch into two writes and two peer wake-ups.
  const pdp = new PdpClient({
    socketPath: values.pdp!,
    timeoutMs: positiveIntOption('--pdp-timeout', values['pdp-timeout']),
    connections: 1,
  });
  const audit = new AuditClient({ socketPath: values.audit!, connections: 1 });
  const metrics = new EgressMetrics();

  let onSignal: (s: NodeJS.Signals) => void = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Metrics first: if its port is taken, nothing else has started and nothing is left running.
  const metricsServer = metricsAt ? await serveMetrics(metrics, metricsAt) : undefined;
  const closeMetrics = (): Promise<void> =>
    new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
  try {
    const proxy = await startEgressProxy({
      listen,
      // Coalesced per loop turn: under load, one write to each peer per turn (see coalesce.ts).
      decide: coalescePerTurn((r) => pdp.decide(r)),
      audit: coalescePerTurn((record) => audit.append(record)),
      principal: { id: values.principal!, roles: values.role },
      ...(Object.keys(context).length > 0 ? { context } : {}),
      mode,
      ...(values.dns.length > 0 ? { resolve: dnsResolver({ servers: values.dns }) } : {}),
      allowCidrs,
      headersTimeoutMs: positiveIntOption('--header-timeout', values['header-timeout']),
      maxHeaderBytes: positiveIntOption('--max-header-bytes', values['max-header-bytes']),
      metrics,
      ...(metricsServer
        ? { selfEndpoints: [{ host: metricsAt!.host, port: (metricsServer.address() as { port: number }).port }] }
        : {}),
      log: ({ event, ...fields }) => {
        if (event !== 'listening') log(eventLevel(String(event)), String(event), fields);
      },
    });
    const shown = proxy.address.host.includes(':') ? `[${proxy.address.host}]` : proxy.address.host;
    say(`listening on ${shown}:${proxy.address.port} (mode ${mode}); PDP ${values.pdp}, audit sink ${values.audit}`, {
      host: proxy.address.host,
      port: proxy.address.port,
      mode,
    });
    if (allowCidrs.length > 0) say(`floor opt-outs: ${allowCidrs.join(', ')}`);
    if (metricsAt) {
      const host = metricsAt.host.includes(':') ? `[${metricsAt.host}]` : metricsAt.host;
      const url = `http://${host}:${(metricsServer!.address() as { port: number }).port}/metrics`;
      say(`metrics at ${url}`, { metrics: url });
    }
    if (mode === 'report') {
      log(
        'warn',
        '*** REPORT-ONLY MODE: requests the policy denies are FORWARDED and audited as would-deny. ' +
          'Do not run this in production. ***',
      );
    }
    const health = await pdp.health({ timeoutMs: 1000 });
    if (health.status !== 'ok')
      log(
        'warn',
        `the PDP is ${health.status} (${health.error?.message ?? 'no policy loaded'}); ` +
          'every request is denied until it answers',
      );
    const signal = await signalled;
    say(`${signal}: stopping`);
    await proxy.close();
    say('stopped');
    return 0;
  } finally {
    await closeMetrics();
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    pdp.close();
    audit.close();
  }
}
