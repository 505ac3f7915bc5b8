// `portcullis lease keygen|issue` and `portcullis pdp` option handling, in-process.
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { leaseCommand, pdpCommand } from '../src/index.js';
import { tempDir } from './helpers.js';

function io(cwd: string) {
  const out = { stdout: '', stderr: '' };
  const sink = (k: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk, _enc, cb) {
        out[k] += chunk.toString();
        cb();
      },
    });
  return { io: { stdout: sink('stdout'), stderr: sink('stderr'), cwd }, out };
}

t.test('keygen writes a 0600 private key and a public-only JWKS, and never overwrites a key', async (t) => {
  const dir = tempDir(t);
  const { io: cio, out } = io(dir);
  t.equal(await leaseCommand(['keygen', '--out', '.'], cio), 0);
  const priv = JSON.parse(readFileSync(join(dir, 'lease-signing.jwk'), 'utf8'));
  const pub = JSON.parse(readFileSync(join(dir, 'lease-keys.jwks'), 'utf8'));
  t.equal(statSync(join(dir, 'lease-signing.jwk')).mode & 0o777, 0o600);
  t.match(priv, { kty: 'OKP', crv: 'Ed25519', d: String, kid: String });
  t.equal(pub.keys.length, 1);
  t.notOk('d' in pub.keys[0], 'no private material in the JWKS');
  t.equal(pub.keys[0].kid, priv.kid);
  t.notOk(out.stderr.includes(priv.d), 'the private key is not printed');
  const before = readFileSync(join(dir, 'lease-signing.jwk'), 'utf8');
  await t.rejects(leaseCommand(['keygen', '--out', '.'], cio), {
    code: 'PCX_LEASE_KEY_EXISTS',
    message: /already exists/,
  });
  t.equal(readFileSync(join(dir, 'lease-signing.jwk'), 'utf8'), before);
});

t.test(
  'issue signs a lease the PDP accepts: EdDSA, typ pcx-lease+jwt, sub, jti, exp, pcx_rules, bindings',
  async (t) => {
    const dir = tempDir(t);
    await leaseCommand(['keygen'], io(dir).io);
    const { io: cio, out } = io(dir);
    const rules = 'allow net.connect when resource.host == "example.com"';
    t.equal(
      await leaseCommand(
        [
          'issue',
          '--key',
          'lease-signing.jwk',
          '--sub',
          'agent-7',
          '--audience',
          'pcx-test',
          '--project',
          'alpha',
          '--session',
          's-1',
          '--ttl',
          '10m',
          '--grant',
          rules,
          '--grant',
          'allow fs.read',
        ],
        cio,
      ),
      0,
    );
    const token = out.stdout.trim();
    const jwks = createLocalJWKSet(JSON.parse(readFileSync(join(dir, 'lease-keys.jwks'), 'utf8')));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { typ: 'pcx-lease+jwt', algorithms: ['EdDSA'] });
    t.same(protectedHeader, {
      alg: 'EdDSA',
      typ: 'pcx-lease+jwt',
      kid: JSON.parse(readFileSync(join(dir, 'lease-keys.jwks'), 'utf8')).keys[0].kid,
    });
    t.match(payload, {
      sub: 'agent-7',
      aud: 'pcx-test',
      pcx_project: 'alpha',
      pcx_session: 's-1',
      pcx_rules: `${rules}\nallow fs.read`,
      jti: String,
    });
    const now = Date.now() / 1000;
    t.ok(Math.abs(payload.iat! - now) < 5, 'iat is now');
    t.equal(payload.exp! - payload.iat!, 600, 'exp is iat + ttl');
    t.match(out.stderr, new RegExp(`lease ${payload.jti} for agent-7 \\(kid [^)]+\\) expires`));
  },
);

