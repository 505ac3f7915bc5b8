/**
 * The one log format of every Portcullis daemon: JSON lines on stderr,
 *   {"time":"2026-01-01T00:00:00.000Z","level":"info","daemon":"pdp","msg":"listening on …", …fields}
 * so that a collector parses every daemon the same way. `time`, `level`, `daemon` and `msg` come
 * first and cannot be overwritten by a field. The readiness line of every daemon has a `msg`
 * starting with "listening on " (see isListeningLine). Never pass a secret (a token, a key) in a
 * message or a field: log lines leave the trust boundary.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A log call: a level, a lower-case message, optional structured fields. */
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface LoggerOptions {
  /** The daemon's name, written as `daemon` on every line (e.g. "pdp", "audit", "egress"). */
  daemon: string;
  /** Where the lines go. Default: process.stderr. */
  stream?: NodeJS.WritableStream;
  /** The clock. Default: `() => new Date()`. */
  now?: () => Date;
}

const RESERVED = new Set(['time', 'level', 'daemon', 'msg']);

export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => new Date());
  const { daemon } = options;
  return (level, msg, fields) => {
    const line: Record<string, unknown> = { time: now().toISOString(), level, daemon, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) if (!RESERVED.has(k)) line[k] = v;
    stream.write(`${safeStringify(line)}\n`);
  };
}

/** JSON for a log line; a field that cannot be serialised (a cycle, a BigInt) is replaced, not thrown. */
function safeStringify(line: Record<string, unknown>): string {
  try {
    return JSON.stringify(line);
  } catch {
    const { time, level, daemon, msg } = line;
    return JSON.stringify({ time, level, daemon, msg, log_error: 'fields could not be serialised' });
  }
}

/** The parsed line when `text` is one log line of a daemon announcing it is ready, else undefined. */
export function isListeningLine(text: string): { daemon: string; msg: string } | undefined {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof line !== 'object' || line === null) return undefined;
  const { daemon, msg } = line as { daemon?: unknown; msg?: unknown };
  if (typeof daemon !== 'string' || typeof msg !== 'string' || !msg.startsWith('listening on ')) return undefined;
  return { daemon, msg };
}
