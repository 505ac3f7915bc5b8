// The language server as editors run it: the built `portcullis lsp --stdio` process, driven by a
// real LSP client (vscode-jsonrpc) over its stdin/stdout. Diagnostics are compared with what the
// `portcullis check` process prints for the same files, and formatting with `portcullis fmt`.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node.js';
import type { MessageConnection } from 'vscode-jsonrpc/node.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');

interface LspDiagnostic {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  code: string;
  message: string;
  severity: number;
}
interface Session {
  conn: MessageConnection;
  /** Resolves with the next diagnostics published for this file that satisfy `until`. */
  diagnostics(path: string, until?: (d: LspDiagnostic[]) => boolean): Promise<LspDiagnostic[]>;
  open(path: string, text?: string): void;
  change(path: string, text: string, version: number): void;
  /** Closes the server's stdin, as a crashed editor would. */
  hangUp(): void;
  exited: Promise<number | null>;
  stderr: () => string;
}

function policiesDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-e2e-lsp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const set = join(dir, 'policies');
  mkdirSync(set);
  const examples = join(root, 'examples', 'policies');
  for (const f of readdirSync(examples)) if (f.endsWith('.pol')) copyFileSync(join(examples, f), join(set, f));
  return set;
}

async function start(t: Test, dir: string, initializationOptions: object = {}): Promise<Session> {
  const child = spawn(process.execPath, [bin, 'lsp', '--stdio'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  const waiters: { uri: string; until: (d: LspDiagnostic[]) => boolean; done: (d: LspDiagnostic[]) => void }[] = [];
  conn.onNotification('textDocument/publishDiagnostics', (p: { uri: string; diagnostics: LspDiagnostic[] }) => {
    for (const w of waiters.splice(0)) {
      if (w.uri === p.uri && w.until(p.diagnostics)) w.done(p.diagnostics);
      else waiters.push(w);
    }
  });
  conn.listen();
  t.teardown(() => conn.dispose());
  await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri: pathToFileURL(dir).href,
    capabilities: {},
    initializationOptions,
  });
  await conn.sendNotification('initialized', {});
  return {
    conn,
    exited,
    hangUp: () => child.stdin.end(),
    stderr: () => err,
    diagnostics: (path, until = () => true) =>
      new Promise((done) => waiters.push({ uri: pathToFileURL(path).href, until, done })),
    open: (path, text = readFileSync(path, 'utf8')) =>
      void conn.sendNotification('textDocument/didOpen', {
        textDocument: { uri: pathToFileURL(path).href, languageId: 'portcullis', version: 1, text },
      }),
    change: (path, text, version) =>
      void conn.sendNotification('textDocument/didChange', {
        textDocument: { uri: pathToFileURL(path).href, version },
        contentChanges: [{ text }],
      }),
  };
}

/** `file:line:col: CODE` lines from the real `portcullis check` process. */
function checkProcess(path: string): { line: number; col: number; code: string }[] {
  const r = spawnSync(process.execPath, [bin, 'check', path], { encoding: 'utf8' });
  return [...r.stdout.matchAll(/^.+?:(\d+):(\d+): (PCX_\w+):/gm)].map((m) => ({
    line: Number(m[1]),
    col: Number(m[2]),
    code: m[3]!,
  }));
}

const at = (path: string, line: number, character: number) => ({
  textDocument: { uri: pathToFileURL(path).href },
  position: { line, character },
});

