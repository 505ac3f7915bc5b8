/**
 * NDJSON framing shared by every Portcullis socket (PDP and audit, both directions):
 * one JSON value per line, lines ending in "\n", at most MAX_FRAME_BYTES per line.
 *
 * The decoder never buffers more than the limit: a line that grows past it is reported once
 * through onOverflow and the decoder stops delivering (the caller closes the connection, as
 * docs/architecture.md requires). Chunks are kept as a list and joined only when a newline arrives, so a
 * large frame delivered in many small chunks costs O(n), not O(n²).
 */
export const MAX_FRAME_BYTES = 1024 * 1024;

const NL = 0x0a;

export interface LineDecoderOptions {
  maxFrameBytes?: number;
}

export class LineDecoder {
  private readonly onLine: (line: string) => void;
  private readonly onOverflow: () => void;
  private readonly max: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dead = false;

  constructor(onLine: (line: string) => void, onOverflow: () => void, options: LineDecoderOptions = {}) {
    this.onLine = onLine;
    this.onOverflow = onOverflow;
    this.max = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Bytes received that do not yet form a complete line (a partial frame). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.dead) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      let line: string;
      if (this.pendingBytes === 0) {
        if (piece.length > this.max) {
          this.overflow();
          return;
        }
        line = piece.toString('utf8');
      } else {
        if (this.pendingBytes + piece.length > this.max) {
          this.overflow();
          return;
        }
        this.pending.push(piece);
        line = Buffer.concat(this.pending, this.pendingBytes + piece.length).toString('utf8');
        this.pending = [];
        this.pendingBytes = 0;
      }
      start = nl + 1;
      // Blank lines (and a stray "\r" from a hand-typed socat session) are not frames.
      if (line.length > 0 && line !== '\r') this.onLine(line);
      if (this.dead) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.max) {
        this.overflow();
        return;
      }
      // Copy: the caller's chunk buffer may be reused by the stream.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
  }

  /** Stop delivering lines (after an overflow or when the connection is closing). */
  stop(): void {
    this.dead = true;
    this.pending = [];
    this.pendingBytes = 0;
  }

  private overflow(): void {
    this.stop();
    this.onOverflow();
  }
}

/** The longest string id a frame may carry (in UTF-16 code units). */
export const MAX_ID_CHARS = 256;

/** An id as a frame carries it: a safe integer, or a string of at most MAX_ID_CHARS characters. */
export type FrameId = number | string;

/**
 * Whether `id` is a valid frame id. Numbers must be safe integers: a larger one (or `1e400`,
 * which JSON.parse reads as Infinity) cannot be echoed back exactly, so an answer could reach
 * the wrong caller or none. Strings are bounded so that echoing one cannot grow an answer.
 */
export function isFrameId(id: unknown): id is FrameId {
  return Number.isSafeInteger(id) || (typeof id === 'string' && id.length <= MAX_ID_CHARS);
}

/** The JSON text of a valid id, for answers built by hand on hot paths. */
export function encodeFrameId(id: FrameId): string {
  return typeof id === 'number' ? String(id) : JSON.stringify(id);
}

/** Appended to a text cut by truncateText. */
export const TRUNCATED_MARK = '… [truncated]';

/**
 * `text` if it has at most `maxChars` UTF-16 units, else its first `maxChars` units followed by
 * TRUNCATED_MARK, never cut between the halves of a surrogate pair (a lone surrogate is not
 * valid Unicode: an audit record holding one would be refused).
 */
export function truncateText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let end = maxChars;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return text.slice(0, end) + TRUNCATED_MARK;
}

/** Encode one frame. JSON.stringify never emits a raw newline, so the line is the frame. */
export function encodeFrame(value: unknown): string {
  return JSON.stringify(value) + '\n';
}
