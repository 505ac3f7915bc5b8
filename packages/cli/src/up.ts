/**
 * `portcullis up`: the PDP, the audit sink and the egress proxy together, for a laptop. Each
 * runs as its own child process of this same `portcullis` bin (the daemons exactly as deployed,
 * argument arrays, no shell), with its output prefixed. Ctrl-C or SIGTERM stops all three: the
 * children run in their own process group, so that the terminal's SIGINT reaches only this
 * process, which then sends each child exactly one SIGTERM, the proxy first, so that nothing is
 * in flight when the sink and the PDP close.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AUDIT_SERVE_OPTIONS } from '@portcullis/audit';
import { EGRESS_OPTIONS } from '@portcullis/egress';
import { PDP_OPTIONS } from '@portcullis/pdp';
import { formatOptions, HELP_OPTION, PcxError, toArgv, type OptionTable } from '@portcullis/protocol';
import type { CommandIO } from './io.js';

type DaemonName = 'pdp' | 'audit' | 'egress';

/**
 * The daemons `up` starts, in start order, each with its own option table. `wired` options are
 * the ones `up` sets itself to connect the daemons (sockets, the log directory, the key); every
 * other option of the table is an option of `up`. `defaults` are where `up` differs from the
 * daemon's own default, for a laptop demo.
 */
const DAEMONS: ReadonlyArray<{
  name: DaemonName;
  command: string[];
  table: OptionTable;
  wired: string[];
  defaults?: Record<string, string>;
}> = [
  {
    name: 'pdp',
    command: ['pdp'],
    table: PDP_OPTIONS,
    wired: ['socket', 'versions-dir'],
    defaults: { policy: 'examples/policies' },
  },
  { name: 'audit', command: ['audit', 'serve'], table: AUDIT_SERVE_OPTIONS, wired: ['dir', 'socket', 'key'] },
  {
    name: 'egress',
    command: ['egress'],
    table: EGRESS_OPTIONS,
    wired: ['pdp', 'audit'],
    defaults: { principal: 'agent-local' },
  },
];

const UP_OWN = {
  dir: {
    type: 'string',
    value: 'DIR',
    default: join(tmpdir(), 'portcullis-up'),
    help: 'sockets, audit log and audit key',
  },
} satisfies OptionTable;

/** One option of `up`: which daemon it goes to, under which of that daemon's names. */
export interface UpOption {
  daemon: DaemonName;
  option: string;
}

/**
 * `up`'s options, composed from the daemons' tables: an option only one daemon has keeps its
 * name (`--lease-keys`); a name two daemons share is namespaced by daemon (`--pdp-metrics`,
 * `--egress-metrics`). A namespaced name that itself clashes is a bug in a table, thrown at load.
 */
export function composeUpOptions(): Map<string, UpOption> {
  const count = new Map<string, number>();
  for (const name of Object.keys(UP_OWN)) count.set(name, 1);
  for (const d of DAEMONS)
    for (const name of Object.keys(d.table)) if (!d.wired.includes(name)) count.set(name, (count.get(name) ?? 0) + 1);
  const routes = new Map<string, UpOption>();
  for (const d of DAEMONS) {
    for (const option of Object.keys(d.table)) {
      if (d.wired.includes(option)) continue;
      const name = count.get(option) === 1 ? option : `${d.name}-${option}`;
      if (routes.has(name) || (name !== option && count.has(name)))
        throw new Error(`portcullis up: option --${name} of ${d.name} clashes with another option`);
      routes.set(name, { daemon: d.name, option });
    }
  }
  return routes;
}

const ROUTES = composeUpOptions();

function upTable(daemon: DaemonName): OptionTable {
  const d = DAEMONS.find((x) => x.name === daemon)!;
  const table: OptionTable = {};
  for (const [name, r] of ROUTES) {
    if (r.daemon !== daemon) continue;
    const spec = d.table[r.option]!;
    const def = d.defaults?.[r.option];
    table[name] = def === undefined ? spec : { ...spec, default: def };
  }
  return table;
}

const USAGE = `usage: portcullis up [options]

Runs the PDP, the audit sink and the egress proxy together, and prints a demo. It takes the
options of the daemons it starts (see their --help); a name two of them share is prefixed with
the daemon's name (e.g. --pdp-metrics, --egress-metrics).

options:
${formatOptions(UP_OWN)}
the PDP (portcullis pdp; its --socket is DIR/pdp.sock, --versions-dir DIR/policy-versions):
${formatOptions(upTable('pdp'))}
the audit sink (portcullis audit serve; --dir DIR/audit-log, --socket DIR/audit.sock, --key DIR/audit.key):
${formatOptions(upTable('audit'))}
the egress proxy (portcullis egress; --pdp and --audit are the sockets above):
${formatOptions(upTable('egress'))}`;

/** Where `up` puts what connects the daemons. */
function upPaths(dir: string) {
  return {
    pdpSock: join(dir, 'pdp.sock'),
    auditSock: join(dir, 'audit.sock'),
    logDir: join(dir, 'audit-log'),
    key: join(dir, 'audit.key'),
    versionsDir: join(dir, 'policy-versions'),
  };
}

/** The options `up` sets on a daemon to connect it to the others. */
function wiredArgs(daemon: DaemonName, p: ReturnType<typeof upPaths>): string[] {
  if (daemon === 'pdp') return ['--socket', p.pdpSock, '--versions-dir', p.versionsDir];
  if (daemon === 'audit') return ['--dir', p.logDir, '--socket', p.auditSock, '--key', p.key];
  return ['--pdp', p.pdpSock, '--audit', p.auditSock];
}