t.test('diagnostics as you type match `portcullis check`, and a fix clears them', async (t) => {
  const dir = policiesDir(t);
  const file = join(dir, 'typo.pol');
  const broken =
    'policy "typo" {\n  allow net.http when resource.hots == "a.example"\n' +
    '  allow net.conect when resource.port == 443\n' +
    '  allow fs.read when resource.path in unknown_list\n}\n';
  writeFileSync(file, broken);
  const s = await start(t, dir);
  const first = s.diagnostics(file);
  s.open(file);
  const got = await first;
  const expected = checkProcess(file);
  t.ok(expected.length >= 3, 'check reports the typos');
  t.same(
    got.map((d) => ({ line: d.range.start.line + 1, col: d.range.start.character + 1, code: d.code })),
    expected,
    'same codes at the same positions as check',
  );
  const attr = got.find((d) => d.code === 'PCX_CHECK_UNKNOWN_ATTRIBUTE')!;
  t.match(attr.message, /did you mean "host"/);
  t.equal(attr.range.end.character - attr.range.start.character, 'resource.hots'.length, 'the range is the path');

  // The quick fix for a did-you-mean diagnostic rewrites exactly the range.
  const actions = (await s.conn.sendRequest('textDocument/codeAction', {
    textDocument: { uri: pathToFileURL(file).href },
    range: attr.range,
    context: { diagnostics: [attr] },
  })) as { title: string; edit: { changes: Record<string, { newText: string }[]> } }[];
  t.equal(actions.length, 1);
  t.equal(actions[0]!.edit.changes[pathToFileURL(file).href]![0]!.newText, 'resource.host');

  const cleared = s.diagnostics(file, (d) => d.length === 0);
  s.change(file, 'policy "typo" {\n  allow net.http when resource.host == "a.example"\n}\n', 2);
  t.same(await cleared, [], 'fixed text clears the diagnostics');

  await s.conn.sendRequest('shutdown');
  await s.conn.sendNotification('exit');
  t.equal(await s.exited, 0, 'exit after shutdown is exit code 0');
  t.notMatch(s.stderr(), /at .+\.js:\d+/, 'no stack trace on stderr');
});

