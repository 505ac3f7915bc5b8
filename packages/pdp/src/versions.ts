/**
 * The policy versions a PDP served, kept content-addressed in a directory: one file
 * `<hex>.json` per version (the hex digest of its policy_version) holding the set's files by
 * name, `{"version": "sha256:…", "files": [{"name", "text"}, …]}`.
 *
 * Promises: a version is on disk (written to a temporary file, fsynced, renamed into place)
 * before the PDP serves a decision made by it, so `audit replay` can evaluate any recorded
 * decision against exactly the set that made it; a stored file is never rewritten (same name,
 * same content); and reading recomputes the version from the stored files, so a file edited
 * or swapped under another version's name is refused rather than replayed.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { policyVersion, type SourceFile } from '@portcullis/policy';
import { PcxError } from '@portcullis/protocol';

const VERSION = /^sha256:([0-9a-f]{64})$/;

/**
 * Where versions are kept unless told otherwise: `$XDG_STATE_HOME/portcullis/policy-versions`,
 * else `~/.local/state/portcullis/policy-versions`. The PDP and `audit replay` both use it.
 */
export function defaultVersionsDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.length > 0 ? env.XDG_STATE_HOME : undefined;
  return join(state ?? join(homedir(), '.local', 'state'), 'portcullis', 'policy-versions');
}

function fileOf(dir: string, version: string): string {
  const m = VERSION.exec(version);
  if (!m) {
    throw new PcxError('PCX_PDP_VERSION_MISSING', `"${version.slice(0, 80)}" is not a policy version`, {
      hint: 'a policy version is "sha256:" followed by 64 lower-case hex digits',
    });
  }
  return join(dir, `${m[1]}.json`);
}

/** Create the directory (mode 0750) and check that it is writable: called once, at start. */
export async function openVersionsDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await access(dir, constants.W_OK);
  } catch (e) {
    throw new PcxError(
      'PCX_PDP_VERSION_STORE',
      `cannot keep policy versions in ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { hint: 'give the PDP a writable --versions-dir' },
    );
  }
}

/** Keep `files` (which compile to `version`) unless that version is already kept. */
export async function keepVersion(dir: string, version: string, files: readonly SourceFile[]): Promise<void> {
  const path = fileOf(dir, version);
  const doc = {
    version,
    files: files
      .map((f) => ({ name: f.name ?? f.path, text: f.text }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))),
  };
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    if (await exists(path)) return;
    fh = await open(tmp, 'wx', 0o640);
    await fh.writeFile(JSON.stringify(doc) + '\n');
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw new PcxError(
      'PCX_PDP_VERSION_STORE',
      `cannot keep policy ${version} in ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The files of a kept version, checked to hash to it. */
export async function loadVersion(dir: string, version: string): Promise<SourceFile[]> {
  const path = fileOf(dir, version);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PcxError(
      'PCX_PDP_VERSION_MISSING',
      `policy ${version} is not kept in ${dir}${code === 'ENOENT' ? '' : ` (${code ?? (e as Error).message})`}`,
      { hint: 'name the directory the PDP kept its versions in (--versions-dir), or replay against --policy PATH' },
    );
  }
  const corrupt = (why: string) =>
    new PcxError('PCX_PDP_VERSION_CORRUPT', `${path} does not hold policy ${version}: ${why}`, {
      hint: 'the file was edited or replaced; restore it from a backup of the versions directory',
    });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('it is not JSON');
  }
  const files = (doc as { files?: unknown } | null)?.files;
  if (
    !Array.isArray(files) ||
    !files.every((f) => typeof f === 'object' && f !== null && typeof f.name === 'string' && typeof f.text === 'string')
  ) {
    throw corrupt('expected {"version", "files": [{"name", "text"}, …]}');
  }
  const sources: SourceFile[] = files.map((f: { name: string; text: string }) => ({
    path: f.name,
    name: f.name,
    text: f.text,
  }));
  const actual = policyVersion(sources);
  if (actual !== version) throw corrupt(`its files hash to ${actual}`);
  return sources;
}
