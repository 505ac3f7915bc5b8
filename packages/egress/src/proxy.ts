/**
 * The egress PEP: a deny-by-default forward proxy on node:http.
 *
 * Hand-written rather than http-proxy: the one property that matters here is that the proxy
 * dials exactly the address it checked, and forwards exactly the request it checked. Here the
 * upstream request is made to the checked IP literal (node never resolves a literal), with the
 * header set built below; http-proxy would re-derive the target from a URL and re-resolve it.
 *
 * Per request: parse and canonicalise the target → resolve once → floor → ask the PDP once per
 * candidate address (resource.ip) → audit the decision and wait for the ack → dial the first
 * allowed address → forward → audit a closing record (bytes, status, duration) with the same
 * event_id. Any failure of the PDP or the sink answers 503 and forwards nothing.
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import {
  Agent,
  createServer,
  request as httpRequest,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { SpanKind, SpanStatusCode, context as otelContext, trace, type Span } from '@opentelemetry/api';
import {
  isPcxError,
  PcxError,
  parseProxyAuthorization,
  redactContext,
  resolveIdentity,
  type ConfiguredIdentity,
  type Decision,
  type ErrorInfo,
  type PcxCode,
  type DecisionRequest,
  type Principal,
  type Reason,
  type RequestContext,
} from '@portcullis/protocol';
import { type Cidr, formatIp, type Ip, parseIp } from '@portcullis/protocol/ip';
import { canonicalHost, parseCidrOption, printable, splitHostPort, type CanonicalHost } from './address.js';
import { Floor } from './floor.js';
import type { EgressMetrics } from './metrics.js';
import { listenOn } from './listen.js';

export type Decide = (request: DecisionRequest) => Promise<Decision>;
export type Resolve = (host: string) => Promise<string[]>;

/** What the proxy sends to the audit sink. Never carries a lease token: ids only. */
export interface EgressAuditRecord {
  source: 'egress';
  event_id: string;
  principal: Principal;
  action: 'net.http' | 'net.connect';
  resource: Record<string, unknown>;
  /** The request context with lease tokens replaced by their ids. */
  context?: RequestContext;
  decision: 'allow' | 'deny' | 'ask';
  reasons: Reason[];
  /** The deciding policy set's version (absent when no policy decided: PDP down, a refusal). */
  policy_version?: string;
  outcome: {
    /** "decision" (acknowledged before any byte is forwarded) or "close" (the totals, same event_id). */
    phase: 'decision' | 'close';
    mode: 'enforce' | 'report';
    /** false when report-only mode forwarded a request the policy would deny. */
    enforced: boolean;
    forwarded: boolean;
    status?: number;
    bytes_up?: number;
    bytes_down?: number;
    duration_ms?: number;
    error?: { code: string; message: string };
  };
}
export type Audit = (record: EgressAuditRecord) => Promise<unknown>;

export interface EgressProxyOptions {
  decide: Decide;
  audit: Audit;
  /** The configured identity: it stands whatever a client claims (see protocol's resolveIdentity). */
  principal: Principal;
  context?: ConfiguredIdentity['context'];
  /** "report": would-deny decisions are audited as such and forwarded. Default "enforce". */
  mode?: 'enforce' | 'report';
  /** Name → addresses. Default: the system resolver (dns.promises.lookup, all addresses). */
  resolve?: Resolve;
  /** Ranges opted out of the floor, e.g. "127.0.0.0/8". */
  allowCidrs?: string[];
  /** Time allowed for a request head to arrive (slowloris). Default 10 s. */
  headersTimeoutMs?: number;
  /** Largest request head accepted. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Upstream connect timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /** Idle timeout of a tunnel or an upstream exchange. Default 300 s. */
  idleTimeoutMs?: number;
  /** Resolver deadline. Default 5 s. */
  resolveTimeoutMs?: number;
  /** At most this many resolved addresses are checked. Default 8. */
  maxAddresses?: number;
  /** Client connections accepted at once (tunnels included); more are refused. Default 4096. */
  maxConnections?: number;
  metrics?: EgressMetrics;
  /** Other endpoints of this process (the metrics port): never dialled, like the proxy itself. */
  selfEndpoints?: Array<{ host: string; port: number }>;
  /** One line per notable event (startup, report-only would-denies, failures). Default: none. */
  log?: (event: Record<string, unknown>) => void;
}

