/**
 * The vault's error constructor: a PcxError whose code is one of protocol's table (ERROR_CODES,
 * where every code is defined once, with its meaning), so that a code made up here does not
 * compile.
 */
import { PcxError, type PcxCode } from '@portcullis/protocol';

export function vaultError(code: PcxCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
  return new PcxError(code, message, options);
}
