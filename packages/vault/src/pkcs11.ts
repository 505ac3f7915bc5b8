/**
 * The PKCS#11 KeyProvider: the KEK is an AES-256 secret-key object in a token (an HSM, a cloud
 * KMS's PKCS#11 library, SoftHSM2), created non-extractable and sensitive, so its bytes never
 * leave the token; data keys are wrapped by the token with AES-256-GCM (12-byte random IV,
 * 128-bit tag, the vault's associated data as GCM's AAD). A wrapped key is IV ‖ ciphertext ‖ tag.
 *
 * Key objects are labelled `portcullis-vault/<vault id>/v<KEK version>`; a rotate-kek killed
 * after creating its new object and before its commit finds that object by label when run again.
 *
 * The PIN: pkcs11js's C_Login takes a JS string, which cannot be zeroed (README "Memory").
 */
import { createRequire } from 'node:module';
import { randomBytes, wipe } from './crypto.js';
import { vaultError } from './errors.js';
import type { KekParams, KeyProvider, Pkcs11Params, RawKek } from './kek.js';
import type { KekBinding } from './crypto.js';
import type * as Pkcs11Types from 'pkcs11js';

type Pkcs11Module = typeof Pkcs11Types;
type Handle = Buffer;

export interface Pkcs11ProviderOptions {
  /** The PKCS#11 library for a new KEK; for an existing one, replaces the stored path when given. */
  module?: string;
  /** The token's label, for a new KEK. */
  token?: string;
  /** The user PIN (UTF-8). The provider copies it; dispose() zeroes its copy. */
  pin: Uint8Array;
}

const require = createRequire(import.meta.url);
let pkcs11js: Pkcs11Module | undefined;
// One loaded and initialised library per path per process (C_Initialize may be called once).
const libraries = new Map<string, Pkcs11Types.PKCS11>();

function library(path: string): Pkcs11Types.PKCS11 {
  let lib = libraries.get(path);
  if (lib) return lib;
  pkcs11js ??= require('pkcs11js') as Pkcs11Module;
  lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
    lib.C_Initialize();
  } catch (e) {
    throw vaultError('PCX_VAULT_PKCS11', `cannot load the PKCS#11 module "${path}": ${describe(e)}`, {
      hint:
        "give the path of the token's PKCS#11 library with --pkcs11-module " +
        '(SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)',
    });
  }
  libraries.set(path, lib);
  return lib;
}

function describe(e: unknown): string {
  const m = (e as Error)?.message ?? String(e);
  // pkcs11js messages look like "CKR_PIN_INCORRECT:160\n    at Error (native) C_Login:…"; keep the first part.
  return m.split(/\s/)[0] ?? m;
}

const DECRYPT_REFUSALS = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR']);

function ckr(e: unknown): string {
  return describe(e).split(':')[0] ?? '';
}

export function pkcs11Provider(options: Pkcs11ProviderOptions): KeyProvider {
  const pin = Uint8Array.from(options.pin);
  // Each session belongs to the KEK made from it (its destroy() closes it), or is closed here on failure.
  const openSession = (modulePath: string, token: string) => new Session(library(modulePath), token, pin);
  return {
    kind: 'pkcs11',
    async create(binding: KekBinding) {
      const module = options.module;
      const token = options.token;
      if (!module || !token) throw new TypeError('pkcs11Provider: create needs module and token');
      const session = openSession(module, token);
      try {
        const label = `portcullis-vault/${binding.vaultId}/v${binding.kekVersion}`;
        const key = session.findKey(label) ?? session.generateKey(label, randomBytes(16));
        const params: Pkcs11Params = { provider: 'pkcs11', module, token, label, id: session.keyId(key) };
        return { params, kek: session.kek(key) };
      } catch (e) {
        session.close();
        throw e;
      }
    },
    async open(params: KekParams) {
      if (params.provider !== 'pkcs11') throw new TypeError('pkcs11Provider: not PKCS#11 parameters');
      const session = openSession(options.module ?? params.module, params.token);
      const key = session.findKey(params.label);
      if (!key) {
        session.close();
        throw vaultError('PCX_VAULT_PKCS11', `the token "${params.token}" holds no key "${params.label}"`, {
          hint: 'the KEK was deleted from the token, or this is another token with the same label',
        });
      }
      return session.kek(key);
    },
    dispose() {
      pin.fill(0);
    },
  };
}

/** Destroy a retired KEK's key object (after rotate-kek committed). Missing objects are fine. */
export function destroyPkcs11Key(params: Pkcs11Params, pin: Uint8Array, module?: string): void {
  const session = new Session(library(module ?? params.module), params.token, pin);
  try {
    const key = session.findKey(params.label);
    if (key) session.destroyObject(key);
  } finally {
    session.close();
  }
}

class Session {
  private readonly handle: Handle;
  private open = true;