export interface EgressProxy {
  readonly server: Server;
  /** The bound address. */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

interface Target {
  action: 'net.http' | 'net.connect';
  host: CanonicalHost;
  port: number;
  /** net.http only. */
  method?: string;
  path?: string;
  pathAndQuery?: string;
}

interface Verdict {
  decision: 'allow' | 'deny' | 'ask';
  reasons: Reason[];
  /** The checked address to dial, when forwarding. */
  dial?: Ip;
  /** Forwarded although the policy would not allow it (report-only mode). */
  enforced: boolean;
  /** The PDP could not decide (unavailable, timeout): answer 503. */
  unavailable?: { code: PcxCode; message: string };
  /** The error of a deny the PDP could decide (e.g. an identity token that does not verify). */
  error?: ErrorInfo;
  policyVersion?: string;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
const tracer = trace.getTracer('@portcullis/egress');
/** Longest a closing record waits for a decision record to travel with (see closingRecord). */
const CLOSE_HOLD_MS = 10;

class Answer extends Error {
  constructor(
    readonly status: number,
    readonly code: PcxCode,
    message: string,
    /** Extra response headers (407's Proxy-Authenticate). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startEgressProxy(
  options: EgressProxyOptions & { listen: { host: string; port: number } },
): Promise<EgressProxy> {
  const core = new EgressCore(options);
  const server = createServer({
    maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: 0,
    // Node checks the head timeout on this interval; keep it fine enough for the timeout to bite.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor((options.headersTimeoutMs ?? 10_000) / 4))),
    keepAliveTimeout: 5_000,
  });
  // A bound on file descriptors an agent can pin (idle tunnels, half-open heads).
  server.maxConnections = options.maxConnections ?? 4096;
  server.on('request', (req, res) => core.onRequest(req, res));
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => core.onConnect(req, socket, head));
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => core.refuseUpgrade(req, socket));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => core.onClientError(err, socket));
  await listenOn(server, options.listen, 'the proxy');
  const bound = server.address();
  if (bound === null || typeof bound === 'string')
    throw new PcxError('PCX_EGRESS_LISTEN', 'the proxy did not bind a TCP address');
  core.setSelf(bound.address, bound.port);
  core.log({ event: 'listening', host: bound.address, port: bound.port, mode: core.mode });
  return {
    server,
    address: { host: bound.address, port: bound.port },
    close: () => core.close(server),
  };
}

/** The system resolver: every address, in the resolver's order, no second resolution later. */
const systemResolve: Resolve = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

class EgressCore {
  readonly mode: 'enforce' | 'report';
  private readonly options: EgressProxyOptions;
  private readonly configured: ConfiguredIdentity;
  private readonly resolve: Resolve;
  /**
   * Requests of a client connection whose responses are not finished. A CONNECT pipelined behind
   * them waits for them (node hands it over at once), so that the client reads every earlier
   * response before `200 Connection Established` and never takes one for tunnel bytes.
   */
  private readonly unanswered = new WeakMap<Socket, { count: number; waiting: Array<() => void> }>();
  private readonly allow: Cidr[];
  private floor: Floor;
  private readonly agent: Agent;
  private readonly metrics: EgressMetrics | undefined;
  private readonly sockets = new Set<Socket>();
  /** Closing records not yet acknowledged: off the response path, but awaited on shutdown. */
  private readonly closing = new Set<Promise<unknown>>();
  /** Closing records held back to ride with the next decision record (or until CLOSE_HOLD_MS). */
  private held: EgressAuditRecord[] = [];
  private heldTimer: NodeJS.Timeout | undefined;
  readonly log: (event: Record<string, unknown>) => void;

  constructor(options: EgressProxyOptions) {
    this.options = options;
    this.configured = { principal: options.principal, context: options.context ?? {} };
    this.mode = options.mode ?? 'enforce';
    this.resolve = options.resolve ?? systemResolve;
    this.allow = (options.allowCidrs ?? []).map(parseCidrOption);
    this.floor = new Floor({ allow: this.allow });
    this.metrics = options.metrics;
    this.log = options.log ?? (() => {});
    // One keep-alive pool; node keys it by host:port, and the host is always the checked IP,
    // so connections are reused per checked address and never across addresses.
    // noDelay: a request head is written whole; Nagle would only hold it back behind an unacked segment.
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 512,
      maxFreeSockets: 128,
      scheduling: 'lifo',
      timeout: options.idleTimeoutMs ?? 300_000,
      noDelay: true,
    });
  }

  setSelf(address: string, port: number): void {
    const ip = parseIp(address);
    const own: Ip[] = [];
    const endpoints: Array<{ cidr: Cidr; port: number }> = [];
    const wildcard = ip === undefined || ip.words.every((w) => w === 0);
    if (wildcard) {
      // Listening everywhere: every interface address is this proxy, and so is all of loopback.
      for (const list of Object.values(networkInterfaces())) {
        for (const a of list ?? []) {
          const x = parseIp(a.address);
          if (x) own.push(x);
        }
      }
      for (const c of ['127.0.0.0/8', '::1/128', '0.0.0.0/32', '::/128'])
        endpoints.push({ cidr: parseCidrOption(c), port });
    } else {
      own.push(ip);
    }
    for (const x of own) endpoints.push({ cidr: parseCidrOption(formatIp(x)), port });
    for (const e of this.options.selfEndpoints ?? []) {
      const x = parseIp(e.host);
      if (x) endpoints.push({ cidr: parseCidrOption(formatIp(x)), port: e.port });
    }
    this.floor = new Floor({ allow: this.allow, ownAddresses: own, ownEndpoints: endpoints });
  }