t.test('issue refuses bad input before signing, with stable codes', async (t) => {
  const dir = tempDir(t);
  await leaseCommand(['keygen'], io(dir).io);
  const base = ['issue', '--key', 'lease-signing.jwk', '--sub', 'a', '--audience', 'pcx', '--ttl', '1m'];
  const rest = ['--audience', 'pcx'];
  const cases: Array<[string[], string, RegExp]> = [
    [[...base, '--grant', 'deny net.connect'], 'PCX_LEASE_GRANT', /only `allow`|allow/],
    [[...base, '--grant', 'allow net.connect when'], 'PCX_LEASE_GRANT', /does not compile/],
    [[...base, '--grant', 'allow deploy.app'], 'PCX_LEASE_GRANT', /does not compile/],
    [
      ['issue', '--key', 'lease-signing.jwk', '--sub', 'a', ...rest, '--ttl', '10x', '--grant', 'allow fs.read'],
      'PCX_USAGE',
      /--ttl 10x/,
    ],
    [
      ['issue', '--key', 'lease-signing.jwk', '--sub', 'a', ...rest, '--ttl', '31d', '--grant', 'allow fs.read'],
      'PCX_USAGE',
      /30d/,
    ],
    [['issue', '--key', 'lease-signing.jwk', ...rest, '--ttl', '1m', '--grant', 'allow fs.read'], 'PCX_USAGE', /--sub/],
    [
      ['issue', '--key', 'lease-signing.jwk', '--sub', 'a', '--ttl', '1m', '--grant', 'allow fs.read'],
      'PCX_USAGE',
      /needs --audience/,
    ],
    [[...base, '--identity'], 'PCX_USAGE', /needs --session/],
    [[...base, '--blueprint', 'b', '--grant', 'allow fs.read'], 'PCX_USAGE', /--blueprint binds identity/],
    [[...base, '--identity', '--session', 's', '--grant', 'allow fs.read'], 'PCX_USAGE', /grants nothing/],
    [
      ['issue', '--key', 'lease-keys.jwks', '--sub', 'a', ...rest, '--ttl', '1m', '--grant', 'allow fs.read'],
      'PCX_LEASE_KEY',
      /not an Ed25519 private key/,
    ],
    [
      ['issue', '--key', 'missing.jwk', '--sub', 'a', ...rest, '--ttl', '1m', '--grant', 'allow fs.read'],
      'PCX_LEASE_KEY',
      /ENOENT/,
    ],
    [['frobnicate'], 'PCX_USAGE', /keygen or issue/],
  ];
  for (const [argv, code, message] of cases) {
    const { io: cio, out } = io(dir);
    await t.rejects(leaseCommand(argv, cio), { code, message }, argv.join(' '));
    t.equal(out.stdout, '', 'nothing printed on stdout');
  }
});

t.test('issue --policy checks a grant against that set (custom actions)', async (t) => {
  const dir = tempDir(t);
  await leaseCommand(['keygen'], io(dir).io);
  writeFileSync(
    join(dir, 'app.pol'),
    'action deploy.app { env: string }\npolicy "p" {\n  deny deploy.app when resource.env == "prod"\n}\n',
  );
  const { io: cio, out } = io(dir);
  const argv = [
    'issue',
    '--key',
    'lease-signing.jwk',
    '--sub',
    'a',
    '--audience',
    'pcx',
    '--ttl',
    '1m',
    '--grant',
    'allow deploy.app when resource.env == "dev"',
  ];
  t.equal(await leaseCommand([...argv, '--policy', join(dir, 'app.pol')], cio), 0);
  t.match(out.stdout, /^ey/);
});

t.test(
  'issue --identity signs an identity token: typ pcx-identity+jwt, sub, pcx_session, project, blueprint',
  async (t) => {
    const dir = tempDir(t);
    await leaseCommand(['keygen', '--issuer', 'control-plane'], io(dir).io);
    const { io: cio, out } = io(dir);
    const argv = ['issue', '--identity', '--key', 'lease-signing.jwk', '--sub', 'agent-7', '--audience', 'pcx-test'];
    const extra = ['--session', 's-42', '--project', 'alpha', '--blueprint', 'bp', '--ttl', '1h'];
    t.equal(await leaseCommand([...argv, ...extra], cio), 0);
    const jwks = createLocalJWKSet(JSON.parse(readFileSync(join(dir, 'lease-keys.jwks'), 'utf8')));
    const { payload } = await jwtVerify(out.stdout.trim(), jwks, { typ: 'pcx-identity+jwt', algorithms: ['EdDSA'] });
    t.match(payload, {
      sub: 'agent-7',
      aud: 'pcx-test',
      iss: 'control-plane',
      pcx_session: 's-42',
      pcx_project: 'alpha',
      pcx_blueprint: 'bp',
    });
    t.notOk('pcx_rules' in payload, 'an identity token grants nothing');
    t.match(out.stderr, /^identity token \S+ for agent-7 \(kid /);
  },
);

t.test('keygen --out takes an absolute path as it is', async (t) => {
  const dir = tempDir(t);
  const elsewhere = tempDir(t);
  t.equal(await leaseCommand(['keygen', '--out', elsewhere], io(dir).io), 0);
  t.ok(statSync(join(elsewhere, 'lease-signing.jwk')).isFile(), 'written under the absolute path');
});

t.test('pdp: usage errors are PcxErrors, --help prints the options', async (t) => {
  const dir = tempDir(t);
  await t.rejects(pdpCommand([], io(dir).io), { code: 'PCX_USAGE', message: /--policy/ });
  await t.rejects(pdpCommand(['--policy', 'p', '--metrics', '0.0.0.0:9464'], io(dir).io), {
    code: 'PCX_PDP_METRICS_NOT_LOOPBACK',
  });
  await t.rejects(pdpCommand(['--policy', 'p', '--drain-timeout', 'soon'], io(dir).io), { code: 'PCX_USAGE' });
  await t.rejects(pdpCommand(['--policy', 'p', '--lease-clock-skew', '1.5'], io(dir).io), {
    code: 'PCX_PDP_LEASE_SKEW',
  });
  const { io: cio, out } = io(dir);
  t.equal(await pdpCommand(['--help'], cio), 0);
  t.match(out.stdout, /--lease-keys FILE/);
});
