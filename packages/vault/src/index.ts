/**
 * @portcullis/vault: secrets under envelope encryption, one SQLite vault per workspace, a
 * per-user agent for unlocked KEKs, and the release path (PDP decision and audit record before
 * any plaintext leaves) that `vault get`, `vault exec` and the exec gate share.
 */
export { vaultCommand } from './command.js';
export type { VaultCommandIO } from './command.js';
export { initVault, openVault, Vault, MAX_VALUE_BYTES } from './store.js';
export type {
  InitVaultOptions,
  OpenVaultOptions,
  SecretInfo,
  SecretVersionInfo,
  OpenedSecret,
  KekInfo,
} from './store.js';
export type { Kek, KeyProvider, KekParams, ProviderKind } from './kek.js';
export { keyFileProvider } from './keyfile.js';
export type { KeyFileProviderOptions } from './keyfile.js';
export { passphraseProvider, MODERATE, SENSITIVE } from './passphrase.js';
export type { PassphraseProviderOptions } from './passphrase.js';
export { pkcs11Provider } from './pkcs11.js';
export type { Pkcs11ProviderOptions } from './pkcs11.js';
export { providerFor } from './providers.js';
export type { Credentials } from './providers.js';
export { startVaultAgent } from './agent.js';
export type { VaultAgentOptions, VaultAgentHandle } from './agent.js';
export { AgentClient } from './agent-client.js';
export type { AgentClientOptions } from './agent-client.js';
export { defaultAgentSocket } from './agent-socket.js';
export { openSecretsForInjection, openSecretForReading } from './access.js';
export type { ReleaseOptions, SecretRequest } from './access.js';
export { runWithSecrets, frameSecrets, SECRETS_FD } from './inject.js';
export type { RunWithSecretsOptions, ChildResult, StdinFraming, InjectionMode, ChildOutput } from './inject.js';
export { defaultVaultDir, vaultFile } from './names.js';
export { wipe } from './crypto.js';
