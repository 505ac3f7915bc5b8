// The checker and the parser's diagnostics: every rule of "Precise rules" that is a compile-time
// error has a stable code, a position and a message that says how to fix it.
import t, { type Test } from 'tap';
import { compile, renderDiagnostic } from '../src/index.js';
import type { Diagnostic } from '../src/index.js';

function diags(text: string): Diagnostic[] {
  return compile([{ path: 'c.pol', text }]).diagnostics;
}

function one(t: Test, text: string, code: string, message: RegExp, at?: [number, number]): void {
  const ds = diags(text).filter((d) => d.severity === 'error');
  t.equal(ds.length, 1, `exactly one error for: ${text}\n${ds.map((d) => d.code + ' ' + d.message).join('\n')}`);
  t.equal(ds[0]?.code, code);
  t.match(ds[0]?.message, message);
  if (at) t.same([ds[0]?.line, ds[0]?.col], at);
}

const P = (body: string) => `policy "p" {\n  ${body}\n}\n`;

t.test('schema and names', async (t) => {
  one(
    t,
    P('allow net.conect'),
    'PCX_CHECK_UNKNOWN_ACTION',
    /unknown action "net\.conect" \(did you mean "net\.connect"\?\)/,
    [2, 9],
  );
  one(
    t,
    P('allow nett.*'),
    'PCX_CHECK_UNKNOWN_ACTION',
    /no declared action matches "nett\.\*" \(did you mean "net\.\*"\?\)/,
  );
  one(
    t,
    P('allow net.connect when resource.hots == "a"'),
    'PCX_CHECK_UNKNOWN_ATTRIBUTE',
    /resource\.hots .*did you mean "host"/,
    [2, 26],
  );
  one(
    t,
    P('allow fs.read when resource.path matches privat'),
    'PCX_CHECK_UNKNOWN_CONSTANT',
    /unknown constant "privat"/,
  );
  one(
    t,
    `let private = ["/a"]\n${P('allow fs.read when resource.path matches privat')}`,
    'PCX_CHECK_UNKNOWN_CONSTANT',
    /did you mean "private"/,
  );
  one(t, 'let a = 1\nlet a = 2\n', 'PCX_CHECK_DUPLICATE_LET', /constant "a" is already defined at c\.pol:1:1/, [2, 1]);
  one(t, 'let a = [b]\nlet b = [a]\n', 'PCX_CHECK_CONSTANT_CYCLE', /refers to itself/);
  one(
    t,
    'policy "x" {}\npolicy "x" {}\n',
    'PCX_CHECK_DUPLICATE_POLICY',
    /policy "x" is already defined at c\.pol:1:8/,
    [2, 8],
  );
  one(t, 'action net.connect { a: string }\n', 'PCX_CHECK_DUPLICATE_ACTION', /already declared \(it is built in\)/);
  one(
    t,
    'action deploy.app { env: strng }\n',
    'PCX_CHECK_UNKNOWN_TYPE',
    /unknown type "strng" \(did you mean "string"\?\)/,
    [1, 26],
  );
  one(t, 'action deploy.app { env: string, env: number }\n', 'PCX_CHECK_DUPLICATE_ATTRIBUTE', /declared twice/);
  one(
    t,
    `action a.x { size: string }\n${P('allow a.x, comms.send when resource.size == "1"')}`,
    'PCX_CHECK_ATTRIBUTE_TYPE_CONFLICT',
    /different types/,
  );
});

t.test('roles', async (t) => {
  one(
    t,
    'role a extends developr {}\nrole developer {}\n',
    'PCX_CHECK_UNKNOWN_ROLE',
    /unknown role "developr" \(did you mean "developer"\?\)/,
    [1, 16],
  );
  one(
    t,
    'role a extends b {}\nrole b extends c {}\nrole c extends a {}\n',
    'PCX_CHECK_ROLE_CYCLE',
    /role cycle: a → b → c → a/,
  );
  one(t, 'role a extends a {}\n', 'PCX_CHECK_ROLE_CYCLE', /a → a/);
  t.same(
    diags('role a { allow fs.read }\npolicy "p" { role a extends b { allow fs.write } }\nrole b {}\n'),
    [],
    'several bodies, extends merged',
  );
});

