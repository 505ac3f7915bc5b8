/**
 * The scanner: pattern rules (rules.ts), and known secrets from a fingerprint file, found in one
 * pass over the folded text whatever the number of secrets. A keyed rolling hash of `window` bytes
 * runs over the fold; where it equals a form's anchor, the candidate (the `length` folded bytes
 * around it) is confirmed by the keyed HMAC. The hash never sees a secret, only the text; a
 * collision costs one HMAC, never a false finding. Findings carry the byte span of the original
 * text; `redacted` replaces each one.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Encoding } from './encodings.js';
import type { FingerprintFile } from './fingerprints.js';
import { type Folded, fold } from './fold.js';
import { BUILTIN_RULES, MAX_PATTERN_SPAN, matchRules, type PatternRule } from './rules.js';
import { confirmDigest, deriveScanKeys, rollingHash, rollingOutFactor } from './keys.js';

/** One secret found in a text. */
export interface Finding {
  /** What was found: `known-secret` for a secret of the fingerprint file, else the rule's kind. */
  kind: string;
  /** The rule that found it: for a known secret, `known-secret:<encoding>`, else the rule's id. */
  rule: string;
  /** Byte span [start, end) in the UTF-8 bytes of the text. */
  start: number;
  end: number;
  /** For a known secret: which one, and in which encoding it appeared. */
  secret?: { name: string; version: number };
  encoding?: Encoding;
}

export interface ScanResult {
  findings: Finding[];
  /** The text with each finding's span replaced by `[REDACTED:<kind>]` (same type as the input). */
  redacted: string | Uint8Array;
}

export interface ScannerOptions {
  /** Known secrets to find (parseFingerprints); default none. */
  fingerprints?: FingerprintFile;
  /** Pattern rules; default BUILTIN_RULES (an empty list: known secrets only). */
  rules?: PatternRule[];
}

/** A scan of a body in chunks: what each call returns is final (findings and redacted output). */
export interface ScanStream {
  /** Feeds a chunk: the findings complete so far (absolute byte spans), the redacted bytes safe to emit. */
  write(chunk: Uint8Array): { findings: Finding[]; output: Uint8Array };
  /** Ends the body: the remaining findings and output. */
  end(): { findings: Finding[]; output: Uint8Array };
}

export interface Scanner {
  scan(text: string | Uint8Array): ScanResult;
  /** A streaming scan holding at most about 2·windowBytes + a chunk. */
  stream(): ScanStream;
  /** The longest span a finding can have, in bytes: what a stream holds back. */
  readonly windowBytes: number;
}

/** Left context a stream keeps for the patterns (keyword before the value, word boundaries). */
const CONTEXT_BYTES = 256;

/**
 * A known secret's folded form may be spread over this many source bytes at most: 6 per byte is
 * every character written as `\u00XX`, and 256 leaves room for line breaks and string joins.
 */
function maxKnownSpan(length: number): number {
  return 6 * length + 256;
}

interface Candidate {
  name: string;
  version: number;
  encoding: Encoding;
  length: number;
  anchorOffset: number;
  digest: Buffer;
}

/** Bits of the anchor filter (a 128 KiB bitset): a text position costs one bit test. */
const FILTER_BITS = 20;
/** Largest text whose folded view is kept for reuse (9 bytes per byte: 36 MiB at most). */
const MAX_SCRATCH_BYTES = 4 << 20;

