/**
 * `portcullis audit …`: replay is wired here, because it needs the policy compiler and the
 * policy-source reader, which the audit package must not depend on (cli → daemons →
 * policy/audit → protocol). Every other audit subcommand is the audit package's own.
 */
import { parseArgs } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import { PcxError } from '@portcullis/protocol';
import {
  auditCommand as packageAuditCommand,
  auditUsage,
  readRecords,
  replay,
  type ReplayDifference,
} from '@portcullis/audit';
import type { CompiledPolicy, SourceFile } from '@portcullis/policy';
import type { CommandIO } from './io.js';

const REPLAY_SUMMARY =
  're-evaluate recorded requests: DIR [--versions-dir DIR | --policy PATH] [--json]; lists decisions that differ';
const REPLAY_USAGE = `usage: portcullis audit replay — ${REPLAY_SUMMARY}

Re-evaluates the request in each record of the audit log at DIR and lists the records whose
replayed decision differs (exit 1 if any, 0 if none).

  (default)            each record against the policy version that decided it (its policy_version),
                       read from the directory the PDP kept its versions in: decision and reasons
                       must both match. Records no policy decided (the PDP unreachable, refusals)
                       are counted, not replayed.
  --versions-dir DIR   where the PDP kept its versions (default, as the PDP's: $XDG_STATE_HOME/
                       portcullis/policy-versions, else ~/.local/state/portcullis/policy-versions)
  --policy PATH        instead, every record against this candidate policy set: which decisions
                       would change (decisions only)
  --json               one JSON object: the result, with every difference
`;

export async function auditCommand(argv: string[], io: CommandIO): Promise<number> {
  if (argv[0] === 'replay') {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout.write(REPLAY_USAGE);
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
    options: {
      policy: { type: 'string' },
      'versions-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(io.cwd, p));
  if (positionals[0] === undefined) throw new PcxError('PCX_USAGE', 'missing DIR: the audit log directory to replay');
  if (values.policy !== undefined && values['versions-dir'] !== undefined)
    throw new PcxError('PCX_USAGE', '--policy and --versions-dir exclude each other', {
      hint: 'replay against the recorded versions (--versions-dir) or against one candidate set (--policy)',
    });
  const dir = abs(positionals[0]);
  // Loaded here only: the other audit subcommands (the sink among them) need neither the
  // policy compiler nor the PDP package.
  const { defaultVersionsDir, readPolicySources, loadVersion } = await import('@portcullis/pdp');
  const { compile, renderDiagnostic } = await import('@portcullis/policy');
  const compiled = (sources: SourceFile[], what: string, hint: string): CompiledPolicy => {
    const { policy, diagnostics } = compile(sources);
    if (policy) return policy;
    const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => renderDiagnostic(d));
    throw new PcxError('PCX_POLICY_INVALID', `${what} does not compile:\n  ${errors.slice(0, 10).join('\n  ')}`, {
      hint,
    });
  };

  if (values.policy !== undefined) {
    const policy = compiled(
      await readPolicySources(abs(values.policy)),
      'the policy set',
      `run "portcullis check ${values.policy}"`,
    );
    const result = replay(readRecords(dir), (request) => policy.evaluate(request));
    if (values.json) io.stdout.write(JSON.stringify({ policy_version: policy.version, ...result }) + '\n');
    else {
      printDifferences(result.differences, io);
      io.stdout.write(
        `${result.differences.length} of ${result.total} decisions would differ under ${policy.version}\n`,
      );
    }
    return result.differences.length === 0 ? 0 : 1;
  }

  // Against the recorded versions: a first pass finds which versions the log names (records are
  // read twice rather than held in memory), each is loaded (checked to hash to its name) and
  // compiled once.
  const versionsDir = abs(values['versions-dir'] ?? defaultVersionsDir());
  const policies = new Map<string, CompiledPolicy>();
  for (const r of readRecords(dir)) {
    const v = r.policy_version;
    if (v === undefined || policies.has(v)) continue;
    const policy = compiled(
      await loadVersion(versionsDir, v),
      `the kept policy version ${v}`,
      'it compiled when the PDP served it: this portcullis reads the language differently',
    );
    policies.set(v, policy);
  }
  const result = replay(
    readRecords(dir),
    (request, record) =>
      record.policy_version === undefined ? undefined : policies.get(record.policy_version)!.evaluate(request),
    { reasons: true },
  );
  if (values.json) io.stdout.write(JSON.stringify({ versions: [...policies.keys()], ...result }) + '\n');
  else {
    printDifferences(result.differences, io);
    io.stdout.write(
      `${result.differences.length} of ${result.total} decisions differ from what the policy versions that made ` +
        `them decide (${policies.size} version${policies.size === 1 ? '' : 's'}` +
        `${result.unreplayed ? `; ${result.unreplayed} records were decided by no policy and not replayed` : ''})\n`,
    );
  }
  return result.differences.length === 0 ? 0 : 1;
}

function printDifferences(differences: ReplayDifference[], io: CommandIO): void {
  for (const d of differences) {
    const notes = [
      d.recorded_error ? `recorded decision was an error: ${d.recorded_error}` : '',
      d.used_lease ? 'recorded decision used a lease (not replayable)' : '',
      d.reasons_differ ? 'same decision, different reasons' : '',
    ]
      .filter(Boolean)
      .join('; ');
    io.stdout.write(
      `seq ${d.seq} ${d.time} ${d.principal} ${d.action}: ${d.recorded} → ${d.replayed}${notes ? ` (${notes})` : ''}\n`,
    );
  }
}
