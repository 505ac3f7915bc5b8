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
import { PcxError } from '@portcullis/protocol';
import type { CommandIO } from './io.js';

const USAGE = `usage: portcullis up [options]

Runs the PDP, the audit sink and the egress proxy together, and prints a demo.

options:
  --policy PATH        policy file or directory (default examples/policies)
  --dir DIR            sockets, audit log and audit key (default ${join(tmpdir(), 'portcullis-up')})
  --listen HOST:PORT   the egress proxy (default 127.0.0.1:3128)
  --principal ID       the agent (default agent-local); --role, --project, --blueprint, --session
  --mode enforce|report
  --allow-cidr CIDR    opt a range out of the proxy's floor (repeatable), e.g. for local services
`;

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'portcullis.js');

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

export async function upCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      policy: { type: 'string', default: 'examples/policies' },
      dir: { type: 'string', default: join(tmpdir(), 'portcullis-up') },
      listen: { type: 'string', default: '127.0.0.1:3128' },
      principal: { type: 'string', default: 'agent-local' },
      role: { type: 'string', multiple: true, default: [] },
      project: { type: 'string' },
      blueprint: { type: 'string' },
      session: { type: 'string' },
      mode: { type: 'string', default: 'enforce' },
      'allow-cidr': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const policy = resolve(io.cwd, values.policy);
  if (!existsSync(policy))
    throw new PcxError('PCX_USAGE', `no policy at ${policy}`, {
      hint: 'pass --policy PATH (a .pol file or a directory of them)',
    });
  const dir = resolve(io.cwd, values.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pdpSock = join(dir, 'pdp.sock');
  const auditSock = join(dir, 'audit.sock');
  const logDir = join(dir, 'audit-log');
  const key = join(dir, 'audit.key');

  const children: Child[] = [];
  const run = (name: string, args: string[], ready: RegExp): Promise<Child> =>
    new Promise((resolvePromise, reject) => {
      const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
    const versionsDir = join(dir, 'policy-versions');
    await run('pdp', ['pdp', '--policy', policy, '--socket', pdpSock, '--versions-dir', versionsDir], /listening on/);
    await run('audit', ['audit', 'serve', '--dir', logDir, '--socket', auditSock, '--key', key], /listening on/);
    const egressArgs = [
      'egress',
      '--listen',
      values.listen,
      '--pdp',
      pdpSock,
      '--audit',
      auditSock,
      '--principal',
      values.principal,
      '--mode',
      values.mode,
    ];
    for (const r of values.role) egressArgs.push('--role', r);
    for (const c of values['allow-cidr']) egressArgs.push('--allow-cidr', c);
    for (const k of ['project', 'blueprint', 'session'] as const) if (values[k]) egressArgs.push(`--${k}`, values[k]!);
    await run('egress', egressArgs, /listening on/);
    const proxy = `http://${values.listen}`;
    io.stdout.write(`
Portcullis is up.
  PDP           ${pdpSock}   (policy ${policy}; versions kept in ${versionsDir})
  audit sink    ${auditSock}   (log ${logDir})
  egress proxy  ${proxy}${values.mode === 'report' ? '   *** REPORT-ONLY: would-deny requests are forwarded ***' : ''}

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
