/**
 * Which files form the policy set an open document belongs to, and their current text: the editor's
 * buffer for open documents, the disk for the rest. A set is what `portcullis check DIR` would check:
 * the configured policy root holding the file, or else the file's own directory, with every `.pol`
 * file below it. The last text of each file that parsed is kept, so that a syntax error while typing
 * does not make the file's constants and roles vanish from hover and completion.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import type { SourceFile } from '@portcullis/policy';

/** Policy files above this size are left out, as the PDP refuses them. */
const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;
/** A root with more files than this is not walked further (a mis-set root such as `/`). */
const MAX_FILES_PER_SET = 5000;

export interface PolicySetsOptions {
  /** Absolute directories; a file under one of them is checked with every `.pol` file below it. */
  roots?: readonly string[];
}

export class PolicySets {
  private readonly roots: string[];
  /** Open documents: absolute path → text. */
  private readonly open = new Map<string, string>();

  constructor(options: PolicySetsOptions = {}) {
    // Longest first, so that a nested root wins over the one around it.
    this.roots = (options.roots ?? []).map((r) => resolve(r)).sort((a, b) => b.length - a.length);
  }

  setOpen(path: string, text: string): void {
    this.open.set(path, text);
  }
  close(path: string): void {
    this.open.delete(path);
  }
  openText(path: string): string | undefined {
    return this.open.get(path);
  }

  rootOf(path: string): string {
    return this.roots.find((r) => path === r || path.startsWith(r + sep)) ?? dirname(path);
  }

  /** The set holding `path`: its files (sorted by path), open buffers overriding the disk. */
  setOf(path: string): { root: string; files: SourceFile[] } {
    const root = this.rootOf(path);
    const paths = new Set<string>();
    walk(root, paths);
    for (const p of this.open.keys()) if (this.rootOf(p) === root) paths.add(p);
    paths.add(path);
    const files: SourceFile[] = [];
    for (const p of [...paths].sort()) {
      const text = this.open.get(p) ?? readSmall(p);
      if (text !== undefined) files.push({ path: p, text });
    }
    return { root, files };
  }
}

function walk(dir: string, into: Set<string>): void {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (into.size >= MAX_FILES_PER_SET) return;
    if (e.name.startsWith('.') || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, into);
    else if (e.isFile() && e.name.endsWith('.pol')) into.add(p);
  }
}

function readSmall(path: string): string | undefined {
  try {
    if (statSync(path).size > MAX_POLICY_FILE_BYTES) return undefined;
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
