/**
 * The message filter's HTTP API on a Unix socket. `POST /v1/messages/check {channel, to, text}`
 * scans the text (known secrets and pattern rules), asks the PDP `comms.send` with
 * resource.channel/to/size/secrets, writes the audit record and, only once the sink acknowledged
 * it, answers the decision, the findings and the redacted text. `GET /v1/health` answers
 * liveness. It promises: the text is never logged, audited or echoed in an error, only its
 * SHA-256, size and findings; a body is bounded and read before anything else happens; garbage
 * gets a 400 with a PCX code; any failure on the way (PDP, audit sink, a bug) is a deny.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { stat, unlink } from 'node:fs/promises';
import {
  type AuditAck,
  type AuditRecordInput,
  type Decision,
  type DecisionRequest,
  listenUnixSocket,
  type PcxCode,
  type Principal,
  type RequestContext,
} from '@portcullis/protocol';
import type { Finding, Scanner } from '@portcullis/scan';

export interface CommsServerOptions {
  /** The Unix socket to serve on (created 0660). */
  socketPath: string;
  /** The scanner (fingerprints and rules already loaded). */
  scanner: Scanner;
  /** Asks the PDP; must never reject (PdpClient.decide). */
  decide: (request: DecisionRequest) => Promise<Decision>;
  /** Writes one audit record; resolves on the sink's ack (AuditClient.append). */
  audit: (record: AuditRecordInput) => Promise<AuditAck>;
  /** The principal every check is made for (the sidecar's configured identity). */
  principal: Principal;
  /** The configured request context (project, blueprint, session). */
  context?: RequestContext;
  /** Largest request body, in bytes; default 1 MiB. */
  maxBodyBytes?: number;
  /** Time allowed for a whole request (head and body), in milliseconds; default 10000. */
  requestTimeoutMs?: number;
  /** Time allowed for in-flight requests when closing, in milliseconds; default 5000. */
  drainMs?: number;
  /** Events for the operator's log: never the text, only its hash and counts. */
  log?: (event: Record<string, unknown>) => void;
}

export interface CommsServer {
  /** Stops taking connections, lets in-flight checks finish (up to drainMs), removes the socket. Idempotent. */
  close(): Promise<void>;
}

const MAX_CHANNEL_CHARS = 128;
const MAX_TO_CHARS = 1024;
const FIELDS = new Set(['channel', 'to', 'text']);

/** A refusal of the request itself (never a decision): HTTP status, code, message. */
class Refusal {
  constructor(
    readonly status: number,
    readonly code: PcxCode,
    readonly message: string,
  ) {}
}

export async function startCommsServer(options: CommsServerOptions): Promise<CommsServer> {
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const drainMs = options.drainMs ?? 5000;
  const log = options.log ?? (() => {});

  const server = createServer({ requestTimeout: options.requestTimeoutMs ?? 10_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      // A bug: the message is denied, and the log says what broke (never the text).
      log({ event: 'internal-error', error: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) send(res, 500, errorBody('PCX_COMMS_INTERNAL', 'the message filter failed; not sent'));
      else res.destroy();
    });
  });
  server.on('clientError', (_e, socket) => {
    // Malformed HTTP: answer 400 when the socket can still take it, never crash.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/v1/health') {
      if (req.method !== 'GET') return refuse(res, new Refusal(405, 'PCX_COMMS_METHOD', 'use GET /v1/health'));
      return send(res, 200, { status: 'ok' });
    }
    if (path !== '/v1/messages/check')
      return refuse(res, new Refusal(404, 'PCX_COMMS_NOT_FOUND', `no endpoint "${path}": use POST /v1/messages/check`));
    if (req.method !== 'POST') return refuse(res, new Refusal(405, 'PCX_COMMS_METHOD', 'use POST /v1/messages/check'));
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json')
      return refuse(
        res,
        new Refusal(415, 'PCX_COMMS_MEDIA_TYPE', 'send the request as Content-Type: application/json'),
      );
    const body = await readBody(req, maxBodyBytes);
    if (body instanceof Refusal) return refuse(res, body);
    const message = parseMessage(body);
    if (message instanceof Refusal) return refuse(res, message);
    await check(message, res);
  }

  async function check(message: { channel: string; to?: string; text: string }, res: ServerResponse): Promise<void> {
    const bytes = Buffer.from(message.text, 'utf8');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { findings, redacted } = options.scanner.scan(bytes);
    const resource: Record<string, unknown> = {
      channel: message.channel,
      size: bytes.length,
      secrets: findings.length,
    };
    if (message.to !== undefined) resource.to = message.to;
    const request: DecisionRequest = { principal: options.principal, action: 'comms.send', resource };
    if (options.context) request.context = options.context;
    let decision = await options.decide(request);
    const record: AuditRecordInput = {
      source: 'comms',
      principal: options.principal,
      action: 'comms.send',
      // What the record keeps of the text: its hash and the findings (spans, kinds, which secret).
      resource: { ...resource, sha256, findings: findings.map(auditFinding) },
      decision: decision.decision,
      reasons: decision.reasons,
      outcome: { status: 200 },
    };
    if (options.context) record.context = options.context;
    try {
      await options.audit(record);
    } catch (e) {
      // No ack, no answer but a deny: a message must not leave without its record.
      const error = {
        code: 'PCX_COMMS_AUDIT_UNAVAILABLE' as const,
        message: `the audit sink did not acknowledge the record (${(e as Error).message}); the message is denied`,
      };
      decision = { decision: 'deny', reasons: [...decision.reasons, { error }], error };
    }
    log({
      event: 'check',
      channel: message.channel,
      size: bytes.length,
      sha256,
      findings: findings.length,
      decision: decision.decision,
      ...(decision.error ? { error: decision.error.code } : {}),
    });
    send(res, 200, {
      ...decision,
      findings: findings.map(publicFinding),
      redacted: Buffer.from(redacted as Uint8Array).toString('utf8'),
      sha256,
    });
  }

  const { ino } = await listenUnixSocket(server, options.socketPath, {
    codes: { path: 'PCX_COMMS_SOCKET_PATH', inUse: 'PCX_COMMS_SOCKET_IN_USE', listen: 'PCX_COMMS_LISTEN' },
  });

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), drainMs);
        await closed;
        clearTimeout(timer);
        // Remove the socket file only if it is still ours (not one a successor already created).
        const st = await stat(options.socketPath).catch(() => undefined);
        if (st?.ino === ino) await unlink(options.socketPath).catch(() => {});
      })();
      return closing;
    },
  };
}

