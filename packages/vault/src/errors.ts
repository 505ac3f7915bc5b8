/**
 * The vault's error constructor. Every code is defined once, with its meaning, in protocol's
 * table (ERROR_CODES); this narrows the constructor to the vault's own codes (and PCX_USAGE), so
 * that using another package's code here is a compile error.
 */
import { PcxError, type PcxCode } from '@portcullis/protocol';

export type VaultCode = Extract<PcxCode, 'PCX_USAGE' | `PCX_VAULT_${string}`>;

export function vaultError(code: VaultCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
  return new PcxError(code, message, options);
}
