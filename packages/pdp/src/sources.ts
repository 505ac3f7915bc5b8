/**
 * Reading a policy path: a file, or a directory meaning every *.pol below it, loaded together
 * as one policy set. Files are returned sorted by path so that the set does not depend on
 * directory order; each carries its name relative to the policy root, which is all of its
 * location that the version hash sees (not the working directory, not where the root is).
 * Kubernetes ConfigMap volumes keep their files behind `..data` symlinks and timestamped
 * `..2024_…` directories: entries whose names start with ".." are skipped, and symlinks are
 * followed, so each file is read once via its visible name.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { PcxError } from '@portcullis/protocol';

export interface PolicySource {
  /** The path shown in diagnostics: relative to the working directory when below it. */
  path: string;
  /**
   * The name relative to the policy root (`/`-separated; a single file: its base name), which
   * policy_version hashes: the same set has the same version wherever it is loaded from.
   */
  name: string;
  text: string;
}

const MAX_POLICY_FILE_BYTES = 16 * 1024 * 1024;
/** Reads of changed content before giving up on it settling, and the pause between them. */
const SETTLE_READS = 5;
const SETTLE_MS = 25;

/**
 * Read until two reads a short pause apart agree, so that a file rewritten in place (truncate,
 * then write) is not taken half-written: its empty prefix would be a valid, deny-everything
 * policy set, an empty key set or an empty revocation list. A read whose fingerprint equals
 * `known` (the content already in force) is returned at once. Writing atomically (a temporary
 * file renamed over, as editors and the kubelet do) avoids the question altogether.
 */
export async function readSettled<T>(
  read: () => Promise<T>,
  fingerprint: (value: T) => string,
  known: string | undefined,
): Promise<{ value: T; fingerprint: string }> {
  let value = await read();
  let fp = fingerprint(value);
  for (let i = 0; fp !== known && i < SETTLE_READS; i++) {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const again = await read();
    const fp2 = fingerprint(again);
    if (fp2 === fp) break;
    value = again;
    fp = fp2;
  }
  return { value, fingerprint: fp };
}

export async function readPolicySources(path: string, options: { cwd?: string } = {}): Promise<PolicySource[]> {
  const cwd = options.cwd ?? process.cwd();
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new PcxError(
      'PCX_POLICY_PATH',
      `cannot read policy path ${path}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`,
    );
  });
  const files: string[] = [];
  if (info.isDirectory()) await walk(path, files);
  else files.push(path);
  files.sort();
  const out: PolicySource[] = [];
  for (const file of files) {
    const st = await stat(file);
    if (st.size > MAX_POLICY_FILE_BYTES) {
      throw new PcxError(
        'PCX_POLICY_TOO_LARGE',
        `${file} is ${st.size} bytes; policy files are limited to ${MAX_POLICY_FILE_BYTES} bytes`,
      );
    }
    const rel = relative(cwd, file);
    const name = info.isDirectory() ? relative(path, file).split(sep).join('/') : basename(file);
    out.push({ path: rel.startsWith('..') || rel === '' ? file : rel, name, text: await readFile(file, 'utf8') });
  }
  return out;
}

async function walk(dir: string, into: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.startsWith('..')) continue;
    const full = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(full).catch(() => undefined);
      if (!target) continue; // a dangling link: nothing to load
      isDir = target.isDirectory();
      isFile = target.isFile();
    }
    if (isDir) await walk(full, into);
    else if (isFile && entry.name.endsWith('.pol')) into.push(full);
  }
}
