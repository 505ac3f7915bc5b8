/**
 * `portcullis pdp`, the daemon: parse options, start, wait for a signal, drain. Thin.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatOptions, HELP_OPTION, PcxError, type OptionTable } from '@portcullis/protocol';
import { startPdp, streamLog, type PdpHandle } from './daemon.js';
import { parseMetricsAddress } from './metrics.js';
import { defaultVersionsDir } from './versions.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
}

export const DEFAULT_SOCKET = '/run/portcullis/pdp.sock';

/** The daemon's options: its parser, its --help and `portcullis up` all read this one table. */
export const PDP_OPTIONS = {
  policy: {
    type: 'string',
    value: 'PATH',
    help: 'policy file or directory of *.pol files (watched, reloaded on change)',
  },
  socket: {
    type: 'string',
    value: 'PATH',
    default: DEFAULT_SOCKET,
    help: `Unix socket to serve (default ${DEFAULT_SOCKET}); created mode 0660`,
  },
  'lease-keys': {
    type: 'string',
    value: 'FILE',
    help: 'JWKS of the Ed25519 public keys that sign leases and identity tokens (watched, last good kept)',
  },
  'lease-audience': {
    type: 'string',
    value: 'NAME',
    help: 'the audience (aud) leases and identity tokens must name; needed with --lease-keys',
  },
  'lease-clock-skew': {
    type: 'string',
    value: 'SEC',
    default: '60',
    help: "clock skew tolerated on a token's iat, nbf and exp",
  },
  revoked: {
    type: 'string',
    value: 'FILE',
    help: 'revoked token ids, "JTI" or "JTI EXP" per line (watched; kept until the token expired)',
  },
  metrics: {
    type: 'string',
    value: 'HOST:PORT',
    help: 'serve Prometheus metrics at http://HOST:PORT/metrics (loopback only)',
  },
  'metrics-allow-remote': { type: 'boolean', default: false, help: 'allow --metrics on a non-loopback address' },
  'drain-timeout': {
    type: 'string',
    value: 'MS',
    default: '5000',
    help: 'on SIGTERM, wait at most this long for in-flight requests',
  },
  'versions-dir': {
    type: 'string',
    value: 'DIR',
    help:
      'keep every policy version served here, content-addressed, for `audit replay`\n' +
      '(default $XDG_STATE_HOME/portcullis/policy-versions or ~/.local/state/portcullis/policy-versions)',
  },
} satisfies OptionTable;

const PDP_USAGE = `usage: portcullis pdp --policy PATH [options]

Serve policy decisions over a Unix socket (newline-delimited JSON; the protocol is in
packages/pdp/README.md, the architecture in docs/architecture.md).

options:
${formatOptions(PDP_OPTIONS)}`;

export async function pdpCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...PDP_OPTIONS, help: HELP_OPTION },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(PDP_USAGE);
    return 0;
  }
  if (!values.policy)
    throw new PcxError('PCX_USAGE', 'missing --policy PATH', {
      hint: 'e.g. portcullis pdp --policy examples/policies',
    });
  const drainTimeoutMs = Number(values['drain-timeout']);
  if (!Number.isInteger(drainTimeoutMs) || drainTimeoutMs < 0) {
    throw new PcxError('PCX_USAGE', `--drain-timeout ${values['drain-timeout']} is not a whole number of milliseconds`);
  }
  const skew = values['lease-clock-skew'];
  const leaseClockSkewSec = /^\d{1,4}$/.test(skew) ? Number(skew) : Number.NaN;
  if (!(leaseClockSkewSec <= 3600))
    throw new PcxError('PCX_PDP_LEASE_SKEW', `--lease-clock-skew ${skew} is not a whole number of seconds 0-3600`);
  const metrics = values.metrics
    ? parseMetricsAddress(values.metrics, { allowRemote: values['metrics-allow-remote'] })
    : undefined;
  const log = streamLog(io.stderr);

  // Subscribe before starting: a SIGTERM that arrives during startup still drains cleanly.
  let onSignal: (s: NodeJS.Signals) => void = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let pdp: PdpHandle;
  try {
    pdp = await startPdp({
      policyPath: values.policy,
      socketPath: values.socket,
      leaseKeysPath: values['lease-keys'],
      leaseAudience: values['lease-audience'],
      leaseClockSkewSec,
      revokedPath: values.revoked,
      metrics,
      log,
      versionsDir: resolve(io.cwd, values['versions-dir'] ?? defaultVersionsDir()),
    });
  } catch (e) {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    throw e;
  }
  const signal = await signalled;
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGINT', onSignal);
  log('info', `${signal}: draining in-flight requests (at most ${drainTimeoutMs} ms)`);
  await pdp.close({ drainTimeoutMs });
  log('info', 'stopped');
  return 0;
}
