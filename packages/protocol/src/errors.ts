/**
 * Errors are data with stable codes, in the manner of undici's UND_ERR_* codes; every code is
 * listed with its meaning in ./codes.ts (ERROR_CODES), so a misspelt code does not compile.
 * A PcxError is an expected failure: a user mistake, bad input or an unavailable peer.
 * Its message says what is wrong and, where it can, how to fix it; it never carries secrets.
 */
import type { PcxCode } from './codes.js';

export class PcxError extends Error {
  readonly code: PcxCode;
  readonly hint: string | undefined;

  constructor(code: PcxCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PcxError';
    this.code = code;
    this.hint = options.hint;
  }

  toJSON(): { code: PcxCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isPcxError(e: unknown): e is PcxError {
  return e instanceof PcxError;
}
