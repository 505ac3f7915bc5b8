/**
 * The built `portcullis` bin as a shell pipeline sees it: a reader that closes early
 * (`portcullis eval … | head -1`) ends the command quietly — no EPIPE stack trace, exit 0 — and
 * `--version` prints the package's version.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');

t.test('a reader that closes the pipe early gets no stack trace and exit 0', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-pipe-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const request = JSON.stringify({
    principal: { id: 'a' },
    action: 'net.connect',
    resource: { host: 'x.com', port: 443 },
  });
  // Far more output than a pipe buffer holds, so the writer is still writing when the reader goes.
  writeFileSync(join(dir, 'requests.jsonl'), `${request}\n`.repeat(20_000));
  const child = spawn(
    process.execPath,
    [bin, 'eval', '--policy', join(root, 'examples', 'policies'), '--input', join(dir, 'requests.jsonl')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // Read the first chunk, then close our end of the pipe as `head -1` does.
  const first = await new Promise<string>((resolve) => child.stdout.once('data', (c: Buffer) => resolve(c.toString())));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  tt.match(first, /^\{"decision":"deny"/, 'the reader got decisions before it left');
  tt.equal(code, 0, 'exit 0');
  tt.notMatch(err, /EPIPE|\n\s+at /, 'no EPIPE error, no stack trace');
});

t.test('--version prints the package version', async (tt) => {
  const { version } = JSON.parse(readFileSync(join(root, 'packages', 'cli', 'package.json'), 'utf8'));
  for (const flag of ['--version', '-V']) {
    const child = spawn(process.execPath, [bin, flag], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    tt.equal(code, 0, `${flag} exits 0`);
    tt.equal(out, `portcullis ${version}\n`, `${flag} prints the version`);
  }
});
