/**
 * `portcullis pdp`, the daemon: parse options, start, wait for a signal, drain. Thin.
 */
import { parseArgs } from 'node:util';
import { PcxError } from '@portcullis/protocol';
import { startPdp, streamLog, type PdpHandle } from './daemon.js';
import { parseMetricsAddress } from './metrics.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
}

export const DEFAULT_SOCKET = '/run/portcullis/pdp.sock';

const PDP_USAGE = `usage: portcullis pdp --policy PATH [options]

Serve policy decisions over a Unix socket (newline-delimited JSON; see packages/pdp/README.md).

options:
  --policy PATH            policy file or directory of *.pol files (watched; reloaded on change)
  --socket PATH            Unix socket to serve (default ${DEFAULT_SOCKET}); created mode 0660
  --lease-keys FILE        JWKS file of the Ed25519 public keys that sign leases and identity
                           tokens (watched; reloaded on change, the last good keys kept)
  --lease-audience NAME    the audience (aud) leases and identity tokens must name; needed with
                           --lease-keys (the same name \`portcullis lease issue --audience\` writes)
  --lease-clock-skew SEC   clock skew tolerated on a token's iat, nbf and exp (default 60)
  --revoked FILE           revoked token ids, "JTI" or "JTI EXP" per line (watched; an entry stays
                           revoked until its token has expired, even once the file drops it)
  --metrics HOST:PORT      serve Prometheus metrics at http://HOST:PORT/metrics (loopback only)
  --metrics-allow-remote   allow --metrics on a non-loopback address
  --drain-timeout MS       on SIGTERM, wait at most this long for in-flight requests (default 5000)
`;

export async function pdpCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      policy: { type: 'string' },
      socket: { type: 'string', default: DEFAULT_SOCKET },
      'lease-keys': { type: 'string' },
      'lease-audience': { type: 'string' },
      'lease-clock-skew': { type: 'string', default: '60' },
      revoked: { type: 'string' },
      metrics: { type: 'string' },
      'metrics-allow-remote': { type: 'boolean', default: false },
      'drain-timeout': { type: 'string', default: '5000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
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