  constructor(
    private readonly lib: Pkcs11Types.PKCS11,
    private readonly token: string,
    pin: Uint8Array,
  ) {
    const k = pkcs11js!;
    const slot = this.findSlot();
    this.handle = lib.C_OpenSession(slot, k.CKF_SERIAL_SESSION | k.CKF_RW_SESSION);
    try {
      lib.C_Login(this.handle, k.CKU_USER, Buffer.from(pin).toString('utf8'));
    } catch (e) {
      const code = ckr(e);
      // Logged in already through another session of this process: the login state is per token.
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
        lib.C_CloseSession(this.handle);
        if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LEN_RANGE' || code === 'CKR_ARGUMENTS_BAD')
          throw vaultError('PCX_VAULT_BAD_CREDENTIAL', `the PIN for the token "${token}" is wrong`);
        if (code === 'CKR_PIN_LOCKED')
          throw vaultError('PCX_VAULT_PKCS11', `the token "${token}" has locked its PIN`, {
            hint: 'unlock it with the security officer PIN',
          });
        throw vaultError('PCX_VAULT_PKCS11', `cannot log in to the token "${token}": ${describe(e)}`);
      }
    }
  }

  private findSlot(): Handle {
    for (const slot of this.lib.C_GetSlotList(true)) {
      if (this.lib.C_GetTokenInfo(slot).label.trim() === this.token) return slot;
    }
    throw vaultError('PCX_VAULT_PKCS11', `no PKCS#11 token labelled "${this.token}"`, {
      hint: 'check --pkcs11-token (softhsm2-util --show-slots lists the tokens)',
    });
  }

  findKey(label: string): Handle | undefined {
    const k = pkcs11js!;
    this.lib.C_FindObjectsInit(this.handle, [
      { type: k.CKA_CLASS, value: k.CKO_SECRET_KEY },
      { type: k.CKA_LABEL, value: label },
    ]);
    try {
      return this.lib.C_FindObjects(this.handle) ?? undefined;
    } finally {
      this.lib.C_FindObjectsFinal(this.handle);
    }
  }

  generateKey(label: string, id: Uint8Array): Handle {
    const k = pkcs11js!;
    try {
      return this.lib.C_GenerateKey(this.handle, { mechanism: k.CKM_AES_KEY_GEN }, [
        { type: k.CKA_CLASS, value: k.CKO_SECRET_KEY },
        { type: k.CKA_KEY_TYPE, value: k.CKK_AES },
        { type: k.CKA_VALUE_LEN, value: 32 },
        { type: k.CKA_TOKEN, value: true },
        { type: k.CKA_PRIVATE, value: true },
        { type: k.CKA_SENSITIVE, value: true },
        { type: k.CKA_EXTRACTABLE, value: false },
        { type: k.CKA_ENCRYPT, value: true },
        { type: k.CKA_DECRYPT, value: true },
        { type: k.CKA_LABEL, value: label },
        { type: k.CKA_ID, value: Buffer.from(id) },
      ]);
    } catch (e) {
      throw vaultError('PCX_VAULT_PKCS11', `the token "${this.token}" cannot create an AES-256 key: ${describe(e)}`);
    }
  }

  keyId(key: Handle): string {
    const [attr] = this.lib.C_GetAttributeValue(this.handle, key, [{ type: pkcs11js!.CKA_ID }]);
    return Buffer.isBuffer(attr?.value) ? attr.value.toString('hex') : '';
  }

  destroyObject(key: Handle): void {
    this.lib.C_DestroyObject(this.handle, key);
  }

  kek(key: Handle): RawKek {
    const k = pkcs11js!;
    const gcm = (iv: Buffer, aad: Uint8Array) => ({
      mechanism: k.CKM_AES_GCM,
      parameter: { type: k.CK_PARAMS_AES_GCM, iv, aad: Buffer.from(aad), ivBits: 96, tagBits: 128 },
    });
    const live = () => {
      if (!this.open) throw new Error('PKCS#11 KEK used after destroy()');
    };
    return {
      seal: async (dataKey, ad) => {
        live();
        const iv = Buffer.from(randomBytes(12));
        const input = Buffer.from(dataKey);
        try {
          this.lib.C_EncryptInit(this.handle, gcm(iv, ad), key);
          const out = this.lib.C_Encrypt(this.handle, input, Buffer.alloc(input.length + 16));
          return Buffer.concat([iv, out]);
        } catch (e) {
          throw vaultError('PCX_VAULT_PKCS11', `the token "${this.token}" refused to wrap a key: ${describe(e)}`);
        } finally {
          wipe(input);
        }
      },
      open: async (wrapped, ad) => {
        live();
        if (wrapped.length < 12 + 16) return undefined;
        const out = Buffer.alloc(wrapped.length);
        try {
          this.lib.C_DecryptInit(this.handle, gcm(Buffer.from(wrapped.subarray(0, 12)), ad), key);
        } catch (e) {
          throw vaultError('PCX_VAULT_PKCS11', `the token "${this.token}" refused to unwrap a key: ${describe(e)}`);
        }
        try {
          return Uint8Array.from(this.lib.C_Decrypt(this.handle, Buffer.from(wrapped.subarray(12)), out));
        } catch (e) {
          // A GCM tag mismatch: CKR_ENCRYPTED_DATA_INVALID by the standard; SoftHSM2 reports it
          // as CKR_GENERAL_ERROR. Once the operation started, either means "does not authenticate".
          if (DECRYPT_REFUSALS.has(ckr(e))) return undefined;
          throw vaultError('PCX_VAULT_PKCS11', `the token "${this.token}" refused to unwrap a key: ${describe(e)}`);
        } finally {
          wipe(out);
        }
      },
      destroy: () => this.close(),
    };
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      this.lib.C_CloseSession(this.handle); // the last session closed logs the token out
    } catch {
      // already closed (the library was finalised, the token removed): nothing left to release
    }
  }
}
