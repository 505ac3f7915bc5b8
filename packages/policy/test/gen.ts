/**
 * fast-check generators of random policy sets (as source text) and requests biased to hit them.
 * They exercise what the oracle lowers on its own: constants (list constants spliced, a constant
 * naming another, use before declaration), action wildcards over built-in and custom actions,
 * roles with `extends` merged from several bodies, declared principal/context attributes, and
 * host / path / IP values that need normalisation (case, trailing dots, full-width dots, IDNs,
 * IP-literal hosts, IPv4-mapped IPv6, zone ids, `.`/`..`/`//`, percent-escapes in net.http paths).
 */
import fc from 'fast-check';

export const HOSTS = [
  'github.com',
  'api.github.com',
  'a.b.github.com',
  'example.org',
  'x.example.org',
  'localhost',
  'API.GitHub.com.',
  'bücher.de',
  'api。github。com',
  'BÜCHER.DE',
  'xn--bcher-kva.de',
  '10.0.0.1',
  '::ffff:10.0.0.1',
  '2001:DB8:0:0::1',
  'fe80::1%eth0',
  'a_b.internal',
  'ＡＰＩ.github.com',
  '::FFFF:10.0.0.1',
  '10.0.0.1.',
  'xn--BCHER-KVA.de.',
];
const HOST_GLOBS = [
  '**.github.com',
  '*.github.com',
  'github.com',
  '**',
  '*.example.org',
  '**.org',
  'a.**.com',
  '*.*.com',
  'api.github.com',
  '**.b.**.com',
  'xn--bcher-kva.de',
  'bücher.*',
  '**.GitHub.COM.',
  '**.internal',
  '*.*',
  '*',
  '10.0.0.*',
];
export const PATHS = [
  '/',
  '/workspace',
  '/workspace/a',
  '/workspace/a/b.txt',
  '/etc/passwd',
  '/etc',
  '/tmp/x',
  '/workspace/./a/../c.txt',
  '/workspace/.hidden',
  '//workspace//a/',
  '/workspace/a/../../etc/passwd',
  '/a\\b',
  '/srv/app/x',
  '/workspace/%61',
  '/%2e%2e/etc',
  '/w%C3%BC/x',
  '/%ff',
  '/%252e%252e/x',
  '/workspace/%2E%2E/etc',
];
const PATH_GLOBS = [
  '/workspace/**',
  '/workspace/*',
  '/etc/*',
  '/**',
  '/*/a',
  '/workspace/*.txt',
  '/tmp/**',
  '/etc/passwd',
  '/',
  '/workspace/a/**/b.txt',
  '/w*/**',
];
export const IPS = [
  '10.1.2.3',
  '192.168.1.1',
  '8.8.8.8',
  '::1',
  '2001:db8::5',
  '::ffff:10.0.0.1',
  '172.16.0.9',
  '2001:db8::5%eth0',
  '2001:0DB8:0000::5',
  '::',
  '0.0.0.0',
  '100.64.0.1',
  '::ffff:100.64.3.4',
  '::ffff:192.168.1.1%eth0',
  '::FFFF:A00:1',
];
const CIDRS = [
  '10.0.0.0/8',
  '192.168.0.0/16',
  '0.0.0.0/0',
  '2001:db8::/32',
  '::1',
  '8.8.8.8',
  '172.16.0.0/12',
  '::/0',
  '::ffff:10.0.0.0/104',
  '::ffff:0:0/96',
  '2001:DB8:0::5',
];
const ROLES = ['r0', 'r1', 'r2', 'r3'];
const str = (s: string) => JSON.stringify(s);
const list = (xs: string[]) => `[${xs.join(', ')}]`;

const ACTION_ATTRS: Record<string, string[]> = {
  'net.connect': ['host', 'port', 'ip'],
  'net.http': ['host', 'port', 'ip', 'path', 'method'],
  'fs.read': ['path'],
  'fs.write': ['path'],
  'comms.send': ['channel', 'secrets'],
  'tool.call': ['tool', 'network'],
  'cmd.exec': ['command', 'args'],
  'deploy.app': ['env', 'replicas', 'target'],
  'deploy.db': ['env', 'constructor'],
  'deployer.run': ['env', 'dir'],
};
export const ACTIONS = Object.keys(ACTION_ATTRS);
const ACTION_PATTERNS = [...ACTIONS, 'net.*', 'fs.*', 'deploy.*', 'deployer.*', '*'];

