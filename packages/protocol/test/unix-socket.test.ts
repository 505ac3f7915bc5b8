// listenUnixSocket, shared by the PDP and the audit sink: mode 0660, a stale socket replaced,
// a live one or a non-socket path refused and left untouched.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenUnixSocket, type ListenUnixOptions } from '../src/index.js';

// The caller names each failure with a whole code of its own; the audit sink's are used here.
const options: ListenUnixOptions = {
  codes: { path: 'PCX_AUDIT_SOCKET_PATH', inUse: 'PCX_AUDIT_SOCKET_IN_USE', listen: 'PCX_AUDIT_LISTEN' },
};

const dir = mkdtempSync(join(tmpdir(), 'pcx-unix-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the socket is mode 0660 and its directory is created', async (t) => {
  const path = join(dir, 'sub', 'a.sock');
  const s = createServer();
  const { ino } = await listenUnixSocket(s, path, options);
  t.teardown(() => s.close());
  const st = statSync(path);
  t.ok(st.isSocket());
  t.equal(st.mode & 0o777, 0o660);
  t.equal(st.ino, ino);
});

t.test('a live socket is refused; once its server is gone the stale file is replaced', async (t) => {
  const path = join(dir, 'b.sock');
  const first = createServer();
  await listenUnixSocket(first, path, options);
  await t.rejects(listenUnixSocket(createServer(), path, options), { code: 'PCX_AUDIT_SOCKET_IN_USE' });
  first.close();
  // A daemon killed with SIGKILL leaves its socket file behind with nobody listening.
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
  ]);
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.ok(statSync(path).isSocket(), 'the stale socket file is there');
  const second = createServer();
  await listenUnixSocket(second, path, options);
  t.teardown(() => second.close());
  t.ok(statSync(path).isSocket(), 'listening again on the stale path');
});

t.test('a path that is not a socket is refused and left as it was', async (t) => {
  const path = join(dir, 'not-a-socket');
  writeFileSync(path, 'precious');
  await t.rejects(listenUnixSocket(createServer(), path, options), {
    code: 'PCX_AUDIT_SOCKET_PATH',
    message: /not a socket/,
  });
  t.equal(readFileSync(path, 'utf8'), 'precious');
});
