/**
 * The passphrase KeyProvider: the KEK is Argon2id(passphrase, salt) — libsodium's
 * crypto_pwhash, ALG_ARGON2ID13 — with the parameters and a random 16-byte salt stored in the
 * vault. A new KEK gets at least libsodium's MODERATE profile (3 passes, 256 MiB); SENSITIVE
 * (4 passes, 1 GiB) on request. What it costs here is measured by bench/vault.
 *
 * A wrong passphrase is found by the KEK's check value (an AEAD that fails authentication),
 * after the full KDF: right and wrong passphrases take the same time up to the KDF's own noise.
 */
import { Worker } from 'node:worker_threads';
import { loadSodium, randomBytes, wipe } from './crypto.js';
import { vaultError } from './errors.js';
import type { KekParams, KeyProvider, PassphraseParams } from './kek.js';
import { localKek } from './local-kek.js';

export const MODERATE = { opslimit: 3, memlimit: 256 * 1024 * 1024 } as const;
export const SENSITIVE = { opslimit: 4, memlimit: 1024 * 1024 * 1024 } as const;
/** The most a stored parameter set may ask for (a tampered vault must not exhaust memory). */
const MAX_MEMLIMIT = 2 * 1024 * 1024 * 1024;
const MAX_OPSLIMIT = 64;

export interface PassphraseProviderOptions {
  /** The passphrase, UTF-8. The provider copies it; dispose() zeroes its copy. */
  passphrase: Uint8Array;
  /** Argon2id passes for a new KEK. Default 3 (MODERATE); at least 3. */
  opslimit?: number;
  /** Argon2id memory for a new KEK, in bytes. Default 256 MiB (MODERATE); at least that. */
  memlimit?: number;
}

export function passphraseProvider(options: PassphraseProviderOptions): KeyProvider {
  const passphrase = Uint8Array.from(options.passphrase);
  const opslimit = options.opslimit ?? MODERATE.opslimit;
  const memlimit = options.memlimit ?? MODERATE.memlimit;
  return {
    kind: 'passphrase',
    async create() {
      if (opslimit < MODERATE.opslimit || memlimit < MODERATE.memlimit) {
        throw vaultError(
          'PCX_VAULT_KDF_TOO_WEAK',
          `argon2id with ${opslimit} passes and ${memlimit / 2 ** 20} MiB is below the moderate profile`,
          { hint: 'use at least 3 passes and 256 MiB (the default), or --kdf sensitive' },
        );
      }
      await loadSodium();
      const params: PassphraseParams = {
        provider: 'passphrase',
        kdf: 'argon2id13',
        opslimit,
        memlimit,
        salt: Buffer.from(randomBytes(16)).toString('base64'),
      };
      return { params, kek: localKek(await deriveKek(passphrase, params)) };
    },
    async open(params: KekParams) {
      if (params.provider !== 'passphrase') throw new TypeError('passphraseProvider: not passphrase parameters');
      return localKek(await deriveKek(passphrase, params));
    },
    dispose() {
      passphrase.fill(0);
    },
  };
}

/** Argon2id in a worker thread (see worker/kdf-worker.mjs); the result is the caller's to wipe. */
export async function deriveKek(passphrase: Uint8Array, params: PassphraseParams): Promise<Uint8Array> {
  checkParams(params);
  const salt = Buffer.from(params.salt, 'base64');
  const moved = Uint8Array.from(passphrase); // transferred to the worker, which zeroes it
  const worker = new Worker(WORKER_URL, {
    workerData: { passphrase: moved, salt, opslimit: params.opslimit, memlimit: params.memlimit },
    transferList: [moved.buffer as ArrayBuffer],
  });
  try {
    const answer = await new Promise<{ key?: Uint8Array; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the key-derivation worker exited (${code})`)));
    });
    if (!answer.key) throw vaultError('PCX_VAULT_CORRUPT', `argon2id failed: ${answer.error ?? 'no key'}`);
    return answer.key;
  } finally {
    wipe(moved);
    void worker.terminate();
  }
}

// The same path from src/ and from dist/ (see worker/kdf-worker.mjs).
const WORKER_URL = new URL('../worker/kdf-worker.mjs', import.meta.url);

function checkParams(p: PassphraseParams): void {
  const ok =
    p.kdf === 'argon2id13' &&
    Number.isSafeInteger(p.opslimit) &&
    p.opslimit >= 1 &&
    p.opslimit <= MAX_OPSLIMIT &&
    Number.isSafeInteger(p.memlimit) &&
    p.memlimit >= 8192 &&
    p.memlimit <= MAX_MEMLIMIT &&
    typeof p.salt === 'string' &&
    Buffer.from(p.salt, 'base64').length === 16;
  if (!ok) throw vaultError('PCX_VAULT_CORRUPT', "the vault's key-derivation parameters are invalid");
}