function expand(p: string): string[] {
  if (p === '*') return ACTIONS;
  if (p.endsWith('.*')) return ACTIONS.filter((a) => a.startsWith(p.slice(0, -1)));
  return [p];
}

function atomsFor(attrs: Set<string>): fc.Arbitrary<string>[] {
  const out: fc.Arbitrary<string>[] = [
    fc.constantFrom('"core"', '"infra"').map((v) => `principal.team == ${v}`),
    fc.constant('principal.team != "core"'),
    fc.constant('principal.team in teams'),
    fc.integer({ min: 0, max: 4 }).map((n) => `principal.level >= ${n}`),
    fc.constant('principal.level == 3'),
    fc.constantFrom('>=', '!=', '==').map((op) => `principal.clearance ${op} 2`),
    fc.constantFrom('==', '!=').map((op) => `context.tier ${op} "gold"`),
    fc.constant('context.tier matches "g*"'),
    fc.constantFrom(...ROLES, 'r4').map((r) => `${str(r)} in principal.roles`),
    fc.constant('principal.id matches "agent-*"'),
    fc.constant('principal.admin'),
    fc.constant('principal.team exists'),
    fc.constantFrom('"a"', '1', 'true').map((v) => `${v} in principal.groups`),
    fc.constant('principal.groups exists'),
    fc.constant('principal.roles exists'),
    // Names that Object.prototype has: only the request's own members count.
    fc.constant('principal.toString exists'),
    fc.constant('not context.constructor exists'),
    fc.constantFrom('alpha', 'beta').map((p) => `context.project == ${str(p)}`),
    fc.integer({ min: 0, max: 5 }).map((n) => `context.risk > ${n}`),
    fc.constantFrom(...ACTIONS).map((a) => `action == ${str(a)}`),
    fc.constantFrom('fs.*', 'net.*', '*.call', 'deploy*').map((g) => `action matches ${str(g)}`),
  ];
  if (attrs.has('host')) {
    out.push(
      fc.constantFrom(...HOSTS.slice(0, 6)).map((h) => `resource.host == ${str(h)}`),
      fc.constantFrom(...HOST_GLOBS).map((g) => `resource.host matches ${str(g)}`),
      fc.subarray(HOST_GLOBS, { minLength: 1, maxLength: 3 }).map((gs) => `resource.host matches ${list(gs.map(str))}`),
      fc
        .subarray(HOSTS.slice(0, 6), { minLength: 1, maxLength: 3 })
        .map((hs) => `resource.host in ${list(hs.map(str))}`),
      fc.constant('resource.host != "github.com"'),
      fc.constant('resource.host in gh_hosts'),
      fc.constant('resource.host matches gh_globs'),
      fc
        .constantFrom('::ffff:10.0.0.1', '10.0.0.1', '2001:db8::1', 'bücher.de', 'API.github.com.')
        .map((h) => `resource.host == ${str(h)}`),
    );
  }
  if (attrs.has('path')) {
    out.push(
      fc.constantFrom(...PATHS.slice(0, 7)).map((p) => `resource.path == ${str(p)}`),
      fc.constantFrom(...PATH_GLOBS).map((g) => `resource.path matches ${str(g)}`),
      fc.subarray(PATH_GLOBS, { minLength: 1, maxLength: 3 }).map((gs) => `resource.path matches ${list(gs.map(str))}`),
      fc
        .subarray(PATHS.slice(0, 7), { minLength: 1, maxLength: 3 })
        .map((ps) => `resource.path in ${list(ps.map(str))}`),
      fc.constant('resource.path matches path_globs'),
      fc.constant('resource.path matches ws'),
      fc.constant('resource.path == "/a\\\\b"'),
    );
  }
  if (attrs.has('ip')) {
    out.push(
      fc.subarray(CIDRS, { minLength: 1, maxLength: 3 }).map((cs) => `resource.ip in ${list(cs.map(str))}`),
      fc.constant('resource.ip in private_nets'),
      fc.constantFrom(...IPS).map((ip) => `resource.ip == ${str(ip)}`),
      fc.constant('resource.ip exists'),
      fc.constant('resource.ip in more_nets'),
      fc.constantFrom('::ffff:10.0.0.1', '2001:DB8::5').map((ip) => `resource.ip == ${str(ip)}`),
    );
  }
  if (attrs.has('port')) {
    out.push(
      fc.constantFrom(22, 80, 443).map((p) => `resource.port == ${p}`),
      fc.constantFrom(22, 80, 443).map((p) => `resource.port != ${p}`),
      fc.constantFrom(100, 443).map((p) => `resource.port < ${p}`),
      fc.constant('resource.port in [80, 443]'),
      fc.constant('resource.port in web_ports'),
      fc.constant('resource.port == tls_port'),
    );
  }
  if (attrs.has('method')) out.push(fc.constantFrom('GET', 'POST').map((m) => `resource.method == ${str(m)}`));
  if (attrs.has('channel'))
    out.push(
      fc.constantFrom('"slack"', '"sl*"', '"*mail"').map((c) => `resource.channel matches ${c}`),
      fc.constant('resource.channel == "email"'),
    );
  if (attrs.has('secrets')) out.push(fc.constant('resource.secrets > 0'), fc.constant('not resource.secrets exists'));
  if (attrs.has('tool'))
    out.push(fc.constant('resource.tool in ["bash", "web"]'), fc.constant('resource.tool == "bash"'));
  if (attrs.has('network')) out.push(fc.constant('resource.network'), fc.constant('not resource.network'));
  if (attrs.has('command'))
    out.push(fc.constant('resource.command in ["git", "make"]'), fc.constant('"--force" in resource.args'));
  if (attrs.has('constructor'))
    out.push(fc.constant('resource.constructor exists'), fc.constant('resource.constructor == "x"'));
  if (attrs.has('env')) out.push(fc.constantFrom('prod', 'staging').map((e) => `resource.env == ${str(e)}`));
  if (attrs.has('replicas')) out.push(fc.constant('resource.replicas > 2'), fc.constant('resource.replicas exists'));
  if (attrs.has('target'))
    out.push(fc.constant('resource.target matches "**.internal"'), fc.constant('resource.target == "DB.internal."'));
  if (attrs.has('dir')) out.push(fc.constant('resource.dir matches "/srv/**"'), fc.constant('resource.dir == "/srv"'));
  return out;
}

