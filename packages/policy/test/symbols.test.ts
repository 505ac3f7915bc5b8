// The symbol index editors use: definitions and references across files, the innermost symbol at a
// position, descriptions that come from the checker's own role closure and action schema.
import t from 'tap';
import { policySymbols } from '../src/symbols.js';

const files = [
  { path: 'a.pol', text: 'let hosts = ["a.example", more]\nlet more = ["b.example"]\n' },
  {
    path: 'b.pol',
    text:
      'action app.deploy { env: string, replicas?: number }\n' +
      'role base { allow fs.read when resource.path matches "/w/**" }\n' +
      'role ops extends base { allow app.deploy when resource.env == "prod" }\n' +
      'policy "p" {\n  allow net.http when resource.host in hosts and "ops" in principal.roles\n' +
      '  deny net.* when context.session == "x"\n}\n',
  },
];

t.test('definitions and references of a constant span files', async (t) => {
  const s = policySymbols(files);
  t.same(s.definitions('constant', 'more'), [{ file: 'a.pol', line: 2, col: 5, endLine: 2, endCol: 9 }]);
  t.same(
    s.references('constant', 'hosts').map((r) => [r.file, r.line]),
    [['b.pol', 5]],
  );
  t.same(s.constants, ['hosts', 'more']);
  const o = s.at('b.pol', 5, 42)!;
  t.same([o.kind, o.name], ['constant', 'hosts']);
  t.equal(s.describe(o), 'let hosts = ["a.example", more]');
});

t.test('roles: closure in the description, extends and `in principal.roles` are references', async (t) => {
  const s = policySymbols(files);
  const ops = s.at('b.pol', 3, 7)!;
  t.same([ops.kind, ops.name, ops.definition], ['role', 'ops', true]);
  t.equal(s.describe(ops), 'role ops extends base — 1 body; inherits the rules of base');
  t.same(
    s.references('role', 'ops').map((r) => [r.line, r.col]),
    [[5, 51]],
    'the role named in a string tested against principal.roles',
  );
  t.same(
    s.references('role', 'base').map((r) => r.line),
    [3],
  );
  t.equal(
    s.describe({ kind: 'role', name: 'ghost', span: ops.span, definition: false }),
    'role "ghost" is not declared in this set',
  );
});

t.test('actions and attributes: wildcards expand, resource attributes are typed by the rule', async (t) => {
  const s = policySymbols(files);
  t.ok(s.actions.includes('app.deploy') && s.actions.includes('net.http'));
  const deploy = s.at('b.pol', 3, 32)!;
  t.same([deploy.kind, deploy.name], ['action', 'app.deploy']);
  t.equal(s.describe(deploy), 'action app.deploy — resource { env: string, required; replicas: number }');
  const wild = s.at('b.pol', 6, 9)!;
  t.equal(s.describe(wild), 'net.* — matches net.connect, net.http');
  const env = s.at('b.pol', 3, 50)!;
  t.same([env.kind, env.name, env.actions], ['attribute', 'resource.env', ['app.deploy']]);
  t.equal(s.describe(env), 'resource.env: string, required (in app.deploy)');
  t.same(
    s.definitions('attribute', 'resource.env').map((d) => d.line),
    [1],
  );
  t.equal(s.describe(s.at('b.pol', 6, 25)!), 'context.session: string — the session scope of the request');
  t.same([...s.resourceAttributes(['net.*']).keys()].sort(), ['host', 'ip', 'method', 'path', 'port', 'scheme']);
  t.equal(s.resourceAttributes(['net.*']).get('path'), 'path, required', 'only net.http has a path');
});

t.test('a file that does not parse contributes nothing, the others still do', async (t) => {
  const s = policySymbols([...files, { path: 'c.pol', text: 'let broken = \n' }]);
  t.same(s.constants, ['hosts', 'more']);
  t.equal(s.at('c.pol', 1, 5), undefined);
});
