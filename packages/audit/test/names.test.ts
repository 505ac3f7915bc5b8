// Key names and origins follow C2SP signed-note / tlog-checkpoint: keygen and serve refuse what a
// note may not hold (control characters; spaces or "+" in key names; an origin with a leading or
// trailing space, which would not survive being stored and read back) with a clear error.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { auditCommand } from '../src/commands.js';
import { AuditLog } from '../src/log.js';
import { verifyLog } from '../src/verify.js';
import { newKey, sampleRecord, tempDir } from './helpers.js';

async function cli(args: string[], cwd: string): Promise<{ code: number; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let e = '';
  err.on('data', (c: Buffer) => (e += c.toString()));
  try {
    return { code: await auditCommand(args, { stdout: out, stderr: err, stdin: Readable.from([]), cwd }), err: e };
  } catch (x) {
    // As the CLI prints a PcxError (exit 2).
    const pe = x as { code?: string; message: string; hint?: string };
    return { code: 2, err: `${pe.code}: ${pe.message}${pe.hint ? `\n  hint: ${pe.hint}` : ''}` };
  }
}

t.test('keygen refuses key names with control characters, spaces or "+", naming the character', async (t) => {
  const dir = tempDir(t);
  const cases: [string, RegExp][] = [
    ['audit\u0001log', /key name "audit\\u0001log" is not allowed: it contains a control character \(U\+0001\)/],
    ['audit\u007flog', /control character \(U\+007F\)/],
    ['audit\u0085log', /control character \(U\+0085\)/],
    ['audit log', /it contains a space \(U\+0020\)/],
    ['audit.log ', /it contains a space \(U\+0020\)/],
    ['audit\u00a0log', /it contains a space \(U\+00A0\)/],
    ['audit\u3000log', /it contains a space \(U\+3000\)/],
    ['audit+log', /it contains "\+"/],
    ['\ud800', /not valid Unicode \(a lone surrogate, U\+D800\)/],
    ['x'.repeat(129), /longer than 128 characters/],
  ];
  for (const [i, [name, want]] of cases.entries()) {
    const out = join(dir, `k${i}`);
    const r = await cli(['keygen', '--name', name, '--out', out], dir);
    t.equal(r.code, 2, JSON.stringify(name));
    t.match(r.err, /^PCX_AUDIT_BAD_KEY_NAME: /);
    t.match(r.err, want);
    t.match(r.err, /hint: use 1-128 characters without spaces, control characters or "\+"/);
    t.notOk(existsSync(out), 'no key file written');
  }
  t.equal((await cli(['keygen', '--name', 'audit.example.com/log-1', '--out', join(dir, 'ok')], dir)).code, 0);
});

t.test('origins: control characters and surrounding spaces are refused at serve and by the log', async (t) => {
  const dir = tempDir(t);
  const { key } = await newKey('names-test');
  const cases: [string, RegExp][] = [
    ['audit.example/log ', /--origin "audit\.example\/log " is not allowed: it starts or ends with a space/],
    [' audit.example/log', /starts or ends with a space/],
    ['audit.example/log\u00a0', /starts or ends with a space/],
    ['audit.example\t/log', /it contains a control character \(U\+0009\)/],
    ['audit.example/\u001blog', /control character \(U\+001B\)/],
    ['audit.example\n/log', /control character \(U\+000A\)/],
    ['', /it is empty/],
  ];
  for (const [origin, want] of cases) {
    // serve checks --origin before anything else (the key file here does not exist).
    const r = await cli(
      ['serve', '--dir', join(dir, 'log'), '--socket', join(dir, 's.sock'), '--key', join(dir, 'none.key')],
      dir,
    );
    t.match(r.err, /PCX_AUDIT_NO_KEY/, 'the control case: no --origin, the missing key is the problem');
    const bad = await cli(
      ['serve', '--dir', join(dir, 'log'), '--socket', join(dir, 's.sock'), '--key', 'none.key', '--origin', origin],
      dir,
    );
    t.equal(bad.code, 2);
    t.match(bad.err, /^PCX_AUDIT_BAD_ORIGIN: /, JSON.stringify(origin));
    t.match(bad.err, origin === '' ? /--origin "" is not allowed: it is empty/ : want);
    const logDir = join(dir, `log-${cases.findIndex(([o]) => o === origin)}`);
    await t.rejects(AuditLog.open({ dir: logDir, key, origin }), { code: 'PCX_AUDIT_BAD_ORIGIN' });
  }
  t.notOk(existsSync(join(dir, 'log')), 'nothing was created');
});

t.test('the origin is stored and read back exactly; an edited origin file is refused', async (t) => {
  const dir = tempDir(t);
  const { key, publicKey } = await newKey('names-test');
  const origin = 'audit.example/log 1 (interior spaces are fine)';
  const log = await AuditLog.open({ dir, key, origin, checkpointEvery: 2 });
  for (let i = 0; i < 4; i++) await log.append(sampleRecord(i));
  await log.close();
  const again = await AuditLog.open({ dir, key });
  t.equal(again.origin, origin);
  await again.close();
  const r = await verifyLog(dir, { publicKey });
  t.ok(r.ok, JSON.stringify(r.problems));
  t.equal(r.latest?.origin, origin);
  writeFileSync(join(dir, 'origin'), `${origin}\u0007\n`);
  await t.rejects(AuditLog.open({ dir, key }), {
    code: 'PCX_AUDIT_BAD_ORIGIN',
    message: /the origin in .*origin ".*\\u0007" is not allowed: it contains a control character \(U\+0007\)/,
  });
});