function condArb(attrs: Set<string>): fc.Arbitrary<string> {
  const atom = fc.oneof(...atomsFor(attrs));
  const { cond } = fc.letrec<{ cond: string }>((tie) => ({
    cond: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      atom,
      fc.tuple(tie('cond'), tie('cond')).map(([a, b]) => `${a} and ${b}`),
      fc.tuple(atom, atom, atom).map(([a, b, c]) => `${a} and ${b} and ${c}`),
      fc.tuple(tie('cond'), tie('cond')).map(([a, b]) => `(${a} or ${b})`),
      tie('cond').map((a) => `not (${a})`),
    ),
  }));
  return cond;
}

const ruleArb: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('allow', 'allow', 'deny', 'ask'), fc.subarray(ACTION_PATTERNS, { minLength: 1, maxLength: 2 }))
  .chain(([effect, actions]) => {
    const attrs = new Set(actions.flatMap(expand).flatMap((a) => ACTION_ATTRS[a] ?? []));
    return fc
      .tuple(
        fc.option(condArb(attrs), { freq: 4 }),
        fc.option(fc.constantFrom('because one', 'why \\"quoted\\"'), { freq: 2 }),
      )
      .map(
        ([cond, because]) =>
          `${effect} ${actions.join(', ')}${cond ? ` when ${cond}` : ''}${because ? ` because "${because}"` : ''}`,
      );
  });

const scopeArb = fc.constantFrom(
  '',
  'scope global ',
  'scope project "alpha" ',
  'scope project "beta" ',
  'scope session "s1" ',
  'scope blueprint "py" ',
);

// Constants: list constants spliced into lists, a constant naming one declared after it.
const HEADER = `let private_nets = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
let more_nets = [private_nets, "::ffff:100.64.0.0/106", "2001:db8::/32"]
let web_ports = [80, 443]
let tls_port = tls
let gh_hosts = ["GitHub.com.", "api.github.com"]
let gh_globs = ["**.GITHUB.com", "*.example.org"]
let path_globs = [ws, "/tmp/*"]
let teams = ["core", "infra"]
attributes {
  principal.team: any
  principal.level: any
  principal.admin: any
  context.risk: any
  principal.clearance: number
  principal.groups: list
  principal.toString: any
  context.constructor: any
  context.tier: string
}
`;
const TRAILER = `let tls = 443
let ws = "/workspace/**"
action deploy.app { env: string, replicas?: number, target?: host }
action deploy.db { env: string, constructor?: string }
action deployer.run { env: string, dir?: path }
`;

