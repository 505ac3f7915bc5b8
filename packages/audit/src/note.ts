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

// C2SP signed-note: a note is valid UTF-8 without control characters other than newline, and
// key names are non-empty without Unicode spaces or "+" (the field separator of the key
// encodings). \p{White_Space} is Unicode's set (JavaScript's \s misses U+0085); \p{Cc} holds
// the C0 controls, DEL and the C1 controls; \p{Cs} a lone surrogate (not UTF-8 at all).
const NAME_FORBIDDEN = /[\p{White_Space}\p{Cc}\p{Cs}+]/u;
const CONTROL = /[\p{Cc}\p{Cs}]/u;
const EDGE_SPACE = /^\p{White_Space}|\p{White_Space}$/u;
const MAX_KEY_NAME = 128;
const MAX_ORIGIN = 256;

/** "U+0009" for the first character of `s` that `re` matches. */
function codePointOf(s: string, re: RegExp): string {
  const c = re.exec(s)![0].codePointAt(0)!;
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why `name` cannot be a key name (C2SP signed-note), or undefined when it can. */
function keyNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > MAX_KEY_NAME) return `it is longer than ${MAX_KEY_NAME} characters`;
  const bad = NAME_FORBIDDEN.exec(name)?.[0];
  if (bad === undefined) return undefined;
  if (bad === '+') return 'it contains "+"';
  const at = codePointOf(bad, NAME_FORBIDDEN);
  if (/\p{Cs}/u.test(bad)) return `it is not valid Unicode (a lone surrogate, ${at})`;
  return CONTROL.test(bad) ? `it contains a control character (${at})` : `it contains a space (${at})`;
}

/** Throws PCX_AUDIT_BAD_KEY_NAME unless `name` is a valid key name. */
export function checkKeyName(name: string): void {
  const why = keyNameProblem(name);
  if (why !== undefined)
    throw new PcxError('PCX_AUDIT_BAD_KEY_NAME', `key name ${JSON.stringify(name)} is not allowed: ${why}`, {
      hint: `use 1-${MAX_KEY_NAME} characters without spaces, control characters or "+", e.g. audit.example.com`,
    });
}

/**
 * Throws PCX_AUDIT_BAD_ORIGIN unless `origin` can be a checkpoint's origin line: non-empty (C2SP
 * tlog-checkpoint), without control characters (signed-note), and without leading or trailing
 * space — such an origin would not survive being read back from a file by a tool that trims
 * lines, and no one reading it can see it.
 */
export function checkOrigin(origin: string, where = 'the origin'): void {
  const why =
    origin.length === 0
      ? 'it is empty'
      : origin.length > MAX_ORIGIN
        ? `it is longer than ${MAX_ORIGIN} characters`
        : /\p{Cs}/u.test(origin)
          ? `it is not valid Unicode (a lone surrogate, ${codePointOf(origin, /\p{Cs}/u)})`
          : CONTROL.test(origin)
            ? `it contains a control character (${codePointOf(origin, CONTROL)})`
            : EDGE_SPACE.test(origin)
              ? 'it starts or ends with a space'
              : undefined;
  if (why !== undefined)
    throw new PcxError('PCX_AUDIT_BAD_ORIGIN', `${where} ${JSON.stringify(origin)} is not allowed: ${why}`, {
      hint:
        `use one line of 1-${MAX_ORIGIN} characters without control characters or surrounding spaces, e.g. ` +
        'audit.example.com/log1',
    });
}

export function keyId(name: string, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(name)
    .update(Buffer.from([0x0a, ALG_ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

export async function generateKey(name: string): Promise<{ privateKey: string; publicKey: string }> {
  checkKeyName(name);
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
  if (keyNameProblem(name) !== undefined || raw.length !== 33 || raw[0] !== ALG_ED25519)
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
  if (keyNameProblem(name) !== undefined || raw.length !== 33 || raw[0] !== ALG_ED25519)
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

// Generous for Ed25519 notes (a signature line is under 200 bytes), bounded for hostile input:
// the spec asks verifiers to accept at least 16 signatures.
const MAX_NOTE_CHARS = 64 * 1024;
const MAX_SIGNATURES = 64;
const NOTE_CONTROL = /[\p{Cs}\p{Cc}]/u;

/**
 * Parse a signed checkpoint and verify its signature by `key`. Returns the checkpoint or a
 * description of what is wrong (as data: the verifier reports it with the file name).
 *
 * As C2SP signed-note says: no control characters but newline; the text is split from the
 * signatures at the LAST blank line; a signature whose key name and key id are `key`'s must
 * verify (one of the wrong length is a failure, not a signature of some other key); signatures
 * of other keys are ignored, but at least one of `key`'s must be there. As tlog-checkpoint says:
 * at least three lines, none empty (origin, tree size, root, then opaque extension lines).
 */
export async function openCheckpoint(note: string, key: VerifierKey): Promise<Checkpoint | { error: string }> {
  if (note.length > MAX_NOTE_CHARS) return { error: `the note is over ${MAX_NOTE_CHARS} characters` };
  const control = NOTE_CONTROL.exec(note.replaceAll('\n', ''))?.[0];
  if (control !== undefined) {
    const at = `U+${control.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    return { error: `not a signed note: it contains ${at} (only newline may be a control character)` };
  }
  const sep = note.lastIndexOf('\n\n');
  if (sep < 0 || !note.endsWith('\n'))
    return { error: 'not a signed note (no blank line between text and signatures)' };
  const text = note.slice(0, sep + 1);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) return { error: 'checkpoint text has fewer than 3 lines (origin, size, root)' };
  if (lines.includes('')) return { error: 'checkpoint text has an empty line (every line must be non-empty)' };
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText))
    return { error: `tree size "${sizeText.slice(0, 40)}" is not a decimal number` };
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText)
    return { error: 'root hash is not 32 bytes of base64' };
  const sigLines = note.slice(sep + 2, -1).split('\n');
  if (sigLines.length > MAX_SIGNATURES) return { error: `more than ${MAX_SIGNATURES} signature lines` };
  const s = await sodium();
  const signed = Buffer.from(text, 'utf8');
  let matching = 0;
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!m || keyNameProblem(m[1]!) !== undefined) return { error: 'malformed signature line' };
    const sig = Buffer.from(m[2]!, 'base64');
    if (sig.length < 5 || sig.toString('base64') !== m[2]) return { error: 'malformed signature line' };
    // Only name and id together identify a key: a signature sharing one of them is another key's.
    if (m[1] !== key.name || !sig.subarray(0, 4).equals(key.keyId)) continue;
    matching++;
    if (sig.length !== 68)
      return {
        error:
          `signature by ${key.name} is ${sig.length - 4} bytes, not the 64 of an Ed25519 signature ` +
          '(damaged or forged)',
      };
    if (!s.crypto_sign_verify_detached(sig.subarray(4), signed, key.publicKey)) {
      return { error: `signature by ${key.name} does not verify (the checkpoint was altered or forged)` };
    }
  }
  if (matching === 0) return { error: `no signature by key ${key.name} (${key.keyId.toString('hex')})` };
  return { origin, size: Number(sizeText), root };
}
