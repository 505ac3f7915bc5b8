/**
 * `portcullis lease keygen|issue` (for operators and tests). Thin: parse options, call protocol's
 * token functions (generateSigningKey, issueLease, issueIdentityToken), report. Keys and tokens
 * never go to argv, env or logs: keys are read from files, a token is printed once on stdout for
 * the caller to keep; only its jti and expiry go to stderr.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compile, renderDiagnostic } from '@portcullis/policy';
import {
  generateSigningKey,
  issueIdentityToken,
  issueLease,
  MAX_TOKEN_TTL_SEC,
  PcxError,
  parseSigningKey,
  type IssuedToken,
  type SigningKey,
} from '@portcullis/protocol';
import type { CommandIO } from './command.js';
import { readPolicySources } from './sources.js';

const LEASE_USAGE = `usage: portcullis lease keygen [--out DIR] [--issuer NAME]
       portcullis lease issue --key FILE --sub ID --audience AUD --ttl DURATION --grant RULES [options]
       portcullis lease issue --identity --key FILE --sub ID --session S --audience AUD --ttl DURATION

keygen   write an Ed25519 signing key (lease-signing.jwk, mode 0600) and its public JWKS
         (lease-keys.jwks, for the PDP's --lease-keys) into DIR (default: current directory);
         both carry the key id (kid) that lease ceilings (\`leases from "KID" …\`) can name
  --issuer NAME     the issuer this key speaks for (its tokens carry iss NAME; ceilings may name it)
issue    sign a lease (or, with --identity, an identity token) and print it on stdout; its jti
         and expiry go to stderr. The token always carries the key's kid.
  --key FILE        private JWK written by keygen
  --sub ID          the principal id the token is bound to
  --audience AUD    the deployment's audience: the PDP's --lease-audience
  --ttl DURATION    lifetime: 30s, 10m, 2h, 1d (at most 30d; the policy's lease ceiling may allow less)
  --grant RULES     allow rules in the policy language (repeatable), e.g.
                    'allow net.connect when resource.host == "example.com"'
  --project P       bind to context.project P
  --session S       bind to context.session S (with --identity: the session it proves)
  --blueprint B     with --identity: the blueprint it proves
  --policy PATH     check the grant against this policy set's schema (custom actions)
  --identity        issue an identity token (proves --session for --sub) instead of a lease
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
    options: {
      out: { type: 'string', default: '.' },
      issuer: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(LEASE_USAGE);
    return 0;
  }
  // resolve, not join: an absolute --out stays absolute.
  const dir = resolve(io.cwd, values.out);
  const { kid, privateJwk, publicJwks } = await generateSigningKey(
    values.issuer !== undefined ? { issuer: values.issuer } : {},
  );
  const privatePath = resolve(dir, 'lease-signing.jwk');
  const publicPath = resolve(dir, 'lease-keys.jwks');
  // 'wx': never overwrite an existing key; mode 0600 from creation, not chmod afterwards.
  await writeNew(privatePath, `${JSON.stringify(privateJwk, null, 2)}\n`, 0o600);
  await writeNew(publicPath, `${JSON.stringify(publicJwks, null, 2)}\n`, 0o644);
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

/** A lifetime such as 30s, 10m, 2h or 1d, in seconds (1 s to 30 d). */
export function parseDuration(spec: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(spec);
  const sec = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : Number.NaN;
  if (!(sec > 0) || sec > MAX_TOKEN_TTL_SEC) {
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
      audience: { type: 'string' },
      ttl: { type: 'string' },
      grant: { type: 'string', multiple: true },
      project: { type: 'string' },
      session: { type: 'string' },
      blueprint: { type: 'string' },
      policy: { type: 'string' },
      identity: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(LEASE_USAGE);
    return 0;
  }
  const required = values.identity
    ? (['key', 'sub', 'session', 'audience', 'ttl'] as const)
    : (['key', 'sub', 'audience', 'ttl', 'grant'] as const);
  for (const name of required) {
    if (!values[name])
      throw new PcxError('PCX_USAGE', `lease issue${values.identity ? ' --identity' : ''} needs --${name}`, {
        hint: 'see portcullis lease --help',
      });
  }
  if (values.identity && (values.grant || values.policy))
    throw new PcxError('PCX_USAGE', 'an identity token grants nothing: --grant and --policy belong to leases');
  if (!values.identity && values.blueprint !== undefined)
    throw new PcxError('PCX_USAGE', '--blueprint binds identity tokens only (with --identity)');
  const ttlSec = parseDuration(values.ttl!);
  const key = await readSigningKey(resolve(io.cwd, values.key!), io);
  const common = { key, subject: values.sub!, audience: values.audience!, ttlSec };
  let issued: IssuedToken;
  if (values.identity) {
    issued = await issueIdentityToken({
      ...common,
      session: values.session!,
      ...(values.project !== undefined ? { project: values.project } : {}),
      ...(values.blueprint !== undefined ? { blueprint: values.blueprint } : {}),
    });
  } else {
    const rules = values.grant!.join('\n');
    await checkGrant(rules, values.policy === undefined ? undefined : resolve(io.cwd, values.policy));
    issued = await issueLease({
      ...common,
      rules,
      ...(values.project !== undefined ? { project: values.project } : {}),
      ...(values.session !== undefined ? { session: values.session } : {}),
    });
  }
  io.stdout.write(`${issued.token}\n`);
  io.stderr.write(
    `${values.identity ? 'identity token' : 'lease'} ${issued.jti} for ${values.sub} (kid ${key.kid}) expires ` +
      `${new Date(issued.exp * 1000).toISOString()}\n`,
  );
  return 0;
}

async function readSigningKey(path: string, io: CommandIO): Promise<SigningKey> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new PcxError('PCX_LEASE_KEY', `cannot read the signing key ${path}: ${e.code ?? e.message}`, {
      hint: 'create one with portcullis lease keygen',
    });
  });
  const key = parseSigningKey(text, path);
  const mode = (await stat(path)).mode & 0o077;
  if (mode !== 0) io.stderr.write(`warning: ${path} is readable by group or others; chmod 600 it\n`);
  return key;
}

/**
 * Refuse to sign rules that do not compile (the PDP would ignore the lease). Whether they fit a
 * lease ceiling is the PDP's call against the policy it serves, so it is not checked here.
 */
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
  // No issuer: only the rules' diagnostics matter here (the ceiling is applied by the PDP).
  const { diagnostics } = set.policy.compileGrant('grant', rules, { issuers: [], lifetimeSec: 0 });
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
