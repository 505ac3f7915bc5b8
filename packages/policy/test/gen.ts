/** fast-check generators of random policy sets (as source text) and requests biased to hit them. */
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
export const IPS = ['10.1.2.3', '192.168.1.1', '8.8.8.8', '::1', '2001:db8::5', '::ffff:10.0.0.1', '172.16.0.9'];
const CIDRS = ['10.0.0.0/8', '192.168.0.0/16', '0.0.0.0/0', '2001:db8::/32', '::1', '8.8.8.8', '172.16.0.0/12', '::/0'];
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
};
export const ACTIONS = Object.keys(ACTION_ATTRS);
const ACTION_PATTERNS = [...ACTIONS, 'net.*', 'fs.*', '*'];

function expand(p: string): string[] {
  if (p === '*') return ACTIONS;
  if (p.endsWith('.*')) return ACTIONS.filter((a) => a.startsWith(p.slice(0, -1)));
  return [p];
}

function atomsFor(attrs: Set<string>): fc.Arbitrary<string>[] {
  const out: fc.Arbitrary<string>[] = [
    fc.constantFrom('"core"', '"infra"').map((v) => `principal.team == ${v}`),
    fc.integer({ min: 0, max: 4 }).map((n) => `principal.level >= ${n}`),
    fc.constantFrom(...ROLES, 'r4').map((r) => `${str(r)} in principal.roles`),
    fc.constant('principal.id matches "agent-*"'),
    fc.constant('principal.admin'),
    fc.constant('principal.team exists'),
    fc.constantFrom('alpha', 'beta').map((p) => `context.project == ${str(p)}`),
    fc.integer({ min: 0, max: 5 }).map((n) => `context.risk > ${n}`),
    fc.constantFrom(...ACTIONS).map((a) => `action == ${str(a)}`),
    fc.constantFrom('fs.*', 'net.*', '*.call').map((g) => `action matches ${str(g)}`),
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
    );
  }
  if (attrs.has('ip')) {
    out.push(
      fc.subarray(CIDRS, { minLength: 1, maxLength: 3 }).map((cs) => `resource.ip in ${list(cs.map(str))}`),
      fc.constant('resource.ip in private_nets'),
      fc.constantFrom(...IPS).map((ip) => `resource.ip == ${str(ip)}`),
      fc.constant('resource.ip exists'),
    );
  }
  if (attrs.has('port')) {
    out.push(
      fc.constantFrom(22, 80, 443).map((p) => `resource.port == ${p}`),
      fc.constantFrom(22, 80, 443).map((p) => `resource.port != ${p}`),
      fc.constantFrom(100, 443).map((p) => `resource.port < ${p}`),
      fc.constant('resource.port in [80, 443]'),
      fc.constant('resource.port in web_ports'),
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

const roleBlock = (name: string, ext: string[], rules: string[]) =>
  `role ${name}${ext.length ? ` extends ${ext.join(', ')}` : ''} {\n${rules.map((r) => `    ${r}\n`).join('')}  }`;

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
    fc.array(fc.subarray([0, 1, 2], { maxLength: 2 }), { minLength: 4, maxLength: 4 }),
    // The lease ceiling of issuer "gen": random allow rules, often with an unconditional
    // `allow *` too (then leases are bounded by their own conditions only).
    fc.tuple(fc.array(ruleArb, { minLength: 1, maxLength: 3 }), fc.boolean()),
  )
  .map(([policies, topRoles, exts, [ceiling, everything]]) => {
    // r_i may extend only r_j with j < i: no cycles.
    const ext = (i: number) => exts[i]!.filter((j) => j < i).map((j) => ROLES[j]!);
    const files: { path: string; text: string }[] = [];
    const header = 'let private_nets = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]\nlet web_ports = [80, 443]\n';
    let text = header;
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
      text += `role ${r}${ext(i).length ? ` extends ${ext(i).join(', ')}` : ''} {}\n`;
    });
    const bounds = ceiling.map((r) => `  ${r.replace(/^(deny|ask)/, 'allow')}\n`).join('');
    text += `leases from "gen" max 1h {\n${bounds}${everything ? '  allow *\n' : ''}}\n`;
    files.push({ path: `f${files.length}.pol`, text });
    return files;
  });

/** Lease rules (allow only). */
export const grantArb: fc.Arbitrary<string> = fc
  .array(
    ruleArb.map((r) => r.replace(/^(deny|ask)/, 'allow')),
    { minLength: 1, maxLength: 2 },
  )
  .map((rs) => rs.join('\n'));

const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 3, nil: undefined });

export const requestArb: fc.Arbitrary<unknown> = fc
  .record({
    action: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...ACTIONS) },
      { weight: 1, arbitrary: fc.constantFrom('nope.x', 'stage.transition') },
    ),
    host: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...HOSTS) },
      { weight: 1, arbitrary: fc.constantFrom('a..b', 'x.com:80', '') },
    ),
    port: fc.constantFrom(22, 80, 443, 8080),
    ip: maybe(
      fc.oneof(
        { weight: 20, arbitrary: fc.constantFrom(...IPS) },
        { weight: 1, arbitrary: fc.constantFrom('010.0.0.1', 'zz') },
      ),
    ),
    path: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...PATHS) },
      { weight: 1, arbitrary: fc.constantFrom('relative', '/..', '/a%2fb') },
    ),
    method: fc.constantFrom('GET', 'POST'),
    channel: fc.constantFrom('slack', 'email', 'gmail'),
    secrets: maybe(fc.constantFrom(0, 2)),
    tool: fc.constantFrom('bash', 'web', 'other'),
    network: maybe(fc.boolean()),
    id: fc.constantFrom('agent-1', 'bot'),
    roles: maybe(fc.subarray([...ROLES, 'r4'])),
    team: maybe(fc.oneof(fc.constantFrom('core', 'infra'), fc.constant(1))),
    level: maybe(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant('3'))),
    admin: maybe(fc.oneof(fc.boolean(), fc.constant(1))),
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
    for (const k of ['roles', 'team', 'level', 'admin'] as const) if (r[k] !== undefined) principal[k] = r[k];
    const context: Record<string, unknown> = {};
    for (const k of ['project', 'session', 'blueprint', 'risk'] as const) if (r[k] !== undefined) context[k] = r[k];
    return { principal, action: r.action, resource, context };
  });
