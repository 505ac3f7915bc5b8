/**
 * `portcullis audit …`: replay is wired here, because it needs the policy compiler and the
 * policy-source reader, which the audit package must not depend on (cli → daemons →
 * policy/audit → protocol). Every other audit subcommand is the audit package's own.
 */
import { parseArgs } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import { PcxError } from '@portcullis/protocol';
import { auditCommand as packageAuditCommand, auditUsage, readRecords, replay } from '@portcullis/audit';
import type { CommandIO } from './io.js';

const REPLAY_SUMMARY = 're-evaluate recorded requests: DIR --policy PATH [--json]; lists decisions that would differ';

export async function auditCommand(argv: string[], io: CommandIO): Promise<number> {
  if (argv[0] === 'replay') {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout.write(`usage: portcullis audit replay — ${REPLAY_SUMMARY}\n`);
      return 0;
    }
    return replayCommand(argv.slice(1), io);
  }
  if (argv[0] === undefined || argv[0] === '--help' || argv[0] === '-h') {
    io.stdout.write(auditUsage({ replay: REPLAY_SUMMARY }));
    return argv[0] === undefined ? 2 : 0;
  }
  return packageAuditCommand(argv, io);
}

async function replayCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { policy: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(io.cwd, p));
  if (positionals[0] === undefined) throw new PcxError('PCX_USAGE', 'missing DIR: the audit log directory to replay');
  if (values.policy === undefined)
    throw new PcxError('PCX_USAGE', 'missing --policy PATH: a policy file or a directory of *.pol files');
  const dir = abs(positionals[0]);
  // Loaded here only: the other audit subcommands (the sink among them) need neither the
  // policy compiler nor the PDP package.
  const { readPolicySources } = await import('@portcullis/pdp');
  const sources = await readPolicySources(abs(values.policy));
  const { compile, renderDiagnostic } = await import('@portcullis/policy');
  const { policy, diagnostics } = compile(sources);
  if (!policy) {
    const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => renderDiagnostic(d));
    throw new PcxError(
      'PCX_POLICY_INVALID',
      `the policy set does not compile:\n  ${errors.slice(0, 10).join('\n  ')}`,
      { hint: `run "portcullis check ${values.policy}"` },
    );
  }
  const result = replay(readRecords(dir), (request) => policy.evaluate(request));
  if (values.json) {
    io.stdout.write(JSON.stringify({ policy_version: policy.version, ...result }) + '\n');
  } else {
    for (const d of result.differences) {
      const notes = [
        d.recorded_error ? `recorded decision was an error: ${d.recorded_error}` : '',
        d.used_lease ? 'recorded decision used a lease (not replayable)' : '',
      ]
        .filter(Boolean)
        .join('; ');
      io.stdout.write(
        `seq ${d.seq} ${d.time} ${d.principal} ${d.action}: ${d.recorded} → ` +
          `${d.replayed}${notes ? ` (${notes})` : ''}\n`,
      );
    }
    io.stdout.write(`${result.differences.length} of ${result.total} decisions would differ under ${policy.version}\n`);
  }
  return result.differences.length === 0 ? 0 : 1;
}
