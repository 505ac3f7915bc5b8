/**
 * Errors are data with stable codes (PCX_…), in the manner of undici's UND_ERR_* codes.
 * A PcxError is an expected failure: a user mistake, bad input or an unavailable peer.
 * Its message says what is wrong and, where it can, how to fix it; it never carries secrets.
 */
export class PcxError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PcxError';
    this.code = code;
    this.hint = options.hint;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isPcxError(e: unknown): e is PcxError {
  return e instanceof PcxError;
}