const roleBlock = (name: string, ext: string[], rules: string[]) =>
  `role ${name}${ext.length ? ` extends ${ext.join(', ')}` : ''} {\n${rules.map((r) => `    ${r}\n`).join('')}  }`;

/** A lease or a lease ceiling holds only `allow` rules. */
const asAllow = (rule: string) => rule.replace(/^(deny|ask)/, 'allow');

/** A policy set: a few files of policies, roles (acyclic extends) and top-level roles. */
export const policySetArb: fc.Arbitrary<{ path: string; text: string }[]> = fc
  .tuple(
    fc.array(
      fc.tuple(
        scopeArb,
        fc.array(ruleArb, { maxLength: 6 }),
        fc.option(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(ruleArb, { maxLength: 3 })), { freq: 3 }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(ruleArb, { maxLength: 3 })), { maxLength: 3 }),
    // Per role, the `extends` of its bodies inside policies and of its last (empty) body: they merge.
    fc.array(fc.tuple(fc.subarray([0, 1, 2], { maxLength: 2 }), fc.subarray([0, 1, 2], { maxLength: 2 })), {
      minLength: 4,
      maxLength: 4,
    }),
    // The lease ceilings: issuer "gen" (sometimes also by its key id "kid-gen") with random allow
    // rules, often with an unconditional `allow *` too (then leases are bounded by their own
    // conditions only), and a random max; sometimes none (leases grant nothing); sometimes a
    // second ceiling for issuer "other" with a short max.
    fc.option(
      fc.record({
        rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
        everything: fc.boolean(),
        kid: fc.boolean(),
        max: fc.constantFrom('1h', '10m', '600s', '1d', '5m'),
      }),
      { freq: 8, nil: undefined },
    ),
    fc.option(fc.array(ruleArb, { minLength: 1, maxLength: 2 }), { freq: 3, nil: undefined }),
  )
  .map(([policies, topRoles, exts, ceiling, other]) => {
    // r_i may extend only r_j with j < i: no cycles.
    const names = (js: number[], i: number) => js.filter((j) => j < i).map((j) => ROLES[j]!);
    const ext = (i: number) => names(exts[i]![0], i);
    const lastExt = (i: number) => names(exts[i]![1], i);
    const files: { path: string; text: string }[] = [];
    let text = HEADER;
    policies.forEach(([scope, rules, role], i) => {
      const body = rules.map((r) => `  ${r}\n`);
      if (role) body.splice(Math.min(1, body.length), 0, `  ${roleBlock(ROLES[role[0]]!, ext(role[0]), role[1])}\n`);
      text += `# policy ${i}\npolicy "p${i}" ${scope}{\n${body.join('')}}\n`;
      if (i % 2 === 1) {
        files.push({ path: `f${files.length}.pol`, text });
        text = '';
      }
    });
    for (const [r, rules] of topRoles) text += `${roleBlock(ROLES[r]!, ext(r), rules)}\n`;
    // Every role must exist once so that extends resolve.
    ROLES.forEach((r, i) => {
      text += `role ${r}${lastExt(i).length ? ` extends ${lastExt(i).join(', ')}` : ''} {}\n`;
    });
    const allowOnly = (rules: string[]) => rules.map((r) => `  ${asAllow(r)}\n`).join('');
    if (ceiling) {
      const from = ceiling.kid ? '"gen", "kid-gen"' : '"gen"';
      const all = ceiling.everything ? '  allow *\n' : '';
      text += `leases from ${from} max ${ceiling.max} {\n${allowOnly(ceiling.rules)}${all}}\n`;
    }
    if (other) text += `leases from "other" max 5m {\n${allowOnly(other)}}\n`;
    // Actions and constants declared after their first use, in the last file.
    files.push({ path: `f${files.length}.pol`, text: text + TRAILER });
    return files;
  });

/** Lease rules (allow only). */
export const grantArb: fc.Arbitrary<string> = fc
  .array(ruleArb.map(asAllow), { minLength: 1, maxLength: 2 })
  .map((rs) => rs.join('\n'));

/**
 * A lease as the PDP hands it over: its rules, the names its issuer goes by and its lifetime
 * (exp - iat, s). Mostly issuer "gen" within a 10-minute ceiling; also the key id alone, an
 * issuer with a short ceiling or none, and lifetimes over the ceilings.
 */