t.test('a set spans files: constants from another file, hover, definition, references', async (t) => {
  const dir = policiesDir(t);
  const s42 = join(dir, 's-42.pol');
  const base = join(dir, 'base.pol');
  const roles = join(dir, 'roles.pol');
  const s = await start(t, dir);
  s.open(s42);
  const text = readFileSync(s42, 'utf8');
  const line = text.split('\n').findIndex((l) => l.includes('git_hosts'));
  const col = text.split('\n')[line]!.indexOf('git_hosts') + 2;
  const hover = (await s.conn.sendRequest('textDocument/hover', at(s42, line, col))) as {
    contents: { value: string };
  };
  t.match(hover.contents.value, /^let git_hosts = \["github\.com"/, 'hover shows the constant as written');
  const def = (await s.conn.sendRequest('textDocument/definition', at(s42, line, col))) as {
    uri: string;
    range: { start: { line: number; character: number } };
  }[];
  const baseLines = readFileSync(base, 'utf8').split('\n');
  const letLine = baseLines.findIndex((l) => l.startsWith('let git_hosts'));
  t.same(
    def.map((d) => [d.uri, d.range.start.line, d.range.start.character]),
    [[pathToFileURL(base).href, letLine, 4]],
    'definition is the name in base.pol',
  );
  const refs = (await s.conn.sendRequest('textDocument/references', {
    ...at(s42, line, col),
    context: { includeDeclaration: false },
  })) as { uri: string }[];
  t.same(
    [...new Set(refs.map((r) => r.uri))].sort(),
    [pathToFileURL(base).href, pathToFileURL(s42).href].sort(),
    'references in both files',
  );

  // Roles: hover lists the transitive closure; references find every `extends`.
  const rolesText = readFileSync(roles, 'utf8').split('\n');
  const leadLine = rolesText.findIndex((l) => l.startsWith('role lead'));
  const roleHover = (await s.conn.sendRequest('textDocument/hover', at(roles, leadLine, 6))) as {
    contents: { value: string };
  };
  t.match(roleHover.contents.value, /role lead extends developer, reviewer/);
  t.match(roleHover.contents.value, /inherits the rules of developer, reader, reviewer/);
  const readerLine = rolesText.findIndex((l) => l.startsWith('role reader'));
  const readerRefs = (await s.conn.sendRequest('textDocument/references', {
    ...at(roles, readerLine, 6),
    context: { includeDeclaration: false },
  })) as { range: { start: { line: number } } }[];
  t.same(
    readerRefs.map((r) => r.range.start.line).sort((a, b) => a - b),
    rolesText.flatMap((l, i) => (/extends .*\breader\b/.test(l) ? [i] : [])),
    'every extends of reader',
  );

  // Alone in a directory without base.pol, the same file's constant is unknown.
  const alone = join(dirname(dir), 'alone');
  mkdirSync(alone);
  copyFileSync(s42, join(alone, 's-42.pol'));
  const lonely = s.diagnostics(join(alone, 's-42.pol'));
  s.open(join(alone, 's-42.pol'));
  t.same(
    (await lonely).map((d) => d.code),
    ['PCX_CHECK_UNKNOWN_CONSTANT'],
  );
});

t.test('completion knows the rule it is in; formatting is `portcullis fmt`', async (t) => {
  const dir = policiesDir(t);
  const file = join(dir, 'new.pol');
  const s = await start(t, dir);
  const text = 'policy "n" {\n  allow fs.read when resource.\n}\n';
  s.open(file, text);
  const labels = async (line: number, character: number) =>
    ((await s.conn.sendRequest('textDocument/completion', at(file, line, character))) as { label: string }[]).map(
      (i) => i.label,
    );
  t.same(await labels(1, 30), ['path'], 'fs.read has one resource attribute');
  s.change(file, 'policy "n" {\n  allow net.http when resource.\n}\n', 2);
  const http = await labels(1, 31);
  t.ok(http.includes('method') && http.includes('host') && !http.includes('path2'), 'net.http attributes');
  s.change(file, 'policy "n" {\n  allow \n}\n', 3);
  t.ok((await labels(1, 8)).includes('net.http'), 'actions after allow');
  s.change(file, 'role x extends \n', 4);
  const roles = await labels(0, 15);
  t.ok(roles.includes('developer') && roles.includes('reader'), 'roles after extends');
  s.change(file, 'policy "n" {\n  allow fs.read when resource.path in \n}\n', 5);
  t.ok((await labels(1, 38)).includes('git_hosts'), 'constants from the set');

  const messy = 'let   xs=["a",   "b"]\npolicy "m"   {\n allow   fs.read when resource.path   matches "/a/**"  }\n';
  s.change(file, messy, 6);
  const edits = (await s.conn.sendRequest('textDocument/formatting', {
    textDocument: { uri: pathToFileURL(file).href },
    options: { tabSize: 2, insertSpaces: true },
  })) as { newText: string }[];
  writeFileSync(file, messy);
  const fmt = spawnSync(process.execPath, [bin, 'fmt', file], { encoding: 'utf8' });
  t.equal(fmt.status, 0);
  t.equal(edits.length, 1);
  t.equal(edits[0]!.newText, fmt.stdout, 'the edit is what fmt prints');
  s.change(file, 'policy "m" { allow', 7);
  t.same(
    await s.conn.sendRequest('textDocument/formatting', {
      textDocument: { uri: pathToFileURL(file).href },
      options: { tabSize: 2, insertSpaces: true },
    }),
    [],
    'a file that does not parse is left alone',
  );
});

t.test('hostile input: unknown documents, non-file URIs and a client that vanishes', async (t) => {
  const dir = policiesDir(t);
  const s = await start(t, dir);
  t.equal(await s.conn.sendRequest('textDocument/hover', at(join(dir, 'nope.pol'), 0, 0)), null);
  s.conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri: 'untitled:Untitled-1', languageId: 'portcullis', version: 1, text: 'policy {' },
  });
  t.same(
    await s.conn.sendRequest('textDocument/completion', {
      textDocument: { uri: 'untitled:Untitled-1' },
      position: { line: 0, character: 3 },
    }),
    [],
  );
  const file = join(dir, 'big.pol');
  const big = s.diagnostics(file);
  s.open(file, `policy "b" {\n${'  allow fs.read when resource.path == "/x"\n'.repeat(20000)}  allow ((\n}\n`);
  t.equal((await big)[0]!.code, 'PCX_PARSE_EXPECTED_ACTION', 'a large broken buffer gets its syntax error');
  s.hangUp();
  t.equal(await s.exited, 1, 'stdin closed without shutdown: exit 1, as the protocol says');
});
