// `portcullis test`: run in-process through the real command table (main from bin.ts) against
// real policy files and test files in temp dirs, plus one run of the built bin on the examples.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './run-cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const run = (argv: string[], cwd: string) => runCli(argv, { cwd });

/** Asserts the exit status; on a mismatch, shows what the command printed. */
function exits(t: Test, r: { code: number; out: string; err: string }, code: number): void {
  if (!t.equal(r.code, code, `exit ${code}`)) t.comment(`stdout:\n${r.out}\nstderr:\n${r.err}`);
}

function tree(t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcx-policy-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const POLICY = [
  'let registries = ["pypi.org"]',
  'policy "egress" {',
  '  allow net.connect when resource.host in registries and resource.port == 443',
  '  deny net.connect when resource.ip exists and resource.ip in ["10.0.0.0/8"] because "private ranges"',
  '  ask net.connect when resource.host == "gitlab.com"',
  '}',
  '# what leases (from the approvals service) may grant at most',
  'leases from "approvals" max 1h {',
  '  allow net.connect',
  '}',
  '',
].join('\n');

const req = (host: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  action: 'net.connect',
  resource: { host, port: 443, ...extra },
});

t.test('a passing suite: one line per test, a summary, exit 0', async (t) => {
  const dir = tree(t, {
    'policies/egress.pol': POLICY,
    'policies/egress.test.json': JSON.stringify({
      defaults: { principal: { id: 'agent-7' } },
      tests: [
        { name: 'pypi is open', request: req('PyPI.org'), expect: 'allow', rules: ['egress#1'] },
        { name: 'private ranges', request: req('pypi.org', { ip: '10.1.2.3' }), expect: 'deny', rules: ['egress#2'] },
        { name: 'default deny', request: req('example.org'), expect: 'deny', rules: [] },
        { name: 'malformed ip', request: req('pypi.org', { ip: '010.0.0.1' }), expect: 'deny', error: 'PCX_REQ_' },
        { name: 'ask', request: req('gitlab.com'), expect: 'ask' },
        {
          name: 'ask granted by a lease',
          request: req('gitlab.com'),
          expect: 'allow',
          leases: [{ id: 'L1', rules: 'allow net.connect when resource.host == "gitlab.com"' }],
        },
      ],
    }),
  });
  const r = await run(['test', 'policies'], dir);
  exits(t, r, 0);
  t.match(r.out, /^ok {4}policies\/egress\.test\.json › pypi is open$/m);
  t.match(r.out, /^ok {4}policies\/egress\.test\.json › ask granted by a lease$/m);
  t.match(r.out, /^6 passed, 0 failed \(1 test file, 3 rules\)$/m);
  t.equal(r.err, '');
});

