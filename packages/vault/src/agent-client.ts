/**
 * The vault agent's client: unlock, lock, status, and a Kek whose wraps and unwraps the agent
 * performs (so the KEK never enters the caller's process). Built on protocol's RpcClient
 * (pipelined, deadlines, no retries); an agent that is not running is PCX_VAULT_AGENT_UNAVAILABLE.
 */
import { isPcxError, isPcxCode, PcxError, RpcClient } from '@portcullis/protocol';
import { fromBase64, toBase64, type KekBinding } from './crypto.js';
import { vaultError } from './errors.js';
import type { Kek, WrapSubject } from './kek.js';

export interface AgentClientOptions {
  socketPath: string;
  /**
   * Per-call deadline in milliseconds. Default 30000: an unlock runs Argon2id (about a second)
   * or logs in to a token.
   */
  timeoutMs?: number;
}

export interface AgentUnlockRequest {
  workspace: string;
  /** The vault file, absolute. */
  vault: string;
  passphrase?: Uint8Array;
  pin?: Uint8Array;
  keyFile?: string;
  pkcs11Module?: string;
}

export interface AgentStatus {
  idle_timeout_ms: number;
  workspaces: { workspace: string; vault: string; kek_version: number; unlocked_at: string; locks_in_ms: number }[];
}

export class AgentClient {
  private readonly rpc: RpcClient;

  constructor(readonly options: AgentClientOptions) {
    this.rpc = new RpcClient({
      socketPath: options.socketPath,
      timeoutMs: options.timeoutMs ?? 30_000,
      peerName: 'vault agent',
    });
  }

  private async call(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    let answer: Record<string, unknown>;
    try {
      answer = await this.rpc.call(frame);
    } catch (e) {
      if (
        isPcxError(e) &&
        (e.code === 'PCX_RPC_UNAVAILABLE' || e.code === 'PCX_RPC_CLOSED' || e.code === 'PCX_RPC_TIMEOUT')
      ) {
        throw vaultError(
          'PCX_VAULT_AGENT_UNAVAILABLE',
          `the vault agent at ${this.options.socketPath} did not answer (${e.code})`,
          {
            hint: 'start it with "portcullis vault agent" (or point PORTCULLIS_VAULT_AGENT at its socket)',
          },
        );
      }
      throw e;
    }
    const err = answer.error as { code?: unknown; message?: unknown; hint?: unknown } | undefined;
    if (err !== undefined) {
      const code = isPcxCode(err?.code) ? err.code : 'PCX_VAULT_AGENT_BAD_FRAME';
      const message = typeof err?.message === 'string' ? err.message : 'the agent refused the request';
      throw new PcxError(code, message, typeof err?.hint === 'string' ? { hint: err.hint } : {});
    }
    return answer;
  }

  /** Whether an agent answers on the socket. */
  async alive(): Promise<boolean> {
    try {
      await this.call({ health: true });
      return true;
    } catch {
      return false;
    }
  }

  async unlock(request: AgentUnlockRequest): Promise<{ kek_version: number; idle_timeout_ms: number }> {
    const frame: Record<string, unknown> = { workspace: request.workspace, vault: request.vault };
    if (request.passphrase) frame.passphrase = toBase64(request.passphrase);
    if (request.pin) frame.pin = toBase64(request.pin);
    if (request.keyFile) frame.key_file = request.keyFile;
    if (request.pkcs11Module) frame.pkcs11_module = request.pkcs11Module;
    const answer = await this.call({ unlock: frame });
    return answer.unlocked as { kek_version: number; idle_timeout_ms: number };
  }

  /** Lock one workspace, or every one (workspace undefined); returns those that were unlocked. */
  async lock(workspace?: string): Promise<string[]> {
    const answer = await this.call({ lock: workspace === undefined ? { all: true } : { workspace } });
    return answer.locked as string[];
  }

  async status(): Promise<AgentStatus> {
    return (await this.call({ status: true })).status as AgentStatus;
  }

  /** A Kek the agent holds for `binding` (checked by the agent on every call). */
  kek(binding: KekBinding): Kek {
    const target = { workspace: binding.workspace, vault_id: binding.vaultId, kek_version: binding.kekVersion };
    return {
      binding,
      wrap: async (key: Uint8Array, subject: WrapSubject) => {
        const a = await this.call({ wrap: { ...target, subject, key: toBase64(key) } });
        return fromBase64(String(a.wrapped));
      },
      unwrap: async (wrapped: Uint8Array, subject: WrapSubject) => {
        try {
          const a = await this.call({ unwrap: { ...target, subject, wrapped: toBase64(wrapped) } });
          return fromBase64(String(a.key));
        } catch (e) {
          if (isPcxError(e) && e.code === 'PCX_VAULT_DECRYPT_FAILED') return undefined;
          throw e;
        }
      },
      destroy: () => {},
    };
  }

  close(): void {
    this.rpc.close();
  }
}
