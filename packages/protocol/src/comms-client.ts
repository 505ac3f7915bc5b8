/**
 * The typed client of the message filter (`portcullis comms`): `check({ channel, to, text })` asks
 * whether a message may be sent and gets the decision, the findings and the redacted text. It
 * never rejects: every failure (the filter unreachable, slow, a refusal, a malformed answer)
 * becomes a deny whose `error` carries a stable code and no redacted text, so that a caller that
 * sends only on "allow" fails closed.
 */
import { request } from 'node:http';
import type { PcxCode } from './codes.js';
import { isPcxCode } from './codes.js';
import type { Decision, ErrorInfo } from './types.js';

/** What is checked: a message about to go out on a channel. */
export interface CommsCheckRequest {
  /** Where the message goes: "slack", "email", "prompt", "tool-result", … (1-128 characters). */
  channel: string;
  /** The recipient, as the channel names it (optional, up to 1,024 characters). */
  to?: string;
  /** The message. */
  text: string;
}

/** A secret found in the text: a byte span of its UTF-8 bytes. */
export interface CommsFinding {
  kind: string;
  rule: string;
  start: number;
  end: number;
  /** For a known secret: which one, and in which encoding it appeared. */
  secret?: { name: string; version: number };
  encoding?: string;
}

export interface CommsCheckResult extends Decision {
  findings: CommsFinding[];
  /** The text with each finding replaced by `[REDACTED:<kind>]`; absent when the check failed. */
  redacted?: string;
  /** Hex SHA-256 of the text's UTF-8 bytes (what the audit record names it by). */
  sha256?: string;
}

export interface CommsClientOptions {
  /** The filter's Unix socket (default /run/portcullis/comms.sock). */
  socketPath?: string;
  /** Deadline per check in milliseconds; default 2000 (the filter itself waits on the PDP and the audit sink). */
  timeoutMs?: number;
  /** Largest answer accepted, in bytes; default 8 MiB (an answer carries the redacted text). */
  maxAnswerBytes?: number;
}

const EFFECTS = new Set(['allow', 'deny', 'ask']);

export class CommsClient {
  private readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;

  constructor(options: CommsClientOptions = {}) {
    this.socketPath = options.socketPath ?? '/run/portcullis/comms.sock';
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? 8 << 20;
  }

  /** Check a message; never rejects (a failure is a deny with `error`). `headers`: identity headers. */
  async check(
    message: CommsCheckRequest,
    options: { headers?: Record<string, string> } = {},
  ): Promise<CommsCheckResult> {
    let body: string;
    try {
      body = JSON.stringify(message);
    } catch (e) {
      return failure('PCX_COMMS_BAD_REQUEST', `the message cannot be encoded as JSON: ${(e as Error).message}`);
    }
    let answer: { status: number; text: string };
    try {
      answer = await this.post('/v1/messages/check', body, options.headers ?? {});
    } catch (e) {
      return failure('PCX_COMMS_UNAVAILABLE', `could not ask the message filter: ${(e as Error).message}`);
    }
    let frame: unknown;
    try {
      frame = JSON.parse(answer.text);
    } catch {
      return failure('PCX_COMMS_BAD_ANSWER', `the message filter answered HTTP ${answer.status} without JSON`);
    }
    if (answer.status !== 200) {
      const e = (frame as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = isPcxCode(e?.code) ? e.code : 'PCX_COMMS_BAD_ANSWER';
      return failure(
        code,
        typeof e?.message === 'string' ? e.message : `the message filter answered HTTP ${answer.status}`,
      );
    }
    return parseResult(frame);
  }

  private post(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          path,
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.maxAnswerBytes) {
              req.destroy(new Error(`the answer is over ${this.maxAnswerBytes} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function failure(code: PcxCode, message: string): CommsCheckResult {
  const error: ErrorInfo = { code, message };
  return { decision: 'deny', reasons: [{ error }], error, findings: [] };
}

/** Strictly check an answer: anything unexpected is a failure, never a decision. */
function parseResult(frame: unknown): CommsCheckResult {
  const bad = (why: string) => failure('PCX_COMMS_BAD_ANSWER', `the message filter sent a malformed answer: ${why}`);
  if (typeof frame !== 'object' || frame === null) return bad('not an object');
  const f = frame as Record<string, unknown>;
  if (typeof f.decision !== 'string' || !EFFECTS.has(f.decision)) return bad('"decision" is not allow, deny or ask');
  if (!Array.isArray(f.reasons) || !f.reasons.every((r) => typeof r === 'object' && r !== null))
    return bad('"reasons" is not a list of objects');
  if (!Array.isArray(f.findings)) return bad('"findings" is not a list');
  for (const x of f.findings as Record<string, unknown>[]) {
    if (
      typeof x !== 'object' ||
      x === null ||
      typeof x.kind !== 'string' ||
      typeof x.rule !== 'string' ||
      !Number.isSafeInteger(x.start) ||
      !Number.isSafeInteger(x.end)
    )
      return bad('a finding is not {kind, rule, start, end}');
  }
  if (f.redacted !== undefined && typeof f.redacted !== 'string') return bad('"redacted" is not a string');
  if (f.sha256 !== undefined && (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)))
    return bad('"sha256" is not 64 hex digits');
  const error = f.error as ErrorInfo | undefined;
  if (error !== undefined && (typeof error?.code !== 'string' || typeof error?.message !== 'string'))
    return bad('"error" is not {code, message}');
  if (error !== undefined && f.decision !== 'deny') return bad(`"error" is set on an "${f.decision}" decision`);
  const out: CommsCheckResult = {
    decision: f.decision as CommsCheckResult['decision'],
    reasons: f.reasons as CommsCheckResult['reasons'],
    findings: f.findings as CommsFinding[],
  };
  if (typeof f.policy_version === 'string') out.policy_version = f.policy_version;
  if (error !== undefined) out.error = error;
  if (f.redacted !== undefined) out.redacted = f.redacted as string;
  if (f.sha256 !== undefined) out.sha256 = f.sha256 as string;
  return out;
}
