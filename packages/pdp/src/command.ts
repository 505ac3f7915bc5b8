/**
 * `portcullis pdp` (the daemon) and `portcullis lease keygen|issue` (for operators and tests).
 * Thin: parse options, call the daemon or jose, report. Keys and tokens never go to argv, env
 * or logs: keys are read from files, a token is printed once on stdout for the caller to keep.
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { compile, renderDiagnostic } from '@portcullis/policy';
import { PcxError } from '@portcullis/protocol';
import { startPdp, streamLog, type PdpHandle } from './daemon.js';
import { LEASE_TYP, PROJECT_CLAIM, RULES_CLAIM, SESSION_CLAIM } from './leases.js';
import { parseMetricsAddress } from './metrics.js';
import { readPolicySources } from './sources.js';
import { defaultVersionsDir } from './versions.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
}

export const DEFAULT_SOCKET = '/run/portcullis/pdp.sock';

const PDP_USAGE = `usage: portcullis pdp --policy PATH [options]

Serve policy decisions over a Unix socket (newline-delimited JSON; see DESIGN.md).

options:
  --policy PATH            policy file or directory of *.pol files (watched; reloaded on change)
  --socket PATH            Unix socket to serve (default ${DEFAULT_SOCKET}); created mode 0660
  --lease-keys FILE        JWKS file of the Ed25519 public keys that sign leases (watched)
  --revoked FILE           revoked lease ids, one jti per line (watched)
  --metrics HOST:PORT      serve Prometheus metrics at http://HOST:PORT/metrics (loopback only)
  --metrics-allow-remote   allow --metrics on a non-loopback address
  --drain-timeout MS       on SIGTERM, wait at most this long for in-flight requests (default 5000)
  --versions-dir DIR       keep every policy version served here, content-addressed, for "audit replay"
                           (default ${defaultVersionsDir()})
`;

export async function pdpCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      policy: { type: 'string' },
      socket: { type: 'string', default: DEFAULT_SOCKET },
      'lease-keys': { type: 'string' },
      revoked: { type: 'string' },
      metrics: { type: 'string' },
      'metrics-allow-remote': { type: 'boolean', default: false },
      'drain-timeout': { type: 'string', default: '5000' },
      'versions-dir': { type: 'string' },
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

const LEASE_USAGE = `usage: portcullis lease keygen [--out DIR]
       portcullis lease issue --key FILE --sub ID --ttl DURATION --grant RULES [options]

keygen   write an Ed25519 signing key (lease-signing.jwk, mode 0600) and its public JWKS
         (lease-keys.jwks, for the PDP's --lease-keys) into DIR (default: current directory)
issue    sign a lease and print the token on stdout (its jti and expiry go to stderr)
  --key FILE        private JWK written by keygen
  --sub ID          the principal id the lease is bound to
  --ttl DURATION    lifetime: 30s, 10m, 2h, 1d (at most 30d)
  --grant RULES     allow rules in the policy language (repeatable), e.g.
                    'allow net.connect when resource.host == "example.com"'
  --project P       bind to context.project P
  --session S       bind to context.session S
  --policy PATH     check the grant against this policy set's schema (custom actions)
`;

export async function leaseCommand(argv: string[], io: CommandIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'keygen') return keygen(rest, io);
  if (sub === 'issue') return issue(rest, io);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(LEASE_USAGE);
    return sub === undefined ? 2 : 0;
  }
  throw new PcxError('PCX_USAGE', `unknown lease command "${sub}"; expected keygen or issue`);
}

async function keygen(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string', default: '.' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(LEASE_USAGE);
    return 0;
  }
  const dir = join(io.cwd, values.out);
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' };
  const privatePath = join(dir, 'lease-signing.jwk');
  const publicPath = join(dir, 'lease-keys.jwks');
  // 'wx': never overwrite an existing key; mode 0600 from creation, not chmod afterwards.
  await writeNew(privatePath, JSON.stringify(priv, null, 2) + '\n', 0o600);
  await writeNew(
    publicPath,
    JSON.stringify({ keys: [{ ...pub, kid, alg: 'EdDSA', use: 'sig' }] }, null, 2) + '\n',
    0o644,
  );
  io.stderr.write(
    `wrote ${privatePath} (private signing key, keep it secret) and ${publicPath} (for portcullis pdp ` +
      `--lease-keys); kid ${kid}\n`,
  );
  return 0;
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  const fh = await open(path, 'wx', mode).catch((e: NodeJS.ErrnoException) => {
    throw new PcxError(
      'PCX_LEASE_KEY_EXISTS',
      `cannot create ${path}: ` +
        `${e.code === 'EEXIST' ? 'it already exists (refusing to overwrite a key)' : (e.code ?? e.message)}`,
    );
  });
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

const MAX_TTL_SEC = 30 * 24 * 3600;

export function parseDuration(spec: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(spec);
  const sec = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!(sec > 0) || sec > MAX_TTL_SEC) {
    throw new PcxError('PCX_USAGE', `--ttl ${spec} is not a duration between 1s and 30d`, {
      hint: 'e.g. --ttl 30s, 10m, 2h, 1d',
    });
  }
  return sec;
}

async function issue(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      key: { type: 'string' },
      sub: { type: 'string' },
      ttl: { type: 'string' },
      grant: { type: 'string', multiple: true },
      project: { type: 'string' },
      session: { type: 'string' },
      policy: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(LEASE_USAGE);
    return 0;
  }
  for (const required of ['key', 'sub', 'ttl', 'grant'] as const) {
    if (!values[required])
      throw new PcxError('PCX_USAGE', `lease issue needs --${required}`, { hint: 'see portcullis lease --help' });
  }
  const ttl = parseDuration(values.ttl!);
  const rules = values.grant!.join('\n');
  await checkGrant(rules, values.policy);
  const keyPath = join(io.cwd, values.key!);
  const jwk = await readPrivateKey(keyPath, io);
  const key = await importJWK(jwk, 'EdDSA');
  const jti = randomUUID();
  const claims: Record<string, string> = { [RULES_CLAIM]: rules };
  if (values.project !== undefined) claims[PROJECT_CLAIM] = values.project;
  if (values.session !== undefined) claims[SESSION_CLAIM] = values.session;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: LEASE_TYP, ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) })
    .setSubject(values.sub!)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(key);
  io.stdout.write(token + '\n');
  io.stderr.write(`lease ${jti} for ${values.sub} expires ${new Date((now + ttl) * 1000).toISOString()}\n`);
  return 0;
}

async function readPrivateKey(path: string, io: CommandIO): Promise<JWK> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new PcxError('PCX_LEASE_KEY', `cannot read the signing key ${path}: ${e.code ?? e.message}`, {
      hint: 'create one with portcullis lease keygen',
    });
  });
  let jwk: JWK;
  try {
    jwk = JSON.parse(text);
  } catch {
    // Never echo the content: it is a private key.
    throw new PcxError('PCX_LEASE_KEY', `${path} is not a JSON Web Key`);
  }
  if (jwk?.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
    throw new PcxError(
      'PCX_LEASE_KEY',
      `${path} is not an Ed25519 private key (a JWK with kty "OKP", crv "Ed25519" and "d")`,
      {
        hint: 'pass the lease-signing.jwk written by portcullis lease keygen, not the public .jwks',
      },
    );
  }
  const mode = (await stat(path)).mode & 0o077;
  if (mode !== 0) io.stderr.write(`warning: ${path} is readable by group or others; chmod 600 it\n`);
  return jwk;
}

/** Refuse to sign rules that would be ignored by the PDP: check them like the PDP compiles them. */
async function checkGrant(rules: string, policyPath: string | undefined): Promise<void> {
  const sources = policyPath ? await readPolicySources(policyPath) : [];
  const set = compile(sources);
  if (!set.policy) {
    const texts = new Map(sources.map((s) => [s.path, s.text]));
    throw new PcxError(
      'PCX_LEASE_GRANT',
      `the policy set ${policyPath} does not ` +
        `compile:\n${set.diagnostics.map((d) => renderDiagnostic(d, texts.get(d.file))).join('\n')}`,
    );
  }
  const { diagnostics } = set.policy.compileGrant('grant', rules);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    throw new PcxError(
      'PCX_LEASE_GRANT',
      `the grant does not compile, so the PDP would ignore the ` +
        `lease:\n${errors.map((d) => renderDiagnostic(d, rules)).join('\n')}`,
      {
        hint: 'a grant is one or more allow rules, e.g. allow net.connect when resource.host == "example.com"',
      },
    );
  }
}
