/**
 * Ed25519 keys and checkpoints in the C2SP signed-note / tlog-checkpoint text formats, as used by
 * golang.org/x/mod/sumdb/note and Certificate Transparency tiles:
 *
 *   <origin>\n<tree size>\n<base64 RFC 6962 root>\n\n— <key name> <base64(key id ‖ signature)>\n
 *
 * The signature covers the note text (the three lines, each with its "\n"). The key id is the
 * first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key); 0x01 is the Ed25519
 * signature type. Key files use the same encodings as Go's note package:
 *   private: PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>
 *   public (verifier key): <name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>
 */
import { createHash } from 'node:crypto';
import sodiumModule from 'libsodium-wrappers-sumo';
import { PcxError } from '@portcullis/protocol';

const ALG_ED25519 = 0x01;

/** A key as it appears in a key string: the algorithm byte, then the key, in base64. */
function encodeKey(key: Uint8Array): string {
  return Buffer.concat([Buffer.from([ALG_ED25519]), key]).toString('base64');
}
const EM_DASH = '\u2014';

let ready: Promise<typeof sodiumModule> | undefined;
function sodium(): Promise<typeof sodiumModule> {
  ready ??= sodiumModule.ready.then(() => sodiumModule);
  return ready;
}

export interface VerifierKey {
  name: string;
  keyId: Buffer;
  publicKey: Buffer;
}

export interface SigningKey extends VerifierKey {
  /** libsodium's 64-byte secret key (seed ‖ public key). */
  secretKey: Uint8Array;
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

// Key names may not contain whitespace or "+" (the field separator of the key encodings).
const KEY_NAME = /^[^\s+]{1,128}$/;

export function keyId(name: string, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(name)
    .update(Buffer.from([0x0a, ALG_ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

export async function generateKey(name: string): Promise<{ privateKey: string; publicKey: string }> {
  if (!KEY_NAME.test(name))
    throw new PcxError(
      'PCX_AUDIT_BAD_KEY_NAME',
      `key name "${name}" is not allowed: use 1-128 characters without spaces or "+"`,
    );
  const s = await sodium();
  const seed = s.randombytes_buf(32);
  const pair = s.crypto_sign_seed_keypair(seed);
  const id = keyId(name, pair.publicKey).toString('hex');
  const privateKey = `PRIVATE+KEY+${name}+${id}+${encodeKey(seed)}`;
  const publicKey = `${name}+${id}+${encodeKey(pair.publicKey)}`;
  s.memzero(seed);
  return { privateKey, publicKey };
}

function badKey(what: string): PcxError {
  return new PcxError(
    'PCX_AUDIT_BAD_KEY',
    `${what}; create a key pair with "portcullis audit keygen --name NAME --out FILE"`,
  );
}

export async function parseSigningKey(text: string): Promise<SigningKey> {
  // Messages never quote the key text: it is a secret.
  const parts = splitN(text.trim(), 5);
  if (parts.length !== 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY')
    throw badKey('the private key file is not in the PRIVATE+KEY+<name>+<id>+<key> format');
  const [, , name, id, b64] = parts as [string, string, string, string, string];
  const raw = Buffer.from(b64, 'base64');
  if (!KEY_NAME.test(name) || raw.length !== 33 || raw[0] !== ALG_ED25519)
    throw badKey('the private key file does not hold an Ed25519 key');
  const s = await sodium();
  const pair = s.crypto_sign_seed_keypair(raw.subarray(1));
  raw.fill(0);
  const kid = keyId(name, pair.publicKey);
  if (kid.toString('hex') !== id) throw badKey('the private key file is damaged (its key id does not match the key)');
  return { name, keyId: kid, publicKey: Buffer.from(pair.publicKey), secretKey: pair.privateKey };
}

export function parseVerifierKey(text: string): VerifierKey {
  const parts = splitN(text.trim(), 3);
  if (parts.length !== 3)
    throw new PcxError(
      'PCX_AUDIT_BAD_KEY',
      'the public key is not in the <name>+<hex id>+<base64 key> verifier-key format',
    );
  const [name, id, b64] = parts as [string, string, string];
  const raw = Buffer.from(b64, 'base64');
  if (!KEY_NAME.test(name) || raw.length !== 33 || raw[0] !== ALG_ED25519)
    throw new PcxError('PCX_AUDIT_BAD_KEY', 'the public key is not an Ed25519 verifier key');
  const publicKey = raw.subarray(1);
  const kid = keyId(name, publicKey);
  if (kid.toString('hex') !== id)
    throw new PcxError('PCX_AUDIT_BAD_KEY', 'the public key is damaged (its key id does not match the key)');
  return { name, keyId: kid, publicKey };
}

/** Split on "+" into at most n fields, as Go's strings.SplitN: base64 key material may contain "+". */
function splitN(s: string, n: number): string[] {
  const parts = s.split('+');
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join('+')];
}

export function verifierKeyString(key: VerifierKey): string {
  return `${key.name}+${key.keyId.toString('hex')}+${encodeKey(key.publicKey)}`;
}

export function checkpointText(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export async function signCheckpoint(c: Checkpoint, key: SigningKey): Promise<string> {
  const text = checkpointText(c);
  const s = await sodium();
  const sig = s.crypto_sign_detached(Buffer.from(text, 'utf8'), key.secretKey);
  return `${text}\n${EM_DASH} ${key.name} ${Buffer.concat([key.keyId, sig]).toString('base64')}\n`;
}

/**
 * Parse a signed checkpoint and verify its signature by `key`. Returns the checkpoint or a
 * description of what is wrong (as data: the verifier reports it with the file name).
 */
export async function openCheckpoint(note: string, key: VerifierKey): Promise<Checkpoint | { error: string }> {
  const sep = note.indexOf('\n\n');
  if (sep < 0 || !note.endsWith('\n'))
    return { error: 'not a signed note (no blank line between text and signatures)' };
  const text = note.slice(0, sep + 1);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) return { error: 'checkpoint text has fewer than 3 lines (origin, size, root)' };
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText))
    return { error: `tree size "${sizeText.slice(0, 40)}" is not a decimal number` };
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText)
    return { error: 'root hash is not 32 bytes of base64' };
  const s = await sodium();
  let matching = 0;
  for (const line of note.slice(sep + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!m) return { error: 'malformed signature line' };
    const sig = Buffer.from(m[2]!, 'base64');
    if (m[1] !== key.name || sig.length !== 68 || !sig.subarray(0, 4).equals(key.keyId)) continue;
    matching++;
    if (!s.crypto_sign_verify_detached(sig.subarray(4), Buffer.from(text, 'utf8'), key.publicKey)) {
      return { error: `signature by ${key.name} does not verify (the checkpoint was altered or forged)` };
    }
  }
  if (matching === 0) return { error: `no signature by key ${key.name} (${key.keyId.toString('hex')})` };
  return { origin, size: Number(sizeText), root };
}