export function createScanner(options: ScannerOptions = {}): Scanner {
  const file = options.fingerprints;
  const rules = options.rules ?? BUILTIN_RULES;
  const keys = file ? deriveScanKeys(Buffer.from(file.scanKey, 'base64url')) : undefined;
  const window = file?.window ?? 16;
  const byAnchor = new Map<number, Candidate[]>();
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  for (const s of file?.secrets ?? []) {
    for (const f of s.forms) {
      const c = {
        name: s.name,
        version: s.version,
        encoding: f.encoding,
        length: f.length,
        anchorOffset: f.anchorOffset,
      };
      // Keyed by the anchor as int32: the scan loop keeps its hash in int32 so that V8 never boxes
      // it as a heap number (a uint32 over 2^31 is not a small integer): a 4× difference.
      const list = byAnchor.get(f.anchor | 0) ?? [];
      list.push({ ...c, digest: Buffer.from(f.digest, 'base64url') });
      byAnchor.set(f.anchor | 0, list);
      const bit = f.anchor >>> (32 - FILTER_BITS);
      filter[bit >>> 3] = (filter[bit >>> 3] as number) | (1 << (bit & 7));
    }
  }
  const outFactor = keys ? rollingOutFactor(keys, window) : 0;

  let scratch: Folded | undefined;

  function known(bytes: Uint8Array): Finding[] {
    if (!keys || byAnchor.size === 0) return [];
    // The folded view (9 bytes per text byte) is reused from scan to scan: allocating and zeroing
    // it each time cost more than the fold itself. scan() is synchronous, so nothing shares it.
    const f = fold(bytes, 0, bytes.length, scratch);
    if (bytes.length <= MAX_SCRATCH_BYTES) scratch = f; // a huge one-off text is not kept alive
    const out: Finding[] = [];
    if (f.length < window) return out;
    const table = new Int32Array(keys.table.buffer, keys.table.byteOffset, 256);
    const base = keys.base | 0;
    const out32 = outFactor | 0;
    let h = rollingHash(keys, f.bytes, 0, window) | 0;
    for (let p = 0; ; p++) {
      const bit = h >>> (32 - FILTER_BITS);
      if (((filter[bit >>> 3] as number) & (1 << (bit & 7))) !== 0) {
        for (const c of byAnchor.get(h) ?? []) {
          const s = p - c.anchorOffset;
          if (s < 0 || s + c.length > f.length) continue;
          const start = f.start[s] as number;
          const end = f.end[s + c.length - 1] as number;
          // INVARIANT: a finding never spans more than windowBytes, so a stream that holds back
          // windowBytes sees every finding whole; one-shot scans apply the same bound.
          if (end - start > maxKnownSpan(c.length)) continue;
          if (!timingSafeEqual(confirmDigest(keys, f.bytes, s, s + c.length), c.digest)) continue;
          out.push({
            kind: 'known-secret',
            rule: `known-secret:${c.encoding}`,
            start,
            end,
            secret: { name: c.name, version: c.version },
            encoding: c.encoding,
          });
        }
      }
      if (p + window >= f.length) break;
      const leaving = Math.imul(table[f.bytes[p] as number] as number, out32);
      h = (Math.imul((h - leaving) | 0, base) + (table[f.bytes[p + window] as number] as number)) | 0;
    }
    return out.sort((a, b) => a.start - b.start || b.end - a.end);
  }

  let longestForm = 0;
  for (const s of file?.secrets ?? []) for (const f of s.forms) longestForm = Math.max(longestForm, f.length);
  const windowBytes = Math.max(MAX_PATTERN_SPAN, maxKnownSpan(longestForm));

  function findAll(bytes: Uint8Array): Finding[] {
    const found = known(bytes);
    // A pattern match over a known secret adds nothing: the known finding names the secret.
    for (const m of matchRules(rules, Buffer.from(bytes).toString('latin1'))) {
      if (found.some((k) => k.start < m.end && m.start < k.end)) continue;
      found.push({ kind: m.rule.kind, rule: m.rule.id, start: m.start, end: m.end });
    }
    return found.sort((a, b) => a.start - b.start || b.end - a.end);
  }

  return {
    windowBytes,
    stream: () => createStream(findAll, windowBytes),
    scan(text) {
      const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
      const findings = findAll(bytes);
      const redactedBytes = redact(bytes, findings);
      return { findings, redacted: typeof text === 'string' ? redactedBytes.toString('utf8') : redactedBytes };
    },
  };
}

/** The bytes with each finding's span (overlapping spans merged) replaced by a marker. */
function redact(bytes: Uint8Array, findings: Finding[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const f of findings) {
    if (f.end <= at) continue;
    if (f.start < at) {
      at = f.end; // overlaps the span just redacted: widen it
      continue;
    }
    parts.push(Buffer.from(bytes.subarray(at, f.start)));
    parts.push(Buffer.from(`[REDACTED:${f.kind}]`));
    at = f.end;
  }
  parts.push(Buffer.from(bytes.subarray(at)));
  return Buffer.concat(parts);
}

/**
 * The stream: bytes are held until windowBytes more have arrived (no finding is longer, so any
 * finding starting before that cut is seen whole), then scanned as one window with CONTEXT_BYTES
 * of already-emitted text before it. A finding is reported once, by the window in which it starts
 * before the cut; output is emitted up to the cut, or to the end of a finding that crosses it.
 */
function createStream(findAll: (bytes: Uint8Array) => Finding[], hold: number): ScanStream {
  let buf: Buffer = Buffer.alloc(0);
  let base = 0; // absolute offset of buf[0]
  let emitted = 0; // absolute offset up to which output was given out
  let reportedEnd = 0; // end of the last finding reported (findings never overlap across windows)
  let cutAt = 0; // findings starting before this were decided

  function step(final: boolean): { findings: Finding[]; output: Uint8Array } {
    const cut = final ? base + buf.length : base + buf.length - hold;
    if (cut <= emitted && !final) return { findings: [], output: new Uint8Array(0) };
    const findings: Finding[] = [];
    for (const f of findAll(buf)) {
      const start = f.start + base;
      const end = f.end + base;
      if (start < cutAt || start >= cut || start < reportedEnd) continue;
      findings.push({ ...f, start, end });
      reportedEnd = end;
    }
    const outEnd = Math.max(cut, reportedEnd);
    const local = findings.map((f) => ({ ...f, start: f.start - emitted, end: f.end - emitted }));
    const output = redact(buf.subarray(emitted - base, outEnd - base), local);
    emitted = outEnd;
    cutAt = cut;
    const keepFrom = Math.max(base, emitted - CONTEXT_BYTES);
    buf = buf.subarray(keepFrom - base);
    base = keepFrom;
    return { findings, output };
  }

  return {
    write(chunk) {
      buf = Buffer.concat([buf, chunk]);
      // Scan once twice the hold is pending: each byte is scanned about twice, not once per chunk.
      if (base + buf.length - emitted < 2 * hold) return { findings: [], output: new Uint8Array(0) };
      return step(false);
    },
    end() {
      return step(true);
    },
  };
}
