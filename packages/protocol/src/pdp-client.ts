/**
 * The PDP client every PEP and agent runtime uses. `decide` never rejects: every failure —
 * the PDP unreachable, slow, closing the connection, answering garbage, an error frame, a
 * malformed decision — becomes a deny whose reason carries an `error` with a stable code, so
 * that the deny says "this was a failure, not policy" (docs/architecture.md, "Fail closed").
 *
 * Optional decision cache (off by default): keyed by the SHA-256 of the canonical JSON of the
 * whole request (never the request itself, which can be large), an LRU bounded by entries and
 * by bytes, with a TTL. Only well-formed answers without an `error` are cached; requests that
 * carry leases or an identity token are never cached, because a token can expire or be revoked
 * at any moment and the cache cannot know. A cached decision can be up to `ttlMs` older than a
 * policy reload.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Decision, DecisionRequest, ErrorInfo, Reason } from './types.js';
import type { PcxCode } from './codes.js';
import { isPcxError } from './errors.js';
import { RpcClient } from './rpc.js';
import { canonicalize } from './audit-record.js';

export interface PdpClientOptions {
  /** The PDP's Unix socket (default /run/portcullis/pdp.sock). */
  socketPath?: string;
  /** Persistent connections (round-robin). Default 1. */
  connections?: number;
  /** Default per-decision deadline in milliseconds. Default 250. */
  timeoutMs?: number;
  /**
   * Enable the decision cache: at most `maxEntries` decisions, at most `maxBytes` bytes of
   * them (their JSON length; default 4 MiB), each kept `ttlMs` milliseconds.
   */
  cache?: { maxEntries: number; ttlMs: number; maxBytes?: number };
}

export interface PdpHealth {
  /** "ok" and "no_policy" come from the PDP; "unavailable" means it could not be asked. */
  status: 'ok' | 'no_policy' | 'unavailable';
  policy_version?: string;
  error?: ErrorInfo;
  [field: string]: unknown;
}

const EFFECTS = new Set(['allow', 'deny', 'ask']);
const REASON_STRING_FIELDS = ['effect', 'policy', 'rule', 'because', 'source', 'lease', 'ignored'] as const;

export class PdpClient {
  private readonly rpc: RpcClient;
  private readonly cache: DecisionCache | undefined;

  constructor(options: PdpClientOptions = {}) {
    this.rpc = new RpcClient({
      socketPath: options.socketPath ?? '/run/portcullis/pdp.sock',
      connections: options.connections,
      timeoutMs: options.timeoutMs,
      peerName: 'PDP',
    });
    this.cache =
      options.cache && options.cache.maxEntries > 0 && options.cache.ttlMs > 0
        ? new DecisionCache(
            options.cache.maxEntries,
            Math.ceil(options.cache.ttlMs),
            options.cache.maxBytes ?? 4 * 1024 * 1024,
          )
        : undefined;
  }

  /** Ask for a decision. Never rejects; a failure is a deny with `error` set. */
  async decide(request: DecisionRequest, options: { timeoutMs?: number } = {}): Promise<Decision> {
    let key: string | undefined;
    if (this.cache && !carriesTokens(request)) {
      try {
        key = createHash('sha256').update(canonicalize(request)).digest('base64url');
      } catch {
        key = undefined; // not serialisable: the call below fails and reports it
      }
      const hit = key === undefined ? undefined : this.cache.get(key);
      if (hit) return hit;
    }
    let frame: Record<string, unknown>;
    try {
      frame = await this.rpc.call({ request }, options);
    } catch (e) {
      return failure(
        transportCode(e),
        isPcxError(e) ? e.message : `could not send the request to the PDP: ${(e as Error)?.message ?? String(e)}`,
      );
    }
    const d = parseDecision(frame);
    if (key !== undefined && !d.error) this.cache!.set(key, d);
    return d;
  }

  /** The PDP's health (loaded policy version, last reload). Never rejects. */
  async health(options: { timeoutMs?: number } = {}): Promise<PdpHealth> {
    try {
      const frame = await this.rpc.call({ health: true }, options);
      const h = frame.health as PdpHealth | undefined;
      if (typeof h !== 'object' || h === null || (h.status !== 'ok' && h.status !== 'no_policy')) {
        return {
          status: 'unavailable',
          error: {
            code: 'PCX_PDP_BAD_ANSWER',
            message: 'the PDP answered a health frame without a valid "health" object',
          },
        };
      }
      return h;
    } catch (e) {
      return {
        status: 'unavailable',
        error: { code: transportCode(e), message: isPcxError(e) ? e.message : String(e) },
      };
    }
  }

  close(): void {
    this.rpc.close();
  }
}

