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

/** Encode one frame. JSON.stringify never emits a raw newline, so the line is the frame. */
export function encodeFrame(value: unknown): string {
  return JSON.stringify(value) + '\n';
}
