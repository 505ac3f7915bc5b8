// `portcullis check`, `fmt` and `eval`: run in-process through the real command table (main
// from bin.ts) on real files in temp dirs, plus the built bin spawned once as a real process.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './run-cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fixtures = join(root, 'testdata', 'policy');

const run = (argv: string[], cwd: string, stdin?: string) =>
  runCli(argv, stdin === undefined ? { cwd } : { cwd, stdin });

function copyFixtures(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-policy-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(fixtures, dir, { recursive: true });
  return dir;
}

const req = (action: string, resource: object, extra: object = {}) =>
  JSON.stringify({ principal: { id: 'agent-7', roles: ['lead'] }, action, resource, context: {}, ...extra });

t.test('check: a clean set exits 0 and prints warnings', async (t) => {
  const dir = copyFixtures(t);
  const r = await run(['check', 'good'], dir);
  t.equal(r.code, 0, r.out + r.err);
  t.match(r.out, /^ok: 2 files, 5 rules/m);
  t.match(r.out, /policy_version sha256:[0-9a-f]{64}/);
  t.equal(r.err, '');
});

t.test('check: every diagnostic with file:line:col, code, source line and caret; exit 1', async (t) => {
  const dir = copyFixtures(t);
  const r = await run(['check', 'bad/errors.pol'], dir);
  t.equal(r.code, 1);
  t.match(
    r.out,
    /^bad\/errors\.pol:2:9: PCX_CHECK_UNKNOWN_ACTION: unknown action "net\.conect" \(did you mean "net\.connect"\?\)/m,
  );
  t.match(r.out, /\n {2} {2}allow net\.conect when resource\.host == "a\.com"\n {2} {8}\^{10}\n/);
  t.match(r.out, /^bad\/errors\.pol:3:26: PCX_CHECK_UNKNOWN_ATTRIBUTE: .*did you mean "host"/m);
  t.match(r.out, /^bad\/errors\.pol:4:41: PCX_CHECK_CIDR_HOST_BITS: /m);
  t.match(r.out, /3 errors, 0 warnings/);
  t.notMatch(r.out + r.err, /\n\s+at /, 'no stack trace');
});

t.test('check: all syntax errors of a file are reported', async (t) => {
  const dir = copyFixtures(t);
  const r = await run(['check', 'bad/syntax.pol'], dir);
  t.equal(r.code, 1);
  t.match(r.out, /^bad\/syntax\.pol:3:1: PCX_PARSE_EXPECTED_ACTION: expected an action .* after `allow`, found `\}`/m);
  t.match(
    r.out,
    new RegExp(
      /^bad\/syntax\.pol:4:8: PCX_PARSE_EXPECTED_NAME: /.source +
        /expected a policy name \(a string\) after `policy`, found `nameless`/.source,
      'm',
    ),
  );
});

t.test('check: user mistakes exit 2 without a stack', async (t) => {
  const dir = copyFixtures(t);
  const missing = await run(['check', 'nope.pol'], dir);
  t.equal(missing.code, 2);
  t.match(missing.err, /cannot read policy path .*nope\.pol: no such file or directory/);
  const none = await run(['check'], dir);
  t.equal(none.code, 2);
  t.match(none.err, /check needs at least one policy file/);
  t.notMatch(missing.err + none.err, /\n\s+at /);
});

t.test('fmt: prints, --check lists and exits 1, --write rewrites, then --check is clean', async (t) => {
  const dir = copyFixtures(t);
  const messy = 'policy   "m"{allow fs.read when resource.path=="/a" # why\n}\n';
  writeFileSync(join(dir, 'messy.pol'), messy);
  const printed = await run(['fmt', 'messy.pol'], dir);
  t.equal(printed.code, 0);
  t.equal(printed.out, 'policy "m" {\n  allow fs.read when resource.path == "/a" # why\n}\n');
  t.equal(readFileSync(join(dir, 'messy.pol'), 'utf8'), messy, 'printing does not write');
  const check = await run(['fmt', '--check', 'messy.pol', 'good/roles.pol'], dir);
  t.equal(check.code, 1);
  t.equal(check.out, 'messy.pol\n', 'lists only the file that would change');
  const write = await run(['fmt', '--write', 'messy.pol'], dir);
  t.equal(write.code, 0);
  t.equal(readFileSync(join(dir, 'messy.pol'), 'utf8'), printed.out);
  t.equal((await run(['fmt', '--check', 'messy.pol'], dir)).code, 0);
  const syntax = await run(['fmt', '--write', 'bad/syntax.pol'], dir);
  t.equal(syntax.code, 1);
  t.match(syntax.err, /PCX_PARSE_/);
  t.equal((await run(['fmt', '--check', '--write', 'messy.pol'], dir)).code, 2);
});