t.test('types, literals and operators', async (t) => {
  one(
    t,
    P('allow net.connect when resource.port == "443"'),
    'PCX_CHECK_TYPE_MISMATCH',
    /resource\.port is a number: expected a number literal, got a string \("443"\)/,
    [2, 43],
  );
  one(t, P('allow net.connect when resource.host == 1'), 'PCX_CHECK_TYPE_MISMATCH', /host string/);
  one(t, P('allow net.connect when resource.host == "a..b"'), 'PCX_CHECK_INVALID_HOST', /not a valid host/);
  one(
    t,
    P('allow net.connect when resource.host matches "api-*.x.com"'),
    'PCX_CHECK_HOST_GLOB',
    /whole labels/,
    [2, 48],
  );
  one(t, P('allow fs.read when resource.path matches "/a/../b"'), 'PCX_CHECK_PATH_NOT_NORMALISED', /write "\/b"/);
  one(t, P('allow fs.read when resource.path == "/a/"'), 'PCX_CHECK_PATH_NOT_NORMALISED', /write "\/a"/);
  one(t, P('allow fs.read when resource.path matches "a/**"'), 'PCX_CHECK_INVALID_PATH', /must be absolute/);
  one(t, P('allow fs.read when resource.path matches "/a/**b"'), 'PCX_CHECK_PATH_GLOB', /whole segment/);
  one(
    t,
    P('deny net.connect when resource.ip exists and resource.ip in ["10.0.0.1/8"]'),
    'PCX_CHECK_CIDR_HOST_BITS',
    /host bits set \(the network is 10\.0\.0\.0\/8\)/,
  );
  one(
    t,
    P('deny net.connect when resource.ip exists and resource.ip in ["010.0.0.0/8"]'),
    'PCX_CHECK_INVALID_IP',
    /not an IP address/,
  );
  one(
    t,
    P('allow net.connect when resource.port matches "4*"'),
    'PCX_CHECK_OPERATOR_TYPE',
    /`matches` applies to string, host and path attributes, but resource\.port is a number/,
  );
  one(
    t,
    P('allow net.connect when resource.ip matches "10.*"'),
    'PCX_CHECK_OPERATOR_TYPE',
    /use `resource\.ip in \["10\.0\.0\.0\/8"\]`/,
  );
  one(t, P('allow net.connect when "a" in resource.host'), 'PCX_CHECK_OPERATOR_TYPE', /needs a list attribute/);
  one(t, P('allow net.connect when resource.host in "a.com"'), 'PCX_CHECK_OPERAND', /needs a list on its right/);
  one(t, P('allow tool.call when resource.tool < 3'), 'PCX_CHECK_OPERATOR_TYPE', /needs a number/);
  one(t, P('allow tool.call when resource.tool'), 'PCX_CHECK_OPERATOR_TYPE', /is a string, not a bool/);
  one(
    t,
    P('allow tool.call when principal.roles == "x"'),
    'PCX_CHECK_OPERATOR_TYPE',
    /is a list: use `VALUE in principal\.roles`/,
  );
  one(t, P('allow tool.call when resource.tool == principal.id'), 'PCX_CHECK_OPERAND', /one side must be/);
  t.same(
    diags(`let hosts = ["a.com"]\nlet more = [hosts, "b.com"]\n${P('allow net.connect when resource.host in more')}`),
    [],
    'a list constant inside a list is spliced in',
  );
  t.same(
    diags(P('allow tool.call when principal.x matches "a*" and principal.y in [1, "a", true] and 3 < context.z')),
    [],
    'dynamic attributes take any literal',
  );
});

t.test('precise rule 9: deny on an optional attribute without exists warns', async (t) => {
  const w = diags(P('deny net.connect when resource.ip in ["10.0.0.0/8"]'));
  t.equal(w.length, 1);
  t.equal(w[0]!.severity, 'warning');
  t.equal(w[0]!.code, 'PCX_CHECK_DENY_OPTIONAL');
  t.match(renderDiagnostic(w[0]!), /^c\.pol:2:3: PCX_CHECK_DENY_OPTIONAL: warning: this deny depends on resource\.ip/);
  t.ok(
    compile([{ path: 'c.pol', text: P('deny net.connect when resource.ip in ["10.0.0.0/8"]') }]).policy,
    'a warning still compiles',
  );
  t.same(
    diags(P('deny net.connect when resource.ip exists and resource.ip in ["10.0.0.0/8"]')),
    [],
    'exists silences it',
  );
  t.same(diags(P('deny net.connect when resource.port == 22')), [], 'required attributes do not warn');
  t.same(diags(P('allow net.connect when resource.ip in ["10.0.0.0/8"]')), [], 'allow rules do not warn');
});

