/**
 * Argon2id in a worker thread of its own. Argon2id fills hundreds of MiB with blocks derived
 * from the passphrase (the last of them gives the key); libsodium's WebAssembly heap keeps that
 * memory, unzeroed, for as long as the instance lives. Running it here means the whole heap goes
 * away when the worker exits, so a long-lived vault agent does not carry the KDF's memory (or
 * its 256 MiB) after an unlock. The passphrase arrives and the key leaves by transfer (moved,
 * not copied), and this side zeroes its copies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sodium from 'libsodium-wrappers-sumo';

// Plain JavaScript (not under src/) so that the same file runs from the sources and from dist/:
// a worker thread does not inherit the TypeScript loader the tests run with.
await sodium.ready;
/** @type {{ passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number }} */
const job = workerData;
try {
  const key = sodium.crypto_pwhash(
    32,
    job.passphrase,
    job.salt,
    job.opslimit,
    job.memlimit,
    sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
  sodium.memzero(job.passphrase);
  parentPort.postMessage({ key }, [key.buffer]);
} catch (e) {
  sodium.memzero(job.passphrase);
  parentPort.postMessage({ error: e?.message ?? String(e) });
}
