/**
 * Inclusion proofs against the latest checkpoint, as a self-contained JSON document that can be
 * checked offline with only the verifier key: the record line, its position, the audit path and
 * the signed checkpoint.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PcxError } from '@portcullis/protocol';
import { CHECKPOINTS, CHECKPOINT_RE, SEGMENTS, encodeRecord, segmentName } from './format.js';
import { inclusionProof, leafHash, subtreeRoot, verifyInclusion } from './merkle.js';
import { openCheckpoint, type VerifierKey } from './note.js';
import { listSegments, readLeaves } from './verify.js';

export interface InclusionProof {
  seq: number;
  /** The record's canonical line, exactly as in the log. */
  record: string;
  tree_size: number;
  /** Audit path, base64 hashes, leaf upward. */
  proof: string[];
  /** The signed checkpoint the path leads to. */
  checkpoint: string;
}

export async function proveInclusion(dir: string, seq: number, key: VerifierKey): Promise<InclusionProof> {
  const names = readdirSync(join(dir, CHECKPOINTS))
    .filter((n) => CHECKPOINT_RE.test(n))
    .sort();
  const name = names.at(-1);
  if (name === undefined)
    throw new PcxError('PCX_AUDIT_NO_CHECKPOINT', `${dir} has no checkpoint yet`, {
      hint: 'the sink writes one every N records or T seconds, and when it stops',
    });
  const note = readFileSync(join(dir, CHECKPOINTS, name), 'utf8');
  const c = await openCheckpoint(note, key);
  if ('error' in c)
    throw new PcxError('PCX_AUDIT_BAD_CHECKPOINT', `latest checkpoint ${name}: ${c.error}`, {
      hint: `run "portcullis audit verify ${dir}"`,
    });
  if (!Number.isSafeInteger(seq) || seq < 0 || seq >= c.size) {
    throw new PcxError(
      'PCX_AUDIT_NOT_COVERED',
      `record ${seq} is not covered by the latest checkpoint (it covers records 0..${c.size - 1})`,
      { hint: 'wait for the next checkpoint, or pick a smaller --seq' },
    );
  }
  const leaves = readLeaves(dir);
  if (leaves.length < c.size || !subtreeRoot(leaves, 0, c.size).equals(c.root)) {
    throw new PcxError('PCX_AUDIT_BAD_CHECKPOINT', `the log does not match its latest checkpoint ${name}`, {
      hint: `run "portcullis audit verify ${dir}" to find where`,
    });
  }
  return {
    seq,
    record: recordLine(dir, seq),
    tree_size: c.size,
    proof: inclusionProof(leaves, seq, c.size).map((h) => h.toString('base64')),
    checkpoint: note,
  };
}

function recordLine(dir: string, seq: number): string {
  let i = 0;
  for (const n of listSegments(dir)) {
    const lines = readFileSync(join(dir, SEGMENTS, segmentName(n)), 'utf8').split('\n');
    lines.pop();
    if (seq < i + lines.length) return lines[seq - i]!;
    i += lines.length;
  }
  throw new PcxError('PCX_AUDIT_NOT_FOUND', `record ${seq} is not in the log`);
}

/**
 * Check a proof document offline against the verifier key and the origin of the log it must come
 * from (one key may sign several logs: without the origin, a proof from another log signed by the
 * same key would hold); returns null when it holds, else what is wrong.
 */
export async function checkInclusionProof(doc: unknown, key: VerifierKey, origin: string): Promise<string | null> {
  const d = doc as Partial<InclusionProof>;
  if (
    typeof d !== 'object' ||
    d === null ||
    !Number.isSafeInteger(d.seq) ||
    typeof d.record !== 'string' ||
    !Number.isSafeInteger(d.tree_size) ||
    !Array.isArray(d.proof) ||
    typeof d.checkpoint !== 'string'
  ) {
    return 'not an inclusion proof document (needs seq, record, tree_size, proof, checkpoint)';
  }
  const c = await openCheckpoint(d.checkpoint, key);
  if ('error' in c) return `checkpoint: ${c.error}`;
  if (c.origin !== origin)
    return `the proof is from the log "${c.origin}", not from "${origin}" (a checkpoint of another log)`;
  if (c.size !== d.tree_size) return `the proof is for tree size ${d.tree_size} but its checkpoint is for ${c.size}`;
  let record: { seq?: unknown; hash?: unknown };
  try {
    record = JSON.parse(d.record) as typeof record;
  } catch {
    return 'the record is not JSON';
  }
  if (record.seq !== d.seq) return `the record says seq ${String(record.seq)} but the proof is for seq ${d.seq}`;
  const { hash, ...rest } = record as Record<string, unknown>;
  try {
    if (encodeRecord(rest as never).hash !== hash) return 'the record hash does not match its content';
  } catch {
    return 'the record is not canonical JSON data';
  }
  const path = (d.proof as unknown[]).map((h) => (typeof h === 'string' ? Buffer.from(h, 'base64') : Buffer.alloc(0)));
  if (path.some((h) => h.length !== 32)) return 'a proof hash is not 32 bytes of base64';
  if (!verifyInclusion(d.seq!, c.size, leafHash(d.record), path, c.root))
    return `record ${d.seq} is not included in the tree of size ${c.size} that the checkpoint signs`;
  return null;
}
