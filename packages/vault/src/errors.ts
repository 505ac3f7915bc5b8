/**
 * Every code the vault throws or answers with. Each is defined once, with its meaning, in
 * protocol's table (ERROR_CODES); this file only narrows the constructor to the vault's own
 * codes, so that a misspelt code is a compile error.
 */
import { PcxError } from '@portcullis/protocol';

export type VaultCode =
  | 'PCX_USAGE'
  | 'PCX_VAULT_NOT_FOUND'
  | 'PCX_VAULT_EXISTS'
  | 'PCX_VAULT_CORRUPT'
  | 'PCX_VAULT_WRONG_WORKSPACE'
  | 'PCX_VAULT_BAD_WORKSPACE'
  | 'PCX_VAULT_BAD_NAME'
  | 'PCX_VAULT_UNKNOWN_SECRET'
  | 'PCX_VAULT_UNKNOWN_VERSION'
  | 'PCX_VAULT_LOCKED'
  | 'PCX_VAULT_BAD_CREDENTIAL'
  | 'PCX_VAULT_DECRYPT_FAILED'
  | 'PCX_VAULT_KEY_FILE'
  | 'PCX_VAULT_KEY_FILE_PERMISSIONS'
  | 'PCX_VAULT_KDF_TOO_WEAK'
  | 'PCX_VAULT_PKCS11'
  | 'PCX_VAULT_EMPTY_VALUE'
  | 'PCX_VAULT_VALUE_TOO_LARGE'
  | 'PCX_VAULT_VALUE_ON_ARGV'
  | 'PCX_VAULT_REVEAL_REQUIRED'
  | 'PCX_VAULT_DENIED'
  | 'PCX_VAULT_AUDIT_FAILED'
  | 'PCX_VAULT_FRAMING'
  | 'PCX_VAULT_EXEC_FAILED'
  | 'PCX_VAULT_CHILD_EXITED'
  | 'PCX_VAULT_AGENT_UNAVAILABLE'
  | 'PCX_VAULT_AGENT_SOCKET'
  | 'PCX_VAULT_AGENT_SOCKET_IN_USE'
  | 'PCX_VAULT_AGENT_BAD_FRAME'
  | 'PCX_VAULT_AGENT_FRAME_TOO_LARGE'
  | 'PCX_VAULT_AGENT_PEER'
  | 'PCX_VAULT_FINGERPRINTS';

export function vaultError(code: VaultCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
  return new PcxError(code, message, options);
}