t.test('check: lease ceilings are checked like rules, each mistake at its file:line:col', async (t) => {
  const dir = copyFixtures(t);
  writeFileSync(
    join(dir, 'ceilings.pol'),
    [
      'leases from "approvals", "has space" max 8h {',
      '  allow net.conect',
      '  deny fs.read',
      '}',
      'leases from "approvals" max 31d {',
      '  allow fs.read when resource.pth == "/a"',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'unit.pol'), 'leases from "kid-1" max 8 {\n}\n');
  const r = await run(['check', 'ceilings.pol'], dir);
  t.equal(r.code, 1);
  t.match(r.out, /^ceilings\.pol:1:26: PCX_CHECK_CEILING_ISSUER: issuer "has space" is not a key id/m);
  t.match(r.out, /^ceilings\.pol:2:9: PCX_CHECK_UNKNOWN_ACTION: unknown action "net\.conect" \(did you mean/m);
  t.match(r.out, /^ceilings\.pol:3:3: PCX_CHECK_CEILING_EFFECT: a lease ceiling holds `allow` rules/m);
  t.match(r.out, /^ceilings\.pol:5:13: PCX_CHECK_DUPLICATE_CEILING: issuer "approvals" already has a lease ceiling/m);
  t.match(r.out, /^ceilings\.pol:5:\d+: PCX_CHECK_CEILING_LIFETIME: lease lifetime 31d is out of range/m);
  t.match(r.out, /^ceilings\.pol:6:\d+: PCX_CHECK_UNKNOWN_ATTRIBUTE: .*did you mean "path"/m);
  const unit = await run(['check', 'unit.pol'], dir);
  t.equal(unit.code, 1);
  t.match(unit.out, /^unit\.pol:1:25: PCX_PARSE_EXPECTED_DURATION: expected a lifetime after `max`/m);
  const good = await run(['check', 'good'], dir);
  writeFileSync(join(dir, 'good', 'ceiling.pol'), 'leases from "approvals" max 8h {\n  allow net.connect\n}\n');
  const withCeiling = await run(['check', 'good'], dir);
  t.equal(withCeiling.code, 0, withCeiling.out + withCeiling.err);
  t.not(withCeiling.out, good.out, 'the ceiling is part of the set (its version changes)');
});

t.test('fmt: a lease ceiling gets the canonical layout and keeps its comments', async (t) => {
  const dir = copyFixtures(t);
  const messy =
    'leases  from "approvals" ,"kid-1"   max 08h{ # bounds\n' +
    'allow net.connect,net.http when resource.host matches "**.example.com"\n}\n';
  writeFileSync(join(dir, 'ceiling.pol'), messy);
  const printed = await run(['fmt', 'ceiling.pol'], dir);
  t.equal(printed.code, 0, printed.err);
  t.equal(
    printed.out,
    'leases from "approvals", "kid-1" max 8h { # bounds\n' +
      '  allow net.connect, net.http when resource.host matches "**.example.com"\n}\n',
  );
  writeFileSync(join(dir, 'canonical.pol'), printed.out);
  t.equal((await run(['fmt', '--check', 'canonical.pol'], dir)).code, 0, 'idempotent');
  writeFileSync(join(dir, 'empty.pol'), 'leases from "a" max 1d {\n\n}\n');
  t.equal((await run(['fmt', 'empty.pol'], dir)).out, 'leases from "a" max 1d {}\n', 'an empty ceiling is `{}`');
});

t.test('eval --request: inline and @file, with --explain', async (t) => {
  const dir = copyFixtures(t);
  const allow = await run(
    ['eval', '--policy', 'good', '--request', req('net.connect', { host: 'API.GitHub.com', port: 443 })],
    dir,
  );
  t.equal(allow.code, 0, allow.err);
  const d = JSON.parse(allow.out);
  t.equal(d.decision, 'allow');
  t.same(
    d.reasons.map((r: { rule: string }) => r.rule),
    ['egress-baseline#1'],
  );
  t.match(d.policy_version, /^sha256:/);
  writeFileSync(join(dir, 'r.json'), req('net.connect', { host: 'x.github.com', port: 443, ip: '10.1.1.1' }));
  const deny = JSON.parse((await run(['eval', '--policy', 'good', '--request', '@r.json'], dir)).out);
  t.equal(deny.decision, 'deny');
  t.same(deny.reasons, [
    {
      effect: 'deny',
      policy: 'egress-baseline',
      rule: 'egress-baseline#2',
      because: 'private ranges',
      source: 'base.pol:6:3', // named relative to the policy root, not the working directory
    },
  ]);
  const ex = await run(
    [
      'eval',
      '--policy',
      'good',
      '--explain',
      '--request',
      req('net.connect', { host: 'x.github.com', port: 80, ip: '8.8.8.8' }),
    ],
    dir,
  );
  const e = JSON.parse(ex.out);
  t.equal(e.decision, 'deny');
  t.ok(Array.isArray(e.explain.candidates), 'explain lists candidates');
  const role = JSON.parse(
    (await run(['eval', '--policy', 'good', '--request', req('fs.read', { path: '/workspace/../workspace/x' })], dir))
      .out,
  );
  t.same(
    role.reasons.map((r: { rule: string }) => r.rule),
    ['role:developer#1'],
    'lead inherits developer',
  );
  const bad = await run(['eval', '--policy', 'good', '--request', '{nope'], dir);
  t.equal(bad.code, 2);
  t.match(bad.err, /the request is not valid JSON/);
});

t.test('eval --explain lists skipped rules; eval reports the leases it cannot verify as ignored', async (t) => {
  const dir = copyFixtures(t);
  const ex = await run(
    [
      'eval',
      '--policy',
      'good',
      '--explain',
      '--request',
      req('cmd.exec', { command: 'git' }, { principal: { id: 'a' } }),
    ],
    dir,
  );
  t.equal(ex.code, 0, ex.err);
  const e = JSON.parse(ex.out);
  t.equal(e.decision, 'deny');
  t.same(e.explain.skipped, [
    {
      rule: 'role:lead#1',
      effect: 'allow',
      // Sources are relative to the policy root (the directory given), whatever the working directory.
      source: 'roles.pol:5:3',
      skipped: 'role',
      why: 'applies to role "lead" (or a role extending it); the principal holds no roles',
    },
  ]);
  const leased = await run(
    [
      'eval',
      '--policy',
      'good',
      '--request',
      req('fs.write', { path: '/etc/x' }, { context: { leases: ['t1', 't2'] } }),
    ],
    dir,
  );
  const d = JSON.parse(leased.out);
  t.equal(d.decision, 'ask', 'an unverified lease turns nothing into an allow');
  t.same(d.reasons.slice(1), [
    { lease: 'unknown', ignored: 'bad_signature' },
    { lease: 'unknown', ignored: 'bad_signature' },
  ]);
});

t.test('eval --input: one decision per line, in order; bad lines are denies with errors', async (t) => {
  const dir = copyFixtures(t);
  const lines = [
    req('net.connect', { host: 'github.com', port: 443 }),
    'not json',
    '',
    req('net.connect', { host: 'github.com' }),
    req('fs.write', { path: '/etc/hosts' }),
    '[1,2]',
  ];
  writeFileSync(join(dir, 'in.jsonl'), lines.join('\n') + '\n');
  const r = await run(['eval', '--policy', 'good', '--input', 'in.jsonl'], dir);
  t.equal(r.code, 0, r.err);
  const out = r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.same(
    out.map((d) => d.decision),
    ['allow', 'deny', 'deny', 'ask', 'deny'],
  );
  t.equal(out[1].error.code, 'PCX_REQ_BAD_JSON');
  t.match(out[1].error.message, /^line 2: /);
  t.equal(out[2].error.code, 'PCX_REQ_MISSING_ATTRIBUTE');
  t.match(out[2].error.message, /resource\.port/);
  t.equal(out[4].error.code, 'PCX_REQ_NOT_OBJECT');
  // stdin, many requests in one process
  const many = Array.from({ length: 3000 }, (_, i) =>
    req('net.connect', { host: `h${i}.github.com`, port: i % 2 ? 443 : 80 }),
  ).join('\n');
  const s = await run(['eval', '--policy', 'good', '--input', '-'], dir, many);
  const ds = s.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).decision);
  t.equal(ds.length, 3000);
  t.ok(
    ds.every((d, i) => d === (i % 2 ? 'allow' : 'deny')),
    'in order',
  );
});