  async close(server: Server): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    });
    this.agent.destroy();
    this.sendClosing();
    // Each append has the audit client's deadline, so this wait is bounded.
    await Promise.allSettled([...this.closing]);
  }

  // ---- absolute-URI HTTP ----

  onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const eventId = randomUUID();
    const span = tracer.startSpan('egress net.http', {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method ?? '' },
    });
    res.on('close', () => span.end());
    this.answering(req.socket, res);
    let target: Target;
    let context: RequestContext | undefined;
    try {
      target = parseHttpTarget(req);
      context = this.identity(req);
    } catch (e) {
      this.refuse(res, e, eventId, span, { action: 'net.http', raw: req.url });
      return;
    }
    this.decideAndAudit(target, context, eventId, span).then(
      (verdict) => {
        if (!verdict.dial) return this.answerDecision(res, verdict, target, eventId);
        // The client left while we decided: forward nothing.
        if (req.socket.destroyed)
          return this.closingRecord(target, context, verdict, eventId, {
            error: { code: 'PCX_EGRESS_CLIENT_CLOSED', message: 'the client closed the connection before forwarding' },
          });
        this.forwardHttp(req, res, target, context, verdict, eventId, started, span);
      },
      (e) => this.refuse(res, e, eventId, span, { action: 'net.http', target, context }),
    );
  }

  private forwardHttp(
    req: IncomingMessage,
    res: ServerResponse,
    target: Target,
    context: RequestContext | undefined,
    verdict: Verdict,
    eventId: string,
    started: number,
    span: Span,
  ): void {
    const ip = formatIp(verdict.dial!);
    const headers = forwardHeaders(
      req.rawHeaders,
      `${hostForHeader(target.host)}${target.port === 80 ? '' : `:${target.port}`}`,
    );
    const clientSpan = tracer.startSpan(
      'egress upstream',
      { kind: SpanKind.CLIENT, attributes: { 'server.address': ip, 'server.port': target.port } },
      trace.setSpan(otelContext.active(), span),
    );
    let bytesUp = 0;
    let bytesDown = 0;
    let status: number | undefined;
    let error: { code: string; message: string } | undefined;
    let closed = false;
    const finish = (): void => {
      if (closed) return;
      closed = true;
      clientSpan.setAttribute('http.response.status_code', status ?? 0);
      if (error) clientSpan.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
      clientSpan.end();
      this.metrics?.inc('portcullis_egress_bytes_total', 'direction="up"', bytesUp);
      this.metrics?.inc('portcullis_egress_bytes_total', 'direction="down"', bytesDown);
      this.closingRecord(target, context, verdict, eventId, {
        status,
        bytes_up: bytesUp,
        bytes_down: bytesDown,
        duration_ms: Math.round(performance.now() - started),
        error,
      });
    };
    const upstream = httpRequest({
      host: ip,
      family: verdict.dial!.family,
      port: target.port,
      method: target.method,
      path: target.pathAndQuery,
      headers,
      setHost: false,
      agent: this.agent,
      timeout: this.options.connectTimeoutMs ?? 10_000,
      // Belt and braces: the host is an IP literal, so node never calls lookup; if it ever did,
      // it gets the checked address and nothing else.
      lookup: (_h, _o, cb) => (cb as (e: null, a: string, f: number) => void)(null, ip, verdict.dial!.family),
    });
    upstream.on('timeout', () =>
      upstream.destroy(new PcxError('PCX_EGRESS_UPSTREAM_TIMEOUT', `upstream ${ip}:${target.port} timed out`)),
    );
    upstream.on('response', (up) => {
      status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, stripHopByHop(up.rawHeaders));
      up.on('data', (chunk: Buffer) => {
        bytesDown += chunk.length;
      });
      up.pipe(res);
      up.on('end', finish);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      error = {
        code: isPcxError(e) ? e.code : 'PCX_EGRESS_UPSTREAM',
        message: `upstream ${ip}:${target.port}: ${e.code ?? e.message}`,
      };
      if (!res.headersSent) sendJson(res, 502, { error }, { 'x-portcullis-event': eventId });
      else res.destroy();
      finish();
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        error ??= { code: 'PCX_EGRESS_CLIENT_CLOSED', message: 'the client closed the connection' };
        upstream.destroy();
      }
      finish();
    });
    req.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    req.pipe(upstream);
  }

  /** Count `res` as unanswered on its connection until it closes (finished or aborted). */
  private answering(socket: Socket, res: ServerResponse): void {
    let entry = this.unanswered.get(socket);
    if (!entry) {
      entry = { count: 0, waiting: [] };
      this.unanswered.set(socket, entry);
    }
    entry.count++;
    const e = entry;
    res.once('close', () => {
      if (--e.count > 0) return;
      const waiting = e.waiting;
      e.waiting = [];
      for (const go of waiting) go();
    });
  }

  // ---- CONNECT tunnels ----

  onConnect(req: IncomingMessage, client: Socket, head: Buffer): void {
    this.track(client);
    client.on('error', () => client.destroy());
    const entry = this.unanswered.get(client);
    // Pipelined behind requests still being answered: handled once they are (strict order).
    if (entry && entry.count > 0) {
      entry.waiting.push(() => {
        // A connection closed meanwhile (the client left, or an earlier response said close) gets nothing.
        if (!client.destroyed && client.writable) this.handleConnect(req, client, head);
      });
      return;
    }
    this.handleConnect(req, client, head);
  }

  private handleConnect(req: IncomingMessage, client: Socket, head: Buffer): void {
    const started = performance.now();
    const eventId = randomUUID();
    const span = tracer.startSpan('egress net.connect', { kind: SpanKind.SERVER });
    client.on('close', () => span.end());
    let target: Target;
    let context: RequestContext | undefined;
    try {
      target = parseConnectTarget(req);
      context = this.identity(req);
    } catch (e) {
      this.refuseRaw(client, e, eventId, { action: 'net.connect', raw: req.url });
      return;
    }
    this.decideAndAudit(target, context, eventId, span).then(
      (verdict) => {
        if (!verdict.dial) {
          const [status, body, headers, phrase] = decisionAnswer(verdict, target, eventId, this.mode);
          return writeRaw(client, status, body, eventId, headers, phrase);
        }
        if (client.destroyed)
          return this.closingRecord(target, context, verdict, eventId, {
            error: {
              code: 'PCX_EGRESS_CLIENT_CLOSED',
              message: 'the client closed the connection before the tunnel was opened',
            },
          });
        this.tunnel(client, head, target, context, verdict, eventId, started);
      },
      (e) => this.refuseRaw(client, e, eventId, { action: 'net.connect', target, context }),
    );
  }

  private tunnel(
    client: Socket,
    head: Buffer,
    target: Target,
    context: RequestContext | undefined,
    verdict: Verdict,
    eventId: string,
    started: number,
  ): void {
    const ip = formatIp(verdict.dial!);
    const upstream = netConnect({
      host: ip,
      port: target.port,
      family: verdict.dial!.family,
      timeout: this.options.connectTimeoutMs ?? 10_000,
      noDelay: true,
    });
    this.track(upstream);
    let established = false;
    let error: { code: string; message: string } | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
      if (established && this.metrics) this.metrics.activeTunnels--;
      const up = upstream.bytesWritten;
      this.metrics?.inc('portcullis_egress_bytes_total', 'direction="up"', up);
      this.metrics?.inc('portcullis_egress_bytes_total', 'direction="down"', upstream.bytesRead);
      this.closingRecord(target, context, verdict, eventId, {
        status: established ? 200 : 502,
        bytes_up: up,
        bytes_down: upstream.bytesRead,
        duration_ms: Math.round(performance.now() - started),
        error,
      });
    };
    upstream.once('connect', () => {
      established = true;
      if (this.metrics) this.metrics.activeTunnels++;
      upstream.setTimeout(this.options.idleTimeoutMs ?? 300_000);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('timeout', () => {
      error ??= {
        code: established ? 'PCX_EGRESS_IDLE_TIMEOUT' : 'PCX_EGRESS_UPSTREAM_TIMEOUT',
        message: `upstream ${ip}:${target.port} timed out`,
      };
      if (!established) writeRaw(client, 504, { error }, eventId);
      finish();
    });
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      error ??= { code: 'PCX_EGRESS_UPSTREAM', message: `upstream ${ip}:${target.port}: ${e.code ?? e.message}` };
      if (!established) writeRaw(client, 502, { error }, eventId);
      finish();
    });
    upstream.on('close', finish);
    client.on('close', finish);
  }

  refuseUpgrade(req: IncomingMessage, socket: Socket): void {
    this.track(socket);
    socket.on('error', () => socket.destroy());
    this.metrics?.inc('portcullis_egress_refusals_total', 'code="PCX_EGRESS_UPGRADE"');
    writeRaw(
      socket,
      501,
      {
        error: {
          code: 'PCX_EGRESS_UPGRADE',
          message:
            `protocol upgrade (${printable(String(req.headers.upgrade ?? ''))}) through an absolute-URI ` +
            `request is not supported; use a CONNECT tunnel (wss://, https://)`,
        },
      },
      randomUUID(),
    );
  }

  onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'PCX_EGRESS_HEADERS_TOO_LARGE',
            `the request head is larger than ${this.options.maxHeaderBytes ?? 16384} bytes`,
          ]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? [
              408,
              'PCX_EGRESS_HEADERS_TIMEOUT',
              `the request head did not arrive within ${this.options.headersTimeoutMs ?? 10000} ms`,
            ]
          : [
              400,
              'PCX_EGRESS_BAD_REQUEST',
              `malformed HTTP request (${err.code ?? 'parse error'}); ambiguous framing such as conflicting ` +
                `Content-Length/Transfer-Encoding is refused`,
            ];
    this.metrics?.inc('portcullis_egress_refusals_total', `code="${code}"`);
    if (err.code === 'ECONNRESET' || !socket.writable) socket.destroy();
    else writeRaw(socket, status, { error: { code, message } }, randomUUID());
  }

  // ---- the decision ----

  /**
   * The identity a request is decided with: the configured one, narrowed by what the client sent
   * in Proxy-Authorization (protocol's resolveIdentity). A session claimed without an identity
   * token is answered 407 and nothing is forwarded; a token goes to the PDP, which verifies it.
   */
  private identity(req: IncomingMessage): RequestContext | undefined {
    // headersDistinct: every Proxy-Authorization line (req.headers keeps only the first), so that
    // two of them are refused instead of one being silently chosen.
    const claim = parseProxyAuthorization(req.headersDistinct['proxy-authorization']);
    const resolved = resolveIdentity(this.configured, claim);
    if (!resolved.ok) {
      const e = resolved.error;
      throw new Answer(407, e.code, e.hint ? `${e.message} (${e.hint})` : e.message, {
        'proxy-authenticate': 'Basic realm="portcullis"',
      });
    }
    return Object.keys(resolved.context).length > 0 ? resolved.context : undefined;
  }

  private async decideAndAudit(
    target: Target,
    context: RequestContext | undefined,
    eventId: string,
    span: Span,
  ): Promise<Verdict> {
    const t0 = performance.now();
    const verdict = await this.decideTarget(target, context);
    const forwarded = verdict.dial !== undefined;
    span.setAttributes({
      'portcullis.decision': verdict.decision,
      'portcullis.enforced': verdict.enforced,
      'portcullis.event_id': eventId,
      'server.address': target.host.host,
      'server.port': target.port,
    });
    if (verdict.policyVersion) span.setAttribute('portcullis.policy_version', verdict.policyVersion);
    if (verdict.unavailable) {
      this.metrics?.inc('portcullis_egress_failures_total', 'peer="pdp"');
      throw new Answer(
        503,
        verdict.unavailable.code,
        `the PDP could not decide (${verdict.unavailable.message}); nothing was forwarded`,
      );
    }
    const record = this.record('decision', target, context, verdict, eventId, forwarded ? {} : { status: 403 });
    // Held closing records leave in the same turn, hence the same write and sink batch.
    this.sendClosing();
    try {
      // Fail closed: nothing is forwarded before the sink has acknowledged the decision.
      await this.options.audit(record);
    } catch (e) {
      this.metrics?.inc('portcullis_egress_failures_total', 'peer="audit"');
      this.log({ event: 'audit_unavailable', event_id: eventId, error: isPcxError(e) ? e.code : 'error' });
      throw new Answer(
        503,
        'PCX_EGRESS_AUDIT_UNAVAILABLE',
        `the audit sink did not acknowledge the record (${isPcxError(e) ? e.code : 'error'}); nothing was forwarded`,
      );
    }
    this.metrics?.observeDecision((performance.now() - t0) / 1000);
    this.metrics?.inc(
      'portcullis_egress_requests_total',
      `action="${target.action}",decision="${verdict.decision}",enforced="${verdict.enforced}"`,
    );
    if (!verdict.enforced) {
      this.log({
        event: 'report_only_would_deny',
        event_id: eventId,
        action: target.action,
        host: target.host.host,
        port: target.port,
        decision: verdict.decision,
        reasons: verdict.reasons,
      });
    }
    return verdict;
  }

  private async decideTarget(target: Target, context: RequestContext | undefined): Promise<Verdict> {
    let addresses: Ip[];
    try {
      addresses = await this.addressesOf(target.host);
    } catch (e) {
      // A name that does not resolve: if the policy refuses it anyway, say so (403 with the
      // rule) rather than leave the client guessing at a 502.
      const d = await this.options.decide({
        principal: this.options.principal,
        action: target.action,
        resource: resourceOf(target),
        ...(context ? { context } : {}),
      });
      if (d.decision !== 'allow' && !d.error)
        return {
          decision: d.decision,
          reasons: d.reasons,
          enforced: true,
          ...(d.policy_version ? { policyVersion: d.policy_version } : {}),
        };
      throw e;
    }
    const reasons: Reason[] = [];
    const candidates: Ip[] = [];
    for (const ip of addresses) {
      const refused = this.floor.check(ip, target.port);
      if (refused) {
        this.metrics?.inc('portcullis_egress_refusals_total', 'code="PCX_EGRESS_FLOOR"');
        if (!reasons.some((r) => r.because === refused.because))
          reasons.push({ effect: 'deny', rule: refused.rule, because: refused.because });
      } else {
        candidates.push(ip);
      }
    }
    if (candidates.length === 0) return { decision: 'deny', reasons, enforced: true };
    const base = resourceOf(target);
    const decisions = await Promise.all(
      candidates.map((ip) =>
        this.options.decide({
          principal: this.options.principal,
          action: target.action,
          resource: { ...base, ip: formatIp(ip) },
          ...(context ? { context } : {}),
        }),
      ),
    );
    let ask: Decision | undefined;
    let failure: { reasons: Reason[]; error: { code: PcxCode; message: string } } | undefined;
    let error: ErrorInfo | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const d = decisions[i]!;
      if (d.decision === 'allow')
        return {
          decision: 'allow',
          reasons: d.reasons,
          dial: candidates[i]!,
          enforced: true,
          ...(d.policy_version ? { policyVersion: d.policy_version } : {}),
        };
      if (d.error && isUnavailable(d.error.code))
        failure ??= { reasons: d.reasons, error: { code: d.error.code, message: d.error.message } };
      else if (d.decision === 'ask') ask ??= d;
      else {
        if (d.error) error ??= d.error;
        for (const r of d.reasons)
          if (!reasons.some((x) => x.rule === r.rule && x.because === r.because && x.lease === r.lease))
            reasons.push(r);
      }
    }
    // An explicit deny for one address is a decision; a failure for another does not turn it into 503.
    if (failure && reasons.length === 0 && !ask)
      return { decision: 'deny', reasons: failure.reasons, enforced: true, unavailable: failure.error };
    const decided: Verdict = ask
      ? { decision: 'ask', reasons: ask.reasons, enforced: true }
      : { decision: 'deny', reasons, enforced: true, ...(error ? { error } : {}) };
    const version = (ask ?? decisions[0])?.policy_version;
    if (version) decided.policyVersion = version;
    // Report-only: forward what the policy would refuse, to the first address the floor passed.
    if (this.mode === 'report' && !failure) return { ...decided, dial: candidates[0]!, enforced: false };
    return decided;
  }

  private async addressesOf(host: CanonicalHost): Promise<Ip[]> {
    if (host.kind === 'ip') return [host.ip];
    let answers: string[];
    const timeoutMs = this.options.resolveTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      answers = await Promise.race([
        this.resolve(host.host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      throw new Answer(
        502,
        'PCX_EGRESS_DNS',
        `could not resolve ${host.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
    }
    const out: Ip[] = [];
    const seen = new Set<string>();
    for (const a of answers) {
      const ip = parseIp(a);
      if (!ip) continue;
      const key = formatIp(ip);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(ip);
      if (out.length >= (this.options.maxAddresses ?? 8)) break;
    }
    if (out.length === 0) throw new Answer(502, 'PCX_EGRESS_DNS', `${host.host} has no usable address`);
    return out;
  }

  // ---- records and answers ----

  private record(
    phase: 'decision' | 'close',
    target: Target,
    context: RequestContext | undefined,
    verdict: Verdict,
    eventId: string,
    outcome: Partial<EgressAuditRecord['outcome']>,
  ): EgressAuditRecord {
    const resource = resourceOf(target);
    if (verdict.dial) resource.ip = formatIp(verdict.dial);
    const rec: EgressAuditRecord = {
      source: 'egress',
      event_id: eventId,
      principal: this.options.principal,
      action: target.action,
      resource,
      decision: verdict.decision,
      reasons: verdict.reasons,
      outcome: {
        phase,
        mode: this.mode,
        enforced: verdict.enforced,
        forwarded: verdict.dial !== undefined,
        ...outcome,
      },
    };
    if (verdict.policyVersion) rec.policy_version = verdict.policyVersion;
    const ctx = redactContext(context);
    if (ctx) rec.context = ctx;
    return rec;
  }

  private closingRecord(
    target: Target,
    context: RequestContext | undefined,
    verdict: Verdict,
    eventId: string,
    outcome: Partial<EgressAuditRecord['outcome']>,
  ): void {
    if (outcome.error === undefined) delete outcome.error;
    if (outcome.status === undefined) delete outcome.status;
    // Hot path: the client is not kept waiting for this ack, and the record is held back to go
    // out with the next decision record (one write, one sink batch, one ack read for both) or
    // after CLOSE_HOLD_MS when no request follows. The decision record was acknowledged before
    // forwarding, so a lost closing record loses byte counts, never the fact that the request
    // happened; a loss is counted and logged, and shutdown sends and waits for those held.
    this.held.push(this.record('close', target, context, verdict, eventId, outcome));
    this.heldTimer ??= setTimeout(() => this.sendClosing(), CLOSE_HOLD_MS).unref();
  }

  private sendClosing(): void {
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    const held = this.held;
    this.held = [];
    for (const record of held) {
      const pending: Promise<void> = this.options.audit(record).then(
        (): void => void this.closing.delete(pending),
        (e: unknown): void => {
          this.closing.delete(pending);
          this.metrics?.inc('portcullis_egress_audit_close_failures_total', '');
          this.log({ event: 'audit_close_failed', event_id: record.event_id, error: isPcxError(e) ? e.code : 'error' });
        },
      );
      this.closing.add(pending);
    }
  }

  private answerDecision(res: ServerResponse, verdict: Verdict, target: Target, eventId: string): void {
    const [status, body, headers, phrase] = decisionAnswer(verdict, target, eventId, this.mode);
    sendJson(res, status, body, headers, phrase);
  }

  private refuse(res: ServerResponse, e: unknown, eventId: string, span: Span, what: Refused): void {
    const a = toAnswer(e, this.log);
    span.setAttributes({ 'portcullis.error': a.code });
    if (a.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: a.code });
    this.auditRefusal(a, eventId, what);
    const [body, headers, phrase] = refusalAnswer(a, eventId);
    sendJson(res, a.status, body, headers, phrase);
  }

  private refuseRaw(socket: Socket, e: unknown, eventId: string, what: Refused): void {
    const a = toAnswer(e, this.log);
    this.auditRefusal(a, eventId, what);
    const [body, headers, phrase] = refusalAnswer(a, eventId);
    writeRaw(socket, a.status, body, eventId, headers, phrase);
  }

  /**
   * A request refused without a policy decision (bad input, DNS, the PDP unavailable) is still
   * recorded, best effort: nothing was forwarded, so nothing waits for the ack. Only the part of
   * a raw target before any query string is kept (a query may carry a secret).
   */
  private auditRefusal(a: Answer, eventId: string, what: Refused): void {
    if (a.status === 400) this.metrics?.inc('portcullis_egress_refusals_total', `code="${a.code}"`);
    if (a.code === 'PCX_EGRESS_AUDIT_UNAVAILABLE') return;
    const resource = what.target
      ? resourceOf(what.target)
      : { target: printable((what.raw ?? '').split('?')[0]!, 256) };
    const record: EgressAuditRecord = {
      source: 'egress',
      event_id: eventId,
      principal: this.options.principal,
      action: what.action,
      resource,
      decision: 'deny',
      reasons: [{ error: { code: a.code, message: a.message } }],
      outcome: { phase: 'decision', mode: this.mode, enforced: true, forwarded: false, status: a.status },
    };
    const ctx = redactContext(what.context ?? this.options.context);
    if (ctx) record.context = ctx;
    this.options.audit(record).catch(() => this.log({ event: 'audit_refusal_failed', event_id: eventId }));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}

/** What is known about a refused request: its parsed target when parsing got that far. */
interface Refused {
  action: 'net.http' | 'net.connect';
  target?: Target;
  context?: RequestContext | undefined;
  raw?: string | undefined;
}

/**
 * A refusal's body, headers and reason phrase: the code and why in all three, since a client may
 * show only one of them (curl, requests and git print the status line of a failed CONNECT).
 */
function refusalAnswer(a: Answer, eventId: string): [Record<string, unknown>, Record<string, string>, string] {
  return [
    { error: { code: a.code, message: a.message } },
    {
      'x-portcullis-code': a.code,
      'x-portcullis-reason': headerSafe(a.message),
      'x-portcullis-event': eventId,
      ...a.headers,
    },
    reasonPhrase(a.status, `${a.code}: ${a.message}`),
  ];
}

function toAnswer(e: unknown, log: (event: Record<string, unknown>) => void): Answer {
  if (e instanceof Answer) return e;
  if (isPcxError(e)) return new Answer(400, e.code, e.hint ? `${e.message} (${e.hint})` : e.message);
  // An unexpected error still fails closed; it is logged (without request data) and answered 502.
  log({ event: 'internal_error', message: (e as Error)?.message ?? String(e) });
  return new Answer(502, 'PCX_EGRESS_INTERNAL', 'internal proxy error; nothing was forwarded');
}

/**
 * The codes of a decision that says "the PDP could not decide" (answered 503) rather than a
 * policy's deny or a malformed request: each failure PdpClient reports, those the PDP sends when
 * it cannot decide, and the transport's own (for a `decide` not built on PdpClient).
 */
const UNAVAILABLE: ReadonlySet<string> = new Set<PcxCode>([
  'PCX_PDP_UNAVAILABLE',
  'PCX_PDP_TIMEOUT',
  'PCX_PDP_OVERLOADED',
  'PCX_PDP_REQUEST_TOO_LARGE',
  'PCX_PDP_BAD_REQUEST',
  'PCX_PDP_BAD_ANSWER',
  'PCX_PDP_ERROR',
  'PCX_PDP_NO_POLICY',
  'PCX_PDP_INTERNAL',
  'PCX_RPC_UNAVAILABLE',
  'PCX_RPC_TIMEOUT',
  'PCX_RPC_CLOSED',
  'PCX_RPC_BAD_FRAME',
  'PCX_RPC_OVERLOADED',
  'PCX_RPC_FRAME_TOO_LARGE',
]);

function isUnavailable(code: string): code is PcxCode {
  return UNAVAILABLE.has(code);
}

function resourceOf(t: Target): Record<string, unknown> {
  return t.action === 'net.http'
    ? { host: t.host.host, port: t.port, method: t.method, path: t.path, scheme: 'http' }
    : { host: t.host.host, port: t.port };
}

function hostForHeader(h: CanonicalHost): string {
  return h.kind === 'ip' && h.ip.family === 6 ? `[${h.host}]` : h.host;
}

/** The target of an absolute-URI request, refused when it is anything else or ambiguous. */
function parseHttpTarget(req: IncomingMessage): Target {
  const method = req.method ?? '';
  if (method === 'TRACE' || method === 'TRACK')
    throw new Answer(
      405,
      'PCX_EGRESS_METHOD',
      `${method} is refused: it reflects the request, headers and credentials included`,
    );
  const url = req.url ?? '';
  if (!/^http:\/\//i.test(url)) {
    if (/^https:\/\//i.test(url))
      throw new PcxError('PCX_EGRESS_BAD_TARGET', 'https:// targets go through a CONNECT tunnel', {
        hint: 'set HTTPS_PROXY so the client tunnels',
      });
    throw new PcxError(
      'PCX_EGRESS_BAD_TARGET',
      'this is a forward proxy: send an absolute-URI request (GET http://host/path) or CONNECT host:port',
    );
  }
  const rest = url.slice(7);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  let pathAndQuery = end < 0 ? '/' : rest.slice(end);
  if (pathAndQuery.startsWith('?')) pathAndQuery = '/' + pathAndQuery;
  const hash = pathAndQuery.indexOf('#');
  if (hash >= 0) pathAndQuery = pathAndQuery.slice(0, hash);
  // Credentials in the URL are a classic confusion ("http://allowed.com@evil.com/").
  if (authority.includes('@'))
    throw new PcxError('PCX_EGRESS_BAD_TARGET', 'user information in the URL is refused', {
      hint: 'send credentials in an Authorization header',
    });
  const { host: rawHost, port } = splitHostPort(authority, 80);
  const host = canonicalHost(rawHost);
  const q = pathAndQuery.indexOf('?');
  const path = q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery;
  const target: Target = { action: 'net.http', host, port, method, path, pathAndQuery };
  checkHostHeader(req, target);
  return target;
}

function parseConnectTarget(req: IncomingMessage): Target {
  const { host: rawHost, port } = splitHostPort(req.url ?? '');
  const target: Target = { action: 'net.connect', host: canonicalHost(rawHost), port };
  checkHostHeader(req, target);
  return target;
}

/**
 * More than one Host header, or one that names another destination than the target, is refused
 * (routing confusion). RFC 9112 §3.2: more than one Host is a 400 whatever the values; node keeps
 * only the first in req.headers (and rawHeaders would forward all), hence headersDistinct.
 */
function checkHostHeader(req: IncomingMessage, target: Target): void {
  const all = req.headersDistinct.host;
  if (all === undefined) return;
  if (all.length > 1)
    throw new PcxError('PCX_EGRESS_BAD_REQUEST', `the request has ${all.length} Host headers; send exactly one`);
  const raw = all[0]!;
  let h: { host: string; port: number };
  let c: CanonicalHost;
  try {
    h = splitHostPort(raw, target.action === 'net.http' ? 80 : target.port);
    c = canonicalHost(h.host);
  } catch {
    throw new PcxError('PCX_EGRESS_HOST_MISMATCH', `the Host header "${printable(raw)}" is not a valid host`);
  }
  if (c.host !== target.host.host || h.port !== target.port) {
    throw new PcxError(
      'PCX_EGRESS_HOST_MISMATCH',
      `the Host header "${printable(raw)}" differs from the request target ${target.host.host}:${target.port}`,
    );
  }
}

/** Request headers to send upstream: hop-by-hop ones removed (RFC 9110 7.6.1), Host ensured. */
function forwardHeaders(raw: string[], host: string): string[] {
  const out = stripHopByHop(raw);
  let hasHost = false;
  for (let i = 0; i < out.length; i += 2) if (out[i]!.toLowerCase() === 'host') hasHost = true;
  if (!hasHost) out.push('Host', host);
  return out;
}

function stripHopByHop(raw: string[]): string[] {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'connection' || name === 'proxy-connection') {
      listed ??= new Set();
      for (const t of raw[i + 1]!.split(',')) listed.add(t.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed?.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * 403 for deny and ask, with what to do about it. The rule (or the PDP's error) is named in the
 * reason header and in the status line's reason phrase, since curl, requests and git show only
 * the status line of a refused CONNECT; ignored leases say why they did not lift the deny.
 */
function decisionAnswer(
  verdict: Verdict,
  target: Target,
  eventId: string,
  mode: string,
): [number, Record<string, unknown>, Record<string, string>, string] {
  const first = verdict.reasons.find((r) => r.effect === verdict.decision);
  let reasonText = first
    ? `${first.rule ?? first.policy ?? 'rule'}: ${first.because ?? verdict.decision}`
    : verdict.error
      ? `${verdict.error.code}: ${verdict.error.message}`
      : `default deny: no rule allows ${target.action} to ${target.host.host}:${target.port}`;
  const ignored = verdict.reasons.filter((r) => r.ignored !== undefined);
  if (ignored.length > 0)
    reasonText += `; ${ignored.map((r) => `lease "${r.lease ?? 'unknown'}" ignored: ${r.ignored}`).join('; ')}`;
  const body: Record<string, unknown> = {
    decision: verdict.decision,
    action: target.action,
    resource: resourceOf(target),
    reasons: verdict.reasons,
    event_id: eventId,
    mode,
  };
  if (verdict.error) body.error = verdict.error;
  if (verdict.decision === 'ask') {
    body.request = {
      action: target.action,
      resource: resourceOf(target),
      how:
        'ask a human for a lease that allows this, then send it as the password in Proxy-Authorization (Basic ' +
        'session:lease-token)',
    };
  }
  const headers: Record<string, string> = {
    'x-portcullis-reason': headerSafe(reasonText),
    'x-portcullis-decision': verdict.decision,
    'x-portcullis-event': eventId,
  };
  if (verdict.error) headers['x-portcullis-code'] = verdict.error.code;
  return [403, body, headers, reasonPhrase(403, reasonText)];
}

/** Header values must be visible ASCII: escape the rest (a `because` may be any language). */
function headerSafe(s: string, max = 512): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).slice(0, max);
}

/**
 * A status line's reason phrase carrying why: the standard phrase, then the reason made of the
 * characters a reason phrase may hold (RFC 9112 §4: SP and visible ASCII here) and bounded.
 */
function reasonPhrase(status: number, why: string): string {
  return `${STATUS_CODES[status] ?? 'Error'}: ${headerSafe(why, 240)}`;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string>,
  phrase = STATUS_CODES[status] ?? 'Error',
): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, phrase, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answer on a raw socket (CONNECT, parse errors); the reason phrase defaults to node's for the status. */
function writeRaw(
  socket: Socket,
  status: number,
  body: Record<string, unknown>,
  eventId: string,
  headers: Record<string, string> = {},
  phrase = STATUS_CODES[status] ?? 'Error',
): void {
  const json = JSON.stringify(body) + '\n';
  const extra = Object.entries({ 'x-portcullis-event': eventId, ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  if (!socket.destroyed)
    socket.end(
      `HTTP/1.1 ${status} ${phrase}\r\ncontent-type: application/json\r\ncontent-length: ` +
        `${Buffer.byteLength(json)}\r\nconnection: close\r\n${extra}\r\n${json}`,
    );
}
