// The dispatcher: unknown commands get a suggestion, option mistakes a hint, and no user mistake
// ever prints a stack trace.
import t from 'tap';
import { runCli } from './run-cli.js';

const run = (argv: string[]) => runCli(argv);

t.test('no command prints the usage and exits 2; --help exits 0', async (t) => {
  const none = await run([]);
  t.equal(none.code, 2);
  t.match(none.out, /usage: portcullis <command>/);
  for (const c of ['check', 'pdp', 'audit', 'egress', 'up'])
    t.match(none.out, new RegExp(`\\n  ${c} `), `usage lists ${c}`);
  t.equal((await run(['--help'])).code, 0);
});

t.test('an unknown command suggests the nearest one', async (t) => {
  const r = await run(['chek', 'x']);
  t.equal(r.code, 2);
  t.match(r.err, /unknown command "chek" \(did you mean "check"\?\)/);
  const far = await run(['frobnicate']);
  t.notMatch(far.err, /did you mean/);
});

t.test('a command or subcommand named like an Object.prototype member is unknown, not an internal error', async (t) => {
  for (const argv of [['constructor'], ['__proto__'], ['audit', 'constructor'], ['vault', 'toString']]) {
    const r = await run(argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.err, new RegExp(`unknown (\\w+ )?(sub)?command "${argv.at(-1)}"`), argv.join(' '));
    t.notMatch(r.err, /internal error|\n\s+at /, 'no stack trace');
  }
});

t.test('an unknown option names the option and how to list the right ones, without a stack', async (t) => {
  const r = await run(['pdp', '--polcy', 'x']);
  t.equal(r.code, 2);
  t.match(r.err, /Unknown option '--polcy'/);
  t.match(r.err, /portcullis pdp --help/);
  t.notMatch(r.err, /\n\s+at /, 'no stack trace');
});

t.test('a user mistake inside a command is a PcxError: message, exit 2, no stack', async (t) => {
  const r = await run(['check', '/nonexistent/policies']);
  t.equal(r.code, 2);
  t.match(r.err, /cannot read policy path \/nonexistent\/policies: no such file or directory/);
  t.notMatch(r.err, /\n\s+at /);
});

t.test('each audit subcommand answers --help with its options', async (t) => {
  for (const sub of ['serve', 'keygen', 'verify', 'prove', 'query', 'replay']) {
    const r = await run(['audit', sub, '--help']);
    t.equal(r.code, 0, `audit ${sub} --help exits 0`);
    t.match(r.out, new RegExp(`^usage: portcullis audit ${sub} — .*--`), `audit ${sub} --help names its options`);
  }
});