function transportCode(e: unknown): PcxCode {
  switch (isPcxError(e) ? e.code : '') {
    case 'PCX_RPC_TIMEOUT':
      return 'PCX_PDP_TIMEOUT';
    case 'PCX_RPC_BAD_FRAME':
      return 'PCX_PDP_BAD_ANSWER';
    case 'PCX_RPC_OVERLOADED':
      return 'PCX_PDP_OVERLOADED';
    case 'PCX_RPC_FRAME_TOO_LARGE':
      return 'PCX_PDP_REQUEST_TOO_LARGE';
    case 'PCX_RPC_UNAVAILABLE':
    case 'PCX_RPC_CLOSED':
      return 'PCX_PDP_UNAVAILABLE';
    default:
      // e.g. a request that JSON cannot encode (a BigInt, a cycle): it never left this process.
      return 'PCX_PDP_BAD_REQUEST';
  }
}

function failure(code: PcxCode, message: string): Decision {
  const error = { code, message };
  return { decision: 'deny', reasons: [{ error }], error };
}

/** Strictly check an answer frame; anything unexpected is a failure, never a decision. */
function parseDecision(frame: Record<string, unknown>): Decision {
  if ('error' in frame && !('decision' in frame)) {
    const e = frame.error as { code?: unknown; message?: unknown } | null;
    const what =
      typeof e?.code === 'string'
        ? `${e.code}: ${typeof e.message === 'string' ? e.message : ''}`
        : 'an unspecified error';
    return failure('PCX_PDP_ERROR', `the PDP refused the request (${what})`);
  }
  const bad = (why: string) => failure('PCX_PDP_BAD_ANSWER', `the PDP sent a malformed decision: ${why}`);
  const { decision, reasons, policy_version, error } = frame;
  if (typeof decision !== 'string' || !EFFECTS.has(decision)) return bad('"decision" is not allow, deny or ask');
  if (!Array.isArray(reasons)) return bad('"reasons" is not a list');
  for (const r of reasons) {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return bad('a reason is not an object');
    for (const f of REASON_STRING_FIELDS) {
      if ((r as Record<string, unknown>)[f] !== undefined && typeof (r as Record<string, unknown>)[f] !== 'string')
        return bad(`a reason's "${f}" is not a string`);
    }
    const tr = (r as Reason).truncated;
    if (tr !== undefined && !(Number.isSafeInteger(tr) && tr >= 0))
      return bad('a reason\'s "truncated" is not a count');
    const re = (r as Reason).error;
    if (re !== undefined && !isErrorInfo(re)) return bad('a reason\'s "error" is not {code, message}');
  }
  if (policy_version !== undefined && typeof policy_version !== 'string')
    return bad('"policy_version" is not a string');
  if (error !== undefined && !isErrorInfo(error)) return bad('"error" is not {code, message}');
  // An answer with an error is a deny whatever it says: fail closed on a confused peer.
  if (error !== undefined && decision !== 'deny') return bad(`"error" is set on an "${decision}" decision`);
  const d: Decision = { decision: decision as Decision['decision'], reasons: reasons as Reason[] };
  if (policy_version !== undefined) d.policy_version = policy_version;
  if (error !== undefined) d.error = error as ErrorInfo;
  return d;
}

function isErrorInfo(v: unknown): v is ErrorInfo {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as ErrorInfo).code === 'string' &&
    typeof (v as ErrorInfo).message === 'string'
  );
}

function carriesTokens(request: DecisionRequest): boolean {
  const leases = request?.context?.leases as unknown;
  return (
    request?.context?.identity !== undefined ||
    (leases !== undefined && !(Array.isArray(leases) && leases.length === 0))
  );
}

/** An LRU bounded by entries and by bytes (a decision's JSON length), each entry with a deadline. */
class DecisionCache {
  private readonly entries: LRUCache<string, Decision>;

  constructor(maxEntries: number, ttlMs: number, maxBytes: number) {
    this.entries = new LRUCache<string, Decision>({
      max: maxEntries,
      maxSize: maxBytes,
      // The key is a 43-character hash; the decision is charged by its JSON (reasons can be long).
      sizeCalculation: (d) => 64 + JSON.stringify(d).length,
      ttl: ttlMs,
      // A TTL cache must not answer past the deadline, even between purges.
      allowStale: false,
      updateAgeOnGet: false,
    });
  }

  get(key: string): Decision | undefined {
    const d = this.entries.get(key);
    return d === undefined ? undefined : structuredClone(d); // callers may mutate theirs; the cached one stays intact
  }

  set(key: string, d: Decision): void {
    const copy = structuredClone(d);
    // A decision larger than the whole budget is simply not kept (lru-cache refuses it).
    this.entries.set(key, copy);
  }
}
