// `portcullis up` takes the options of the daemons it starts, read from their own tables: every
// option of the PDP, the audit sink and the egress proxy (but the few `up` sets itself to connect
// them) is accepted by `up` and reaches that daemon's command line with its value, so an option
// added to a daemon's table needs no edit here or in up.ts.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import t from 'tap';
import { AUDIT_SERVE_OPTIONS } from '@portcullis/audit';
import { EGRESS_OPTIONS } from '@portcullis/egress';
import { PDP_OPTIONS } from '@portcullis/pdp';
import type { OptionTable } from '@portcullis/protocol';
import { composeUpOptions, planUp } from '../src/up.js';
import { runCli } from './run-cli.js';

// Stated here, independently of up.ts: what `up` wires itself, and each daemon's command words.
const DAEMONS = [
  { name: 'pdp', words: 1, table: PDP_OPTIONS as OptionTable, wired: ['socket', 'versions-dir'] },
  { name: 'audit', words: 2, table: AUDIT_SERVE_OPTIONS as OptionTable, wired: ['dir', 'socket', 'key'] },
  { name: 'egress', words: 1, table: EGRESS_OPTIONS as OptionTable, wired: ['pdp', 'audit'] },
] as const;

/** The name `up` accepts for a daemon's option. */
function upName(daemon: string, option: string): string | undefined {
  for (const [name, r] of composeUpOptions()) if (r.daemon === daemon && r.option === option) return name;
  return undefined;
}

t.test('every option of every daemon is accepted by up and reaches that daemon with its value', async (t) => {
  let checked = 0;
  for (const d of DAEMONS) {
    for (const [option, spec] of Object.entries(d.table)) {
      if ((d.wired as readonly string[]).includes(option)) continue;
      const name = upName(d.name, option);
      if (!t.ok(name, `${d.name} --${option} is an option of up`)) continue;
      const sample = spec.multiple ? ['v-one', 'v-two'] : ['v-one'];
      const argv = spec.type === 'boolean' ? [`--${name}`] : sample.flatMap((v) => [`--${name}`, v]);
      const plan = planUp(argv, '/tmp');
      const got = parseArgs({
        args: plan.daemons[d.name].slice(d.words),
        options: d.table,
        strict: true,
      }).values as Record<string, unknown>;
      const want = spec.type === 'boolean' ? true : spec.multiple ? sample : sample[0];
      t.same(got[option], want, `up ${argv.join(' ')} gives ${d.name} --${option}`);
      // Only the daemon that owns the option gets it.
      for (const other of DAEMONS)
        if (other.name !== d.name) t.notOk(plan.daemons[other.name].includes('v-one'), `…and not ${other.name}`);
      checked++;
    }
  }
  t.ok(checked >= 25, `${checked} daemon options checked`);
});

t.test('a name two daemons share is namespaced; the wired options are not up options', async (t) => {
  const routes = composeUpOptions();
  t.same(routes.get('pdp-metrics'), { daemon: 'pdp', option: 'metrics' });
  t.same(routes.get('egress-metrics'), { daemon: 'egress', option: 'metrics' });
  t.notOk(routes.has('metrics'), 'no bare --metrics: it would be ambiguous');
  t.same(routes.get('lease-keys'), { daemon: 'pdp', option: 'lease-keys' });
  for (const wired of ['socket', 'key', 'pdp', 'audit']) t.notOk(routes.has(wired), `--${wired} is set by up`);
  for (const bad of [
    ['--socket', '/x'],
    ['--metrics', '127.0.0.1:0'],
  ])
    t.throws(() => planUp(bad, '/tmp'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }, `up ${bad[0]} is refused`);
});

t.test("up's defaults, and a daemon gets only the options given (it applies its own defaults)", async (t) => {
  const plan = planUp([], '/work');
  const sock = join(tmpdir(), 'portcullis-up', 'pdp.sock');
  const versions = join(tmpdir(), 'portcullis-up', 'policy-versions');
  t.same(plan.daemons.pdp, ['pdp', '--socket', sock, '--versions-dir', versions, '--policy', 'examples/policies']);
  t.same(plan.daemons.egress.slice(-2), ['--principal', 'agent-local']);
  t.notOk(plan.daemons.egress.includes('--listen'), "the proxy's own default listen address applies");
  const rel = planUp(['--dir', 'state'], '/work');
  t.equal(rel.dir, '/work/state', '--dir is relative to the working directory');
  t.same(rel.daemons.audit.slice(0, 4), ['audit', 'serve', '--dir', '/work/state/audit-log']);
});

t.test('up --help lists every option up takes', async (t) => {
  const r = await runCli(['up', '--help']);
  t.equal(r.code, 0);
  for (const name of [...composeUpOptions().keys(), 'dir']) t.match(r.out, new RegExp(`\\n  --${name}\\b`), name);
});