export interface UpPlan {
  dir: string;
  paths: ReturnType<typeof upPaths>;
  /** Each daemon's options as given to `up` (under the daemon's own names), plus `up`'s defaults. */
  given: Record<DaemonName, Record<string, unknown>>;
  /** Each daemon's command line (after the bin). */
  daemons: Record<DaemonName, string[]>;
}

/** What `up` will run, from `up`'s arguments. */
export function planUp(argv: string[], cwd: string): UpPlan {
  // Parsed without defaults, so that a daemon gets only the options given and applies its own.
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, r] of ROUTES) {
    const spec = DAEMONS.find((d) => d.name === r.daemon)!.table[r.option]!;
    config[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  }
  const { values } = parseArgs({
    args: argv,
    options: { ...config, dir: { type: 'string' }, help: HELP_OPTION },
    strict: true,
    allowPositionals: false,
  });
  const v = values as Record<string, unknown>;
  const dir = resolve(cwd, typeof v.dir === 'string' ? v.dir : UP_OWN.dir.default);
  const paths = upPaths(dir);
  const given = {} as UpPlan['given'];
  const daemons = {} as UpPlan['daemons'];
  for (const d of DAEMONS) {
    const mine: Record<string, unknown> = { ...d.defaults };
    for (const [name, r] of ROUTES) if (r.daemon === d.name && v[name] !== undefined) mine[r.option] = v[name];
    given[d.name] = mine;
    daemons[d.name] = [...d.command, ...wiredArgs(d.name, paths), ...toArgv(d.table, mine)];
  }
  return { dir, paths, given, daemons };
}

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'portcullis.js');

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

export async function upCommand(argv: string[], io: CommandIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  const plan = planUp(argv, io.cwd);
  const policy = resolve(io.cwd, String(plan.given.pdp.policy));
  if (!existsSync(policy))
    throw new PcxError('PCX_USAGE', `no policy at ${policy}`, {
      hint: 'pass --policy PATH (a .pol file or a directory of them)',
    });
  mkdirSync(plan.dir, { recursive: true, mode: 0o700 });
  const { pdpSock, auditSock, logDir, key, versionsDir } = plan.paths;
  const listen = String(plan.given.egress.listen ?? EGRESS_OPTIONS.listen.default);
  const mode = String(plan.given.egress.mode ?? EGRESS_OPTIONS.mode.default);

  const children: Child[] = [];
  const run = (name: string, args: string[], ready: RegExp): Promise<Child> =>
    new Promise((resolvePromise, reject) => {
      // In the caller's directory, so that relative paths in the options mean what they meant to `up`.
      const proc = spawn(process.execPath, [bin, ...args], {
        cwd: io.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let seen = '';
      let isReady = false;
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      const child: Child = { name, proc, exited };
      children.push(child);
      const onLine = (chunk: Buffer): void => {
        const text = chunk.toString();
        for (const line of text.split('\n')) if (line !== '') io.stderr.write(`[${name}] ${line}\n`);
        if (!isReady) {
          seen += text;
          if (ready.test(seen)) {
            isReady = true;
            resolvePromise(child);
          }
        }
      };
      proc.stdout!.on('data', onLine);
      proc.stderr!.on('data', onLine);
      void exited.then((code) => {
        if (!isReady)
          reject(new PcxError('PCX_UP_FAILED', `${name} exited (${code}) before it was ready; see its output above`));
      });
    });

  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const c of [...children].reverse()) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
      await c.exited;
    }
  };
  const onSignal = (): void => void stopAll();
  // Should this process die without a signal handler running, take the children with it.
  const onExit = (): void => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  try {
    if (!existsSync(key)) {
      const keygen = await run('keygen', ['audit', 'keygen', '--name', 'portcullis-up', '--out', key], /wrote/);
      await keygen.exited;
      children.splice(children.indexOf(keygen), 1);
    }
    await run('pdp', plan.daemons.pdp, /listening on/);
    await run('audit', plan.daemons.audit, /listening on/);
    await run('egress', plan.daemons.egress, /listening on/);
    const proxy = `http://${listen}`;
    io.stdout.write(`
Portcullis is up.
  PDP           ${pdpSock}   (policy ${policy}; versions kept in ${versionsDir})
  audit sink    ${auditSock}   (log ${logDir})
  egress proxy  ${proxy}${mode === 'report' ? '   *** REPORT-ONLY: would-deny requests are forwarded ***' : ''}

Try it from another terminal:
  export http_proxy=${proxy} https_proxy=${proxy}     # lower case: curl ignores HTTP_PROXY
  curl -sS -o /dev/null -w '%{http_code}\\n' https://registry.npmjs.org/   # allowed: 200
  curl -sS -i http://registry.npmjs.org/         # denied (plain HTTP): 403, the rule and its reason
                                                 # in X-Portcullis-Reason
  curl -sS -i https://example.com/               # denied (not on the allowlist): the CONNECT gets a 403
  node ${bin} audit verify ${logDir} --pubkey ${key}.pub
  node ${bin} audit replay ${logDir} --versions-dir ${versionsDir}   # each decision, replayed exactly

Ctrl-C stops all three.
`);
    // Up until one of them stops (a signal, or a crash: then the others are stopped too).
    await Promise.race(children.map((c) => c.exited));
    await stopAll();
    const codes = await Promise.all(children.map((c) => c.exited));
    io.stderr.write('portcullis up: stopped\n');
    return codes.every((c) => c === 0 || c === null) ? 0 : 1;
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}
