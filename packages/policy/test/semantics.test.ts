// Decision semantics and request normalisation, case by case against dsl/LANGUAGE.md.
import t from 'tap';
import type { Decision } from '@portcullis/protocol';
import { compile } from '../src/index.js';
import type { CompiledPolicy } from '../src/index.js';

function policy(text: string, path = 'p.pol'): CompiledPolicy {
  const r = compile([{ path, text }]);
  if (!r.policy) throw new Error(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.code} ${d.message}`).join('\n'));
  return r.policy;
}

const rq = (action: string, resource: object, principal: object = {}, context: object = {}) => ({
  principal: { id: 'agent-7', ...principal },
  action,
  resource,
  context,
});
const rules = (d: Decision) => d.reasons.map((r) => r.rule ?? `lease:${r.lease}`);

t.test('deny-overrides, all matching denies in source order, ask, default deny', async (t) => {
  const p = policy(`
let private_nets = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
policy "egress-baseline" scope global {
  allow net.connect when resource.host matches "**.github.com"
  deny net.connect when resource.ip in private_nets because "private ranges"
  deny net.* when resource.port == 22
  ask net.connect when resource.port == 8443
}`);
  const d = p.evaluate(rq('net.connect', { host: 'api.github.com', port: 22, ip: '10.1.1.1' }));
  t.equal(d.decision, 'deny');
  t.same(d.reasons, [
    {
      effect: 'deny',
      policy: 'egress-baseline',
      rule: 'egress-baseline#2',
      because: 'private ranges',
      source: 'p.pol:5:3',
    },
    { effect: 'deny', policy: 'egress-baseline', rule: 'egress-baseline#3', source: 'p.pol:6:3' },
  ]);
  t.equal(d.policy_version, p.version);
  t.match(p.version, /^sha256:[0-9a-f]{64}$/);
  const ask = p.evaluate(rq('net.connect', { host: 'api.github.com', port: 8443 }));
  t.equal(ask.decision, 'ask');
  t.same(rules(ask), ['egress-baseline#4'], 'ask beats allow; reasons are the asks');
  t.same(rules(p.evaluate(rq('net.connect', { host: 'github.com', port: 443 }))), ['egress-baseline#1']);
  const none = p.evaluate(rq('net.connect', { host: 'example.com', port: 443 }));
  t.same(none, { decision: 'deny', reasons: [], policy_version: p.version }, 'default deny has no reasons');
});

t.test('leases: grant an ask (step 4) or nothing (step 6), never beat a deny', async (t) => {
  const p = policy(`policy "b" {
  deny fs.write when resource.path matches "/etc/**"
  ask fs.write when resource.path matches "/workspace/**"
}
leases from "k1" max 1h { allow fs.* }`);
  const bound = { issuers: ['k1'], lifetimeSec: 600 };
  const g = p.compileGrant('jti-1', 'allow fs.write when resource.path matches "/**"\nallow fs.read', bound);
  t.same(g.diagnostics, []);
  const grants = [g.grant!];
  const asked = p.evaluate(rq('fs.write', { path: '/workspace/a' }), { grants });
  t.same(asked.reasons, [{ effect: 'allow', lease: 'jti-1', rule: 'lease:jti-1#1' }]);
  t.equal(asked.decision, 'allow');
  t.equal(p.evaluate(rq('fs.write', { path: '/workspace/a' })).decision, 'ask', 'without the lease: ask');
  const free = p.evaluate(rq('fs.read', { path: '/x' }), { grants });
  t.equal(free.decision, 'allow');
  t.same(rules(free), ['lease:jti-1#2']);
  const denied = p.evaluate(rq('fs.write', { path: '/etc/passwd' }), { grants });
  t.equal(denied.decision, 'deny', 'nothing overrides a deny, not even a lease');
  const bad = p.compileGrant('jti-2', 'deny fs.read\nallow fs.read when resource.pth == "/"', bound);
  t.equal(bad.grant, undefined);
  t.same(
    bad.diagnostics.map((d) => d.code),
    ['PCX_GRANT_EFFECT', 'PCX_CHECK_UNKNOWN_ATTRIBUTE'],
  );
  t.equal(bad.diagnostics[0]!.file, 'lease:jti-2');
  t.equal(p.compileGrant('jti-3', 'allow fs.read when', bound).diagnostics[0]!.code, 'PCX_PARSE_EXPECTED_CONDITION');
  const forged = { id: 'forged' };
  t.equal(
    p.evaluate(rq('fs.read', { path: '/x' }), { grants: [forged] }).decision,
    'deny',
    'a grant not made by compileGrant is ignored',
  );
});

t.test('roles: transitive, scoped, RBAC as conditions; inherited deny still wins', async (t) => {
  const p = policy(`
role reader { allow fs.read when resource.path matches "/docs/**" }
role developer extends reader { allow fs.write when resource.path matches "/workspace/**" }
role lead extends developer { allow cmd.exec }
policy "alpha" scope project "alpha" {
  allow net.connect when resource.host == "a.com"
  role developer {
    deny fs.write when resource.path == "/workspace/secret"
    allow tool.call when "reader" in principal.roles
  }
}`);
  const lead = { roles: ['lead'] };
  t.same(
    rules(p.evaluate(rq('fs.read', { path: '/docs/x' }, lead))),
    ['role:reader#1'],
    'lead holds reader through developer',
  );
  t.equal(p.evaluate(rq('fs.read', { path: '/docs/x' }, { roles: ['other'] })).decision, 'deny');
  t.equal(
    p.evaluate(rq('fs.write', { path: '/workspace/secret' }, lead)).decision,
    'allow',
    'the scoped role body applies only in project alpha',
  );
  const inAlpha = p.evaluate(rq('fs.write', { path: '/workspace/secret' }, lead, { project: 'alpha' }));
  t.equal(inAlpha.decision, 'deny');
  t.same(rules(inAlpha), ['alpha#2'], 'roles inside a policy count with its rules');
  t.same(
    rules(p.evaluate(rq('tool.call', { tool: 'x' }, lead, { project: 'alpha' }))),
    ['alpha#3'],
    'principal.roles sees the closure',
  );
  t.equal(p.evaluate(rq('net.connect', { host: 'a.com', port: 1 }, {}, { project: 'beta' })).decision, 'deny', 'scope');
});

t.test('hosts: normalised values and globs (precise rules 1-4)', async (t) => {
  const p = policy(
    `policy "h" {
  allow net.connect when resource.host matches "*.github.com"
  allow net.http when resource.host matches "**.github.com"
  allow fs.read when false == true
}`.replace('  allow fs.read when false == true\n', ''),
  );
  const c = (host: string) => p.evaluate(rq('net.connect', { host, port: 443 }));
  t.equal(c('API.GitHub.com.').decision, 'allow', 'lower-cased, one trailing dot removed');
  t.equal(c('github.com').decision, 'deny', '* is exactly one label');
  t.equal(c('a.b.github.com').decision, 'deny');
  const h = (host: string) => p.evaluate(rq('net.http', { host, port: 443, method: 'GET', path: '/' })).decision;
  t.equal(h('github.com'), 'allow', '** is zero labels too');
  t.equal(h('a.b.github.com'), 'allow');
  t.equal(h('github.com.evil.com'), 'deny');
  for (const bad of ['a..b', 'x.com:443', '[::1]', '', 'a b.com', 'xn--a.com\u0000']) {
    const d = c(bad);
    t.equal(d.error?.code, 'PCX_REQ_BAD_HOST', `${JSON.stringify(bad)} is malformed`);
  }
  const idn = policy('policy "i" { allow net.connect when resource.host == "bücher.de" }');
  t.equal(
    idn.evaluate(rq('net.connect', { host: 'xn--bcher-kva.de', port: 1 })).decision,
    'allow',
    'literal converted to punycode',
  );
  t.equal(
    idn.evaluate(rq('net.connect', { host: 'BÜCHER。de', port: 1 })).decision,
    'allow',
    'value converted; full-width dot',
  );
});

t.test('paths: lexical normalisation, globs, URL decoding only for net.http (rules 5, 7)', async (t) => {
  const p = policy(`policy "f" {
  allow fs.read when resource.path matches "/workspace/**"
  allow fs.write when resource.path matches "/tmp/*.txt"
  allow net.http when resource.path == "/a b"
}`);
  const r = (path: string) => p.evaluate(rq('fs.read', { path }));
  t.equal(r('/workspace').decision, 'allow', '/workspace/** matches /workspace');
  t.equal(r('/workspace/a/../../workspace/b//c/').decision, 'allow');
  t.equal(r('/workspace/../etc').decision, 'deny');
  t.equal(r('/Workspace/a').decision, 'deny', 'case-sensitive');
  t.equal(r('/..').error?.code, 'PCX_REQ_BAD_PATH', 'climbing above / is malformed');
  t.equal(r('relative/x').error?.code, 'PCX_REQ_BAD_PATH');
  t.equal(r('/workspace/%2e%2e').decision, 'allow', 'fs paths are never decoded');
  const w = (path: string) => p.evaluate(rq('fs.write', { path })).decision;
  t.equal(w('/tmp/a.txt'), 'allow');
  t.equal(w('/tmp/.txt'), 'deny', '* needs one or more characters');
  t.equal(w('/tmp/a/b.txt'), 'deny', '* stays within a segment');
  const http = (path: string) => p.evaluate(rq('net.http', { host: 'x.com', port: 80, method: 'GET', path }));
  t.equal(http('/a%20b').decision, 'allow', 'decoded once');
  t.equal(http('/a%252fb').decision, 'deny', 'only once');
  t.equal(http('/a%2fb').error?.code, 'PCX_REQ_BAD_PATH', 'a decoded / is malformed');
  t.equal(http('/a%5cb').error?.code, 'PCX_REQ_BAD_PATH');
  t.equal(http('/a%00b').error?.code, 'PCX_REQ_BAD_PATH');
  t.equal(http('/a%zz').error?.code, 'PCX_REQ_BAD_PATH');
});

t.test('ips: CIDR containment, v4-mapped, zone ids, leading zeros (rule 8)', async (t) => {
  const p = policy(`policy "n" {
  deny net.connect when resource.ip exists and resource.ip in ["10.0.0.0/8", "2001:db8::/32", "::ffff:192.168.0.0/112"]
  allow net.connect
}`);
  const c = (ip: string) => p.evaluate(rq('net.connect', { host: 'x.com', port: 1, ip }));
  t.equal(c('10.9.8.7').decision, 'deny');
  t.equal(c('::ffff:10.0.0.1').decision, 'deny', 'v4-mapped is its IPv4 address');
  t.equal(c('2001:db8::1%eth0').decision, 'deny', 'zone id ignored');
  t.equal(c('192.168.3.4').decision, 'deny', 'mapped CIDR entry unwrapped');
  t.equal(c('11.0.0.1').decision, 'allow');
  t.equal(c('2001:db9::1').decision, 'allow');
  t.equal(c('010.0.0.1').error?.code, 'PCX_REQ_BAD_IP', 'leading zeros are malformed');
  t.equal(c('1.2.3').error?.code, 'PCX_REQ_BAD_IP');
});

t.test('missing and mismatched attributes; dynamic types (rules 6, 9, 10, 12, 17)', async (t) => {
  const p = policy(`attributes { principal.level: any, principal.team: any, principal.admin: any }
policy "d" {
  allow tool.call when principal.level == 3
  allow tool.call when principal.team != "core" and resource.tool == "b"
  allow tool.call when not (principal.team == "core") and resource.tool == "c"
  allow tool.call when principal.admin and resource.tool == "d"
  allow net.connect, fs.read when resource.port == 443
}`);
  const tc = (principal: object, tool = 'a') => p.evaluate(rq('tool.call', { tool }, principal)).decision;
  t.equal(tc({ level: 3 }), 'allow');
  t.equal(tc({ level: 3.0 }), 'allow', 'numbers compare by value');
  t.equal(tc({ level: '3' }), 'deny', 'a string never equals a number');
  t.equal(tc({}, 'b'), 'deny', '!= on a missing attribute is false');
  t.equal(tc({ team: 1 }, 'b'), 'deny', '!= across types is false');
  t.equal(tc({ team: 'x' }, 'b'), 'allow');
  t.equal(tc({}, 'c'), 'allow', 'not is plain negation');
  t.equal(tc({ admin: 1 }, 'd'), 'deny', 'a bool never equals a number');
  t.equal(tc({ admin: true }, 'd'), 'allow');
  t.equal(p.evaluate(rq('fs.read', { path: '/x' })).decision, 'deny', 'resource.port counts as missing for fs.read');
  t.equal(p.evaluate(rq('net.connect', { host: 'x.com', port: 443 })).decision, 'allow');
  t.equal(
    p.evaluate(rq('net.connect', { host: 'x.com', port: 443, ip: 42 })).error?.code,
    'PCX_REQ_BAD_TYPE',
    'an optional attribute of the wrong type makes the request malformed',
  );
  t.equal(p.evaluate(rq('net.connect', { host: 'x.com' })).error?.code, 'PCX_REQ_MISSING_ATTRIBUTE');
  t.match(
    p.evaluate(rq('net.connect', { host: 'x.com' })).error?.message,
    /resource\.port \(number\) is required for net\.connect/,
  );
});

t.test('malformed requests: deny with a precise error, never a throw', async (t) => {
  const p = policy('policy "x" { allow * }');
  const cases: [unknown, string, RegExp][] = [
    [undefined, 'PCX_REQ_NOT_OBJECT', /JSON object/],
    [null, 'PCX_REQ_NOT_OBJECT', /null/],
    [[1], 'PCX_REQ_NOT_OBJECT', /list/],
    [{ action: 'fs.read', resource: { path: '/' } }, 'PCX_REQ_MISSING_ATTRIBUTE', /no principal/],
    [
      { principal: { roles: [] }, action: 'fs.read', resource: { path: '/' } },
      'PCX_REQ_MISSING_ATTRIBUTE',
      /principal\.id is required/,
    ],
    [{ principal: { id: 7 }, action: 'fs.read' }, 'PCX_REQ_BAD_TYPE', /principal\.id must be a string/],
    [{ principal: { id: 'a', roles: 'x' }, action: 'fs.read' }, 'PCX_REQ_BAD_TYPE', /principal\.roles must be a list/],
    [{ principal: { id: 'a', roles: [1] }, action: 'fs.read' }, 'PCX_REQ_BAD_TYPE', /principal\.roles\[0\]/],
    [
      { principal: { id: 'a' }, action: 'fs.reed', resource: {} },
      'PCX_REQ_UNKNOWN_ACTION',
      /unknown action "fs\.reed"/,
    ],
    [{ principal: { id: 'a' }, action: 'fs.read', resource: [] }, 'PCX_REQ_BAD_TYPE', /resource must be an object/],
    [
      { principal: { id: 'a' }, action: 'fs.read', resource: { path: '/' }, context: { project: 1 } },
      'PCX_REQ_BAD_TYPE',
      /context\.project/,
    ],
    [{ principal: { id: 'a' }, action: 'fs.read', resource: { path: 'x'.repeat(2_000_000) } }, 'PCX_REQ_BAD_PATH', /…/],
    [
      { principal: { id: 'a' }, action: 'net.connect', resource: { host: 'a.'.repeat(600_000) + 'com', port: 1 } },
      'PCX_REQ_BAD_HOST',
      /not a valid host/,
    ],
  ];
  for (const [req, code, msg] of cases) {
    const d = p.evaluate(req);
    t.equal(d.decision, 'deny');
    t.same(d.reasons, []);
    t.equal(d.error?.code, code, `${code}`);
    t.match(d.error?.message, msg);
  }
  const hostile = new Proxy(
    {},
    {
      get() {
        throw new Error('boom');
      },
      has() {
        throw new Error('boom');
      },
    },
  );
  t.equal(p.evaluate(hostile).error?.code, 'PCX_REQ_INVALID', 'a throwing object is malformed, not a crash');
  const sneaky = policy('attributes { principal.team: any }\npolicy "y" { allow fs.read when principal.team == "x" }');
  const principal = new Proxy({ id: 'a' } as Record<string, unknown>, {
    get: (o, k) =>
      k === 'team'
        ? (() => {
            throw new Error('boom');
          })()
        : o[k as string],
  });
  t.equal(
    sneaky.evaluate({ principal, action: 'fs.read', resource: { path: '/' } }).error?.code,
    'PCX_REQ_INVALID',
    'a throw while evaluating conditions is caught too',
  );
  t.equal(
    sneaky.evaluate({ principal: { id: 'a', team: 'x' }, action: 'fs.read', resource: { path: '/' } }).decision,
    'allow',
    'and the engine still works afterwards',
  );
  t.equal(
    p.evaluate({ principal: { id: 'a', constructor: 'x' }, action: 'fs.read', resource: { path: '/', toString: 1 } })
      .decision,
    'allow',
  );
});

t.test('custom actions: required and optional attributes (rule 15), wildcards (rule 11)', async (t) => {
  const p = policy(`action deploy.app { env: string, replicas?: number }
policy "c" {
  deny deploy.* when resource.replicas exists and resource.replicas > 10
  allow deploy.app when resource.env in ["dev", "staging"]
}`);
  const d = (resource: object) => p.evaluate(rq('deploy.app', resource));
  t.equal(d({ env: 'dev' }).decision, 'allow');
  t.equal(d({ env: 'dev', replicas: 11 }).decision, 'deny');
  t.equal(d({ replicas: 1 }).error?.code, 'PCX_REQ_MISSING_ATTRIBUTE');
  t.equal(d({ env: 'prod' }).decision, 'deny');
});

t.test('explain: candidates with the conditions that failed', async (t) => {
  const p = policy(`policy "e" {
  allow net.connect when resource.host matches "**.github.com" and resource.port == 443
  allow net.connect when resource.port == 22
}`);
  const e = p.explain(rq('net.connect', { host: 'api.github.com', port: 80 }));
  t.equal(e.decision, 'deny');
  t.same(e.explain, {
    candidates: [
      { rule: 'e#1', effect: 'allow', source: 'p.pol:2:3', matched: false, failed: ['resource.port == 443'] },
      { rule: 'e#2', effect: 'allow', source: 'p.pol:3:3', matched: false, failed: ['resource.port == 22'] },
    ],
    skipped: [],
  });
  t.same(
    p.explain(rq('fs.read', { path: '/' })).explain,
    { candidates: [], skipped: [] },
    'rules of other actions are neither candidates nor skipped',
  );
});

t.test('explain: rules skipped because of their scope or role, and why', async (t) => {
  const p = policy(`role reader { allow fs.read }
role lead extends reader {}
role ops { deny fs.read when resource.path == "/etc" }
policy "a" scope project "alpha" {
  allow fs.read
}
policy "s" scope session "s-1" {
  role reader { ask fs.read }
}
policy "n" { allow net.connect }`);
  const e = p.explain(rq('fs.read', { path: '/x' }, { roles: ['lead'] }, { project: 'beta' }));
  t.equal(e.decision, 'allow');
  t.same(
    (e.explain as { candidates: { rule: string }[] }).candidates.map((c) => c.rule),
    ['role:reader#1'],
    'the inherited role rule is a candidate',
  );
  t.same((e.explain as { skipped: unknown }).skipped, [
    {
      rule: 'role:ops#1',
      effect: 'deny',
      source: 'p.pol:3:12',
      skipped: 'role',
      why: 'applies to role "ops" (or a role extending it); the principal holds "lead", "reader"',
    },
    {
      rule: 'a#1',
      effect: 'allow',
      source: 'p.pol:5:3',
      skipped: 'scope',
      why: 'applies in project "alpha"; the request\'s context.project is "beta"',
    },
    {
      rule: 's#1',
      effect: 'ask',
      source: 'p.pol:8:17',
      skipped: 'scope',
      why: 'applies in session "s-1"; the request\'s context.session is absent',
    },
  ]);
  const none = p.explain(rq('fs.read', { path: '/x' }));
  t.match((none.explain as { skipped: { why: string }[] }).skipped[0]!.why, /the principal holds no roles$/);
  t.same(
    (p.explain({ action: 'fs.read' }).explain as { skipped: unknown }).skipped,
    [],
    'a malformed request lists nothing',
  );
});