/** The body, or a refusal: over the limit (by Content-Length or while reading), or cut short. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | Refusal> {
  const tooLarge = new Refusal(413, 'PCX_COMMS_BODY_TOO_LARGE', `the request body is over ${max} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    req.resume(); // drain what was sent, so that the answer is read
    return Promise.resolve(tooLarge);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        resolve(tooLarge);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
      done = true;
    });
    req.on('error', () => {
      if (!done) resolve(new Refusal(400, 'PCX_COMMS_BAD_REQUEST', 'the request body was cut short'));
      done = true;
    });
  });
}

/** The message, or a refusal saying what is wrong. Never quotes the body: it may hold the secret. */
function parseMessage(body: Buffer): { channel: string; to?: string; text: string } | Refusal {
  const bad = (message: string) => new Refusal(400, 'PCX_COMMS_BAD_REQUEST', message);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    // V8's message quotes the input around the error: only the position is kept.
    const at = /position (\d+)/.exec((e as Error).message);
    return bad(`the body is not valid JSON${at ? ` (at byte ${at[1]})` : ''}: send {"channel", "to", "text"}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return bad('the body must be a JSON object {"channel", "to", "text"}');
  const m = value as Record<string, unknown>;
  for (const k of Object.keys(m))
    if (!FIELDS.has(k)) return bad(`unknown field "${k.slice(0, 64)}" (fields: channel, to, text)`);
  if (typeof m.channel !== 'string' || m.channel.length === 0 || m.channel.length > MAX_CHANNEL_CHARS)
    return bad(`"channel" must be a string of 1 to ${MAX_CHANNEL_CHARS} characters`);
  if (m.to !== undefined && (typeof m.to !== 'string' || m.to.length > MAX_TO_CHARS))
    return bad(`"to" must be a string of at most ${MAX_TO_CHARS} characters`);
  if (typeof m.text !== 'string') return bad('"text" must be a string');
  return { channel: m.channel, text: m.text, ...(m.to !== undefined ? { to: m.to as string } : {}) };
}

/** A finding as the caller gets it. */
function publicFinding(f: Finding): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: f.kind, rule: f.rule, start: f.start, end: f.end };
  if (f.secret) out.secret = { name: f.secret.name, version: f.secret.version };
  if (f.encoding) out.encoding = f.encoding;
  return out;
}

/**
 * A finding as the audit record keeps it. Member names matter: the record's redaction blanks any
 * member named like a credential ("secret"), so the secret's name and version go in as `name`
 * and `version`.
 */
function auditFinding(f: Finding): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: f.kind, rule: f.rule, start: f.start, end: f.end };
  if (f.secret) {
    out.name = f.secret.name;
    out.version = f.secret.version;
  }
  if (f.encoding) out.encoding = f.encoding;
  return out;
}

function errorBody(code: PcxCode, message: string): Record<string, unknown> {
  return { error: { code, message } };
}

function refuse(res: ServerResponse, r: Refusal): void {
  // After a refused body the connection is not reused: what is left of the body is not read.
  send(res, r.status, errorBody(r.code, r.message), r.status === 413);
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}
