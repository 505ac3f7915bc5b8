/**
 * A KEK held in this process's memory as 32 bytes (from a key file or a passphrase):
 * XChaCha20-Poly1305 over the data key. destroy() zeroes the bytes.
 */
import { KEY_BYTES, open, seal, wipe } from './crypto.js';
import type { RawKek } from './kek.js';

export function localKek(key: Uint8Array): RawKek {
  if (key.length !== KEY_BYTES) throw new TypeError(`a KEK is ${KEY_BYTES} bytes, not ${key.length}`);
  let live = true;
  const alive = () => {
    if (!live) throw new Error('KEK used after destroy()');
  };
  return {
    seal: async (dataKey, ad) => {
      alive();
      return seal(key, dataKey, ad);
    },
    open: async (wrapped, ad) => {
      alive();
      return open(key, wrapped, ad);
    },
    destroy: () => {
      if (!live) return;
      live = false;
      wipe(key);
    },
  };
}