t.test('eval: a policy set that does not compile is reported, exit 1', async (t) => {
  const dir = copyFixtures(t);
  const r = await run(['eval', '--policy', 'bad/errors.pol', '--request', '{}'], dir);
  t.equal(r.code, 1);
  t.match(r.err, /PCX_CHECK_UNKNOWN_ACTION/);
  t.match(r.err, /does not compile/);
});

t.test('the built bin: check and eval --input from stdin as a real process', async (t) => {
  const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
  if (!existsSync(join(root, 'packages', 'cli', 'dist', 'bin.js'))) {
    t.fail('packages/cli/dist is missing: run `node scripts/bootstrap.mjs build` first');
    return;
  }
  const dir = copyFixtures(t);
  const spawnBin = (args: string[], input: string) =>
    new Promise<{ code: number | null; out: string; err: string }>((done) => {
      const p = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c: Buffer) => (out += c));
      p.stderr.on('data', (c: Buffer) => (err += c));
      const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
      p.on('close', (code) => {
        clearTimeout(timer);
        done({ code, out, err });
      });
      p.stdin.end(input);
    });
  const c = await spawnBin(['check', 'bad'], '');
  t.equal(c.code, 1);
  t.match(c.out, /PCX_PARSE_EXPECTED_ACTION/);
  t.notMatch(c.out + c.err, /\n\s+at /);
  const e = await spawnBin(
    ['eval', '--policy', 'good', '--input', '-'],
    `${req('net.connect', { host: 'github.com', port: 443 })}\n{bad\n`,
  );
  t.equal(e.code, 0, e.err);
  t.same(
    e.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).decision),
    ['allow', 'deny'],
  );
});
