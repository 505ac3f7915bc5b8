// Handing secrets to a child process (runWithSecrets, the function `vault exec` and the exec
// gate share): stdin framings, the fd and env modes only when asked, a 1 MiB value delivered
// whole, a child that leaves before reading refused, and the plaintext buffers zeroed.
import t from 'tap';
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { frameSecrets, runWithSecrets, type RunWithSecretsOptions } from '../src/inject.js';
import type { OpenedSecret } from '../src/store.js';
import { bytes, codeOf } from './helpers.js';

const secret = (name: string, value: string | Uint8Array): OpenedSecret => ({
  name,
  version: 1,
  value: typeof value === 'string' ? bytes(value) : value,
});

/** Run node with `script`, its stdout collected. */
async function run(script: string, options: Partial<RunWithSecretsOptions> & { secrets: OpenedSecret[] }) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c));
  const result = await runWithSecrets({ command: process.execPath, args: ['-e', script], stdout: out, ...options });
  return { ...result, out: text };
}

const ECHO_SHA =
  "const h=require('crypto').createHash('sha256');process.stdin.on('data',d=>h.update(d))" +
  ".on('end',()=>process.stdout.write(h.digest('hex')))";
const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

t.test('lines, env and raw framing', async (t) => {
  t.equal(Buffer.from(frameSecrets([secret('a', 'x1'), secret('b', 'y2')], 'lines')).toString(), 'x1\ny2\n');
  t.equal(Buffer.from(frameSecrets([secret('a', 'x1'), secret('b', 'y2')], 'env')).toString(), 'a=x1\nb=y2\n');
  t.equal(Buffer.from(frameSecrets([secret('a', 'x\n1')], 'raw')).toString(), 'x\n1');
  t.equal(await codeOf(() => frameSecrets([secret('a', 'x\n1')], 'lines')), 'PCX_VAULT_FRAMING');
  t.equal(await codeOf(() => frameSecrets([secret('a', 'x'), secret('b', 'y')], 'raw')), 'PCX_VAULT_FRAMING');
});

t.test('a 1 MiB value reaches the child whole, and the buffers are zeroed after', async (t) => {
  const big = new Uint8Array(1024 * 1024).map((_, i) => 33 + (i % 90));
  const expected = sha(big);
  const s = secret('big', big);
  const r = await run(ECHO_SHA, { secrets: [s], framing: 'raw' });
  t.equal(r.status, 0);
  t.equal(r.out, expected);
  t.ok(
    s.value.every((b) => b === 0),
    'the released plaintext was wiped',
  );
});

t.test("fd mode: on fd 3, named by PORTCULLIS_SECRETS_FD; stdin stays the parent's", async (t) => {
  const script =
    "const fs=require('fs');const fd=Number(process.env.PORTCULLIS_SECRETS_FD);" +
    "process.stdout.write(require('crypto').createHash('sha256').update(fs.readFileSync(fd)).digest('hex'))";
  const r = await run(script, { secrets: [secret('a', 'fd-secret-1')], mode: 'fd' });
  t.equal(r.out, sha('fd-secret-1\n'));
});

t.test('env mode: a variable per secret, only when asked', async (t) => {
  const script = "process.stdout.write(JSON.stringify([process.env.API_TOKEN===('tok-'+'123'), 'A' in process.env]))";
  const r = await run(script, { secrets: [secret('api/token', 'tok-123')], mode: 'env', env: { PATH: '' } });
  t.equal(r.out, '[true,false]');
  const plain = await run("process.stdin.resume().on('end',()=>process.stdout.write(String(process.env.API_TOKEN)))", {
    secrets: [secret('api/token', 'tok-123')],
  });
  t.equal(plain.out, 'undefined', 'stdin mode puts nothing in the environment');
});

t.test('a child that exits before reading is PCX_VAULT_CHILD_EXITED', async (t) => {
  for (const script of ['process.exit(0)', 'process.exit(3)', "require('fs').closeSync(0)"]) {
    t.equal(
      await codeOf(() => run(script, { secrets: [secret('a', 'never-read-value')] })),
      'PCX_VAULT_CHILD_EXITED',
      script,
    );
  }
});

t.test('a command that cannot start is PCX_VAULT_EXEC_FAILED', async (t) => {
  t.equal(
    await codeOf(() => runWithSecrets({ command: '/nonexistent/cmd', args: [], secrets: [secret('a', 'v')] })),
    'PCX_VAULT_EXEC_FAILED',
  );
});