t.test('diagnostics are collected across files and sorted', async (t) => {
  const r = compile([
    { path: 'b.pol', text: 'policy "b" {\n  allow fs.reed\n}\n' },
    {
      path: 'a.pol',
      text:
        `${P('allow fs.read when resource.pth == "/"')}policy "q" { allow net.connect when resource.port == ` +
        `"1" }\n`,
    },
  ]);
  t.same(
    r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}:${d.code}`),
    [
      'a.pol:2:22:PCX_CHECK_UNKNOWN_ATTRIBUTE',
      'a.pol:4:54:PCX_CHECK_TYPE_MISMATCH',
      'b.pol:2:9:PCX_CHECK_UNKNOWN_ACTION',
    ],
  );
  t.equal(r.policy, undefined);
});

t.test('syntax errors: every one, file:line:col, stable codes, readable messages', async (t) => {
  const text = `policy "a" {
  allow net.connect when resource.host ==
}
policy b {}
let x = "\\q"
policy "c" scope planet "x" { }
role r { allow fs.read when (resource.path == "/" }
let y = "unterminated
action a.b { x string }
`;
  const ds = diags(text);
  t.same(
    ds.map((d) => [d.line, d.col, d.code]),
    [
      [3, 1, 'PCX_PARSE_EXPECTED_VALUE'],
      [4, 8, 'PCX_PARSE_EXPECTED_NAME'],
      [5, 11, 'PCX_PARSE_BAD_ESCAPE'],
      [6, 18, 'PCX_PARSE_EXPECTED_SCOPE'],
      [7, 51, 'PCX_PARSE_EXPECTED_RPAREN'],
      [8, 22, 'PCX_PARSE_UNTERMINATED_STRING'],
      [9, 16, 'PCX_PARSE_EXPECTED_COLON'],
    ],
  );
  t.match(ds[0]!.message, /expected a value after `==`, found `}`/);
  t.match(ds[1]!.message, /expected a policy name \(a string\) after `policy`, found `b`/);
  const shown = renderDiagnostic(ds[1]!, text);
  t.equal(
    shown,
    'c.pol:4:8: PCX_PARSE_EXPECTED_NAME: expected a policy name (a string) after `policy`, found `b`\n  policy b ' +
      '{}\n         ^',
  );
  const brace = diags('policy "p" scope global\n  allow fs.read\n');
  t.match(brace[0]!.message, /expected `\{` after the policy name and scope/);
  const junk = diags('polcy "p" {}\n');
  t.equal(junk[0]!.code, 'PCX_PARSE_EXPECTED_DECLARATION');
  t.match(junk[0]!.message, /found `polcy`/);
});

t.test('rule ids and sources', async (t) => {
  const r = compile([
    {
      path: 'ids.pol',
      text:
        'role top { allow fs.read }\npolicy "p" {\n  allow fs.write\n  role inner { allow fs.list\n allow ' +
        'fs.delete }\n  deny cmd.exec\n}\nrole top { allow tool.call }\n',
    },
  ]);
  const p = r.policy!;
  const ids = (action: string, resource: object) =>
    p
      .evaluate({ principal: { id: 'a', roles: ['top', 'inner'] }, action, resource })
      .reasons.map((x) => `${x.rule}@${x.source}`);
  t.same(ids('fs.read', { path: '/' }), ['role:top#1@ids.pol:1:12']);
  t.same(ids('fs.write', { path: '/' }), ['p#1@ids.pol:3:3']);
  t.same(ids('fs.list', { path: '/' }), ['p#2@ids.pol:4:16']);
  t.same(ids('fs.delete', { path: '/' }), ['p#3@ids.pol:5:2']);
  t.same(ids('cmd.exec', { command: 'x' }), ['p#4@ids.pol:6:3']);
  t.same(ids('tool.call', { tool: 'x' }), ['role:top#2@ids.pol:8:12'], 'top-level role bodies number across bodies');
  t.equal(p.ruleCount, 6);
});