t.test('a failing test prints expected, decision and reasons, and exits 1', async (t) => {
  const dir = tree(t, {
    'egress.pol': POLICY,
    'sub/dir/more.test.json': JSON.stringify({
      defaults: { principal: { id: 'a' } },
      tests: [
        { name: 'wrong effect', request: req('pypi.org', { ip: '10.0.0.9' }), expect: 'allow' },
        { name: 'wrong rules', request: req('pypi.org'), expect: 'allow', rules: ['egress#3'] },
        {
          name: 'unexpected malformed',
          request: { action: 'net.connect', resource: { host: 'pypi.org' } },
          expect: 'deny',
        },
        { name: 'still passes', request: req('pypi.org'), expect: 'allow' },
      ],
    }),
  });
  const r = await run(['test', '.'], dir);
  exits(t, r, 1);
  t.match(
    r.out,
    new RegExp(
      /FAIL {2}sub\/dir\/more\.test\.json › wrong effect\n {6}expected allow, got deny\n {6}decision: deny\n/.source +
        / {6}reason: deny egress#2 at egress\.pol:4:3 because "private ranges"\n/.source,
    ),
  );
  t.match(
    r.out,
    /FAIL {2}sub\/dir\/more\.test\.json › wrong rules\n {6}expected rules \[egress#3\], got \[egress#1\]\n/,
  );
  t.match(
    r.out,
    new RegExp(
      /FAIL .* › unexpected malformed\n {6}unexpected error: the request is malformed\n/.source +
        / {6}decision: deny\n {6}error: PCX_REQ_\w+: .*port/.source,
    ),
  );
  t.match(r.out, /^ok {4}.* › still passes$/m);
  t.match(r.out, /^1 passed, 3 failed/m);
});

t.test('policies that do not compile: diagnostics, no tests run, exit 1', async (t) => {
  const dir = tree(t, {
    'p/bad.pol': 'policy "p" {\n  allow net.connect when resource.hots == "x.example"\n}\n',
    'p/bad.test.json': JSON.stringify({ tests: [{ name: 'x', request: {}, expect: 'deny' }] }),
  });
  const r = await run(['test', 'p'], dir);
  exits(t, r, 1);
  t.match(r.err, /p\/bad\.pol:2:\d+: PCX_\w+: .*hots/);
  t.match(r.err, /do not compile \(1 error\); no tests were run/);
  t.notMatch(r.out, /passed/);
});

t.test('invalid test files are reported by file and test, every problem, exit 1', async (t) => {
  const dir = tree(t, {
    'p/a.pol': POLICY,
    'p/broken.test.json': '{"tests": [',
    'p/typos.test.json': JSON.stringify({
      defaults: { principal: { id: 'a' } },
      tests: [
        { name: 'typo', request: req('pypi.org'), expected: 'allow' },
        { name: 'no request', expect: 'allow' },
        { name: 'bad effect', request: req('pypi.org'), expect: 'permit' },
        { name: 'dup', request: req('pypi.org'), expect: 'allow' },
        { name: 'dup', request: req('pypi.org'), expect: 'allow' },
        { name: 'error needs deny', request: req('pypi.org'), expect: 'allow', error: 'PCX_REQ_' },
      ],
    }),
    'p/shape.test.json': JSON.stringify([{ name: 'x' }]),
  });
  const r = await run(['test', 'p'], dir);
  exits(t, r, 1);
  t.match(r.err, /p\/broken\.test\.json: PCX_TEST_FILE: not valid JSON/);
  t.match(r.err, /p\/typos\.test\.json: PCX_TEST_FILE: test #1 \("typo"\): unknown key "expected"/);
  t.match(r.err, /test #2 \("no request"\): "request" must be an object/);
  t.match(r.err, /test #3 \("bad effect"\): "expect" must be "allow", "deny" or "ask"/);
  t.match(r.err, /test #5 \("dup"\): duplicate test name/);
  t.match(r.err, /test #6 \("error needs deny"\): "error" must be an error code/);
  t.match(r.err, /p\/shape\.test\.json: PCX_TEST_FILE: expected an object with a "tests" array/);
  // The valid test in the file still runs.
  t.match(r.out, /^ok {4}p\/typos\.test\.json › dup$/m);
  t.match(r.out, /1 passed, 0 failed, 8 problems in test files/);
});

t.test('a lease that is not allow-only fails its test', async (t) => {
  const dir = tree(t, {
    'a.pol': POLICY,
    'a.test.json': JSON.stringify({
      defaults: { principal: { id: 'a' } },
      tests: [
        {
          name: 'deny lease',
          request: req('gitlab.com'),
          expect: 'allow',
          leases: [{ id: 'L9', rules: 'deny net.connect' }],
        },
      ],
    }),
  });
  const r = await run(['test', 'a.pol'], dir);
  exits(t, r, 1);
  t.match(r.out, /FAIL {2}a\.test\.json › deny lease\n {6}lease "L9" does not compile:\n {8}PCX_\w+: /);
});

t.test('a single .pol file runs the NAME.test.json beside it only', async (t) => {
  const dir = tree(t, {
    'a.pol': POLICY,
    'a.test.json': JSON.stringify({
      defaults: { principal: { id: 'a' } },
      tests: [{ name: 'mine', request: req('pypi.org'), expect: 'allow' }],
    }),
    'other.test.json': JSON.stringify({ tests: [{ name: 'not mine', request: {}, expect: 'allow' }] }),
  });
  const r = await run(['test', 'a.pol'], dir);
  exits(t, r, 0);
  t.match(r.out, /› mine/);
  t.notMatch(r.out, /not mine/);
});

t.test('--filter selects tests by name; a filter matching nothing fails', async (t) => {
  const dir = tree(t, {
    'a.pol': POLICY,
    'a.test.json': JSON.stringify({
      defaults: { principal: { id: 'a' } },
      tests: [
        { name: 'pypi open', request: req('pypi.org'), expect: 'allow' },
        { name: 'other closed', request: req('example.org'), expect: 'allow' },
      ],
    }),
  });
  const r = await run(['test', '--filter', 'pypi', '.'], dir);
  exits(t, r, 0);
  t.match(r.out, /1 passed, 0 failed, 1 filtered out/);
  const none = await run(['test', '--filter', 'nothing-like-this', '.'], dir);
  exits(t, none, 1);
  t.match(none.err, /no test name contains "nothing-like-this"/);
});

t.test('user mistakes: clear message, no stack, stable exit codes', async (t) => {
  const dir = tree(t, { 'a.pol': POLICY });
  const noTests = await run(['test', '.'], dir);
  exits(t, noTests, 1);
  t.match(noTests.err, /no test files \(\*\.test\.json\) found at \.\n {2}hint: /);
  const missing = await run(['test', 'nope'], dir);
  exits(t, missing, 2);
  t.match(missing.err, /cannot read policy path .*nope: no such file or directory/);
  const noArgs = await run(['test'], dir);
  exits(t, noArgs, 2);
  t.match(noArgs.err, /expected exactly one policy path, got 0\n {2}hint: /);
  const badOpt = await run(['test', '--bogus', '.'], dir);
  exits(t, badOpt, 2);
  for (const r of [noTests, missing, noArgs, badOpt]) t.notMatch(r.err, /\n\s+at /, 'no stack trace');
  const help = await run(['test', '--help'], dir);
  exits(t, help, 0);
  t.match(help.out, /usage: portcullis test/);
});

t.test('the example policy set passes its own tests (in-process)', async (t) => {
  const r = await run(['test', 'examples/policies'], root);
  exits(t, r, 0);
  t.match(r.out, /^(\d+) passed, 0 failed \(5 test files, \d+ rules\)$/m);
});

t.test('the built bin runs the example tests', async (t) => {
  const bin = join(root, 'packages', 'cli', 'bin', 'portcullis.js');
  const dist = join(root, 'packages', 'cli', 'dist', 'policy-test.js');
  // The bin runs dist/ (tsc -b output); npm test builds before running the tests.
  t.ok(existsSync(dist), 'packages/cli is built (run `node scripts/bootstrap.mjs build`)');
  const r = spawnSync(process.execPath, [bin, 'test', 'examples/policies'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (!t.equal(r.status, 0, 'exit 0')) t.comment(`stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  t.match(r.stdout, /passed, 0 failed/);
});