export const leaseArb: fc.Arbitrary<{ text: string; issuers: readonly string[]; lifetimeSec: number }> = fc.record({
  text: grantArb,
  issuers: fc.oneof(
    { weight: 6, arbitrary: fc.constant(['gen']) },
    { weight: 1, arbitrary: fc.constantFrom(['kid-gen'], ['kid-gen', 'gen'], ['other'], ['nobody'], []) },
  ),
  lifetimeSec: fc.oneof(
    { weight: 6, arbitrary: fc.constant(600) },
    { weight: 1, arbitrary: fc.constantFrom(1, 300, 301, 3600, 3601, 86_400, 86_401) },
  ),
});

const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 3, nil: undefined });

export const requestArb: fc.Arbitrary<unknown> = fc
  .record({
    action: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...ACTIONS) },
      { weight: 1, arbitrary: fc.constantFrom('nope.x', 'stage.transition', 'net.conect', 'deploy') },
    ),
    host: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...HOSTS) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          'a..b',
          'x.com:80',
          '',
          '[::1]',
          'xn--zz',
          'a b.com',
          7,
          '127.1',
          '0x7f.1',
          '2130706433',
        ),
      },
    ),
    port: fc.constantFrom(22, 80, 443, 8080),
    ip: maybe(
      fc.oneof(
        { weight: 20, arbitrary: fc.constantFrom(...IPS) },
        { weight: 1, arbitrary: fc.constantFrom('010.0.0.1', 'zz', '1.2.3', '::1%', '10.0.0.0/8') },
      ),
    ),
    path: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...PATHS) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('relative', '/..', '/a%2fb', '/x%5Cy', '/%zz', '/a%00', '/a\0b', '/x/../..'),
      },
    ),
    method: fc.constantFrom('GET', 'POST'),
    channel: fc.constantFrom('slack', 'email', 'gmail'),
    secrets: maybe(fc.constantFrom(0, 2)),
    tool: fc.constantFrom('bash', 'web', 'other'),
    command: fc.constantFrom('git', 'rm'),
    args: maybe(fc.subarray(['--force', '-v', 3])),
    env: fc.constantFrom('prod', 'staging'),
    constructor: maybe(fc.constantFrom('x', 'y')),
    replicas: maybe(fc.oneof({ weight: 9, arbitrary: fc.constantFrom(1, 3, 2.5) }, fc.constant('3'))),
    target: maybe(fc.constantFrom('db.internal', 'DB.internal.', 'x.example.org', 'a..b')),
    dir: maybe(fc.constantFrom('/srv', '/srv/./a/', '/tmp', 'srv')),
    network: maybe(fc.boolean()),
    id: fc.constantFrom('agent-1', 'bot'),
    roles: maybe(fc.subarray([...ROLES, 'r4'])),
    team: maybe(fc.oneof(fc.constantFrom('core', 'infra', 'ops'), fc.constantFrom(1, null))),
    level: maybe(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant('3'))),
    admin: maybe(fc.oneof(fc.boolean(), fc.constantFrom(1, null))),
    clearance: maybe(fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom('2', null))),
    groups: maybe(fc.oneof(fc.subarray(['a', 1, true, 'b']), fc.constantFrom('a', null))),
    tier: maybe(fc.constantFrom('gold', 'green', 'silver', 1)),
    project: maybe(fc.constantFrom('alpha', 'beta')),
    session: maybe(fc.constant('s1')),
    blueprint: maybe(fc.constant('py')),
    risk: maybe(fc.integer({ min: 0, max: 6 })),
  })
  .map((r) => {
    const attrs = ACTION_ATTRS[r.action] ?? ['from', 'to'];
    const resource: Record<string, unknown> = {};
    const all: Record<string, unknown> = { ...r, from: 'a', to: 'b' };
    for (const a of attrs) if (all[a] !== undefined) resource[a] = all[a];
    const principal: Record<string, unknown> = { id: r.id };
    for (const k of ['roles', 'team', 'level', 'admin', 'clearance', 'groups'] as const)
      if (r[k] !== undefined) principal[k] = r[k];
    const context: Record<string, unknown> = {};
    for (const k of ['project', 'session', 'blueprint', 'risk', 'tier'] as const)
      if (r[k] !== undefined) context[k] = r[k];
    return { principal, action: r.action, resource, context };
  });
