// The evaluator's fast paths must decide exactly as the general ones: the residual
// `resource.x == literal` kept as data in the rule (not a closure), hash buckets holding one
// rule directly or several in a list, and the ASCII host fast paths of normalisation.
import t from 'tap';
import { compile } from '../src/index.js';
import type { CompiledPolicy } from '../src/index.js';
import { normalizeHost } from '../src/values.js';

function policy(text: string): CompiledPolicy {
  const r = compile([{ path: 'p.pol', text }]);
  if (!r.policy) throw new Error(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.code} ${d.message}`).join('\n'));
  return r.policy;
}

const rq = (action: string, resource: object, id = 'a') => ({ principal: { id }, action, resource });
const ids = (p: CompiledPolicy, req: unknown) => p.evaluate(req).reasons.map((r) => r.rule);

t.test('a residual equality on a resource attribute, checked as data', async (t) => {
  // Each rule is filed under principal.id (the first of two equally selective conjuncts), so
  // its residual is the resource equality.
  const p = policy(`policy "r" {
  allow net.connect, fs.read when principal.id == "a" and resource.port == 443
  allow net.connect when principal.id == "b" and resource.host == "x.example.com"
  allow net.connect when principal.id == "b" and resource.host == "y.example.com"
  allow tool.call when principal.id == "c" and resource.tool == "t" and resource.network == true
}`);
  t.same(ids(p, rq('net.connect', { host: 'q.com', port: 443 })), ['r#1']);
  t.same(ids(p, rq('net.connect', { host: 'q.com', port: 444 })), [], 'a different number');
  t.same(ids(p, rq('fs.read', { path: '/x' })), [], 'an attribute the action does not have is missing: false');
  t.same(
    ids(p, rq('net.connect', { host: 'X.Example.COM', port: 1 }, 'b')),
    ['r#2'],
    'compared after normalisation; two rules under one key',
  );
  t.same(ids(p, rq('net.connect', { host: 'y.example.com', port: 1 }, 'b')), ['r#3']);
  t.same(ids(p, rq('net.connect', { host: 'z.example.com', port: 1 }, 'b')), []);
  t.same(ids(p, rq('tool.call', { tool: 't', network: true }, 'c')), ['r#4'], 'a data test followed by a closure');
  t.same(ids(p, rq('tool.call', { tool: 't', network: false }, 'c')), [], 'the closure still runs after the data test');
  t.same(ids(p, rq('tool.call', { tool: 'u', network: true }, 'c')), []);
});

t.test('host fast paths give what the general normalisation gives', async (t) => {
  t.equal(normalizeHost('api.github.com'), 'api.github.com');
  t.equal(normalizeHost('API.GitHub.Com'), 'api.github.com');
  t.equal(normalizeHost('A_B-1.x'), 'a_b-1.x');
  t.equal(normalizeHost('Example.COM.'), 'example.com', 'a trailing dot (general path)');
  t.equal(
    normalizeHost('XN--BCHER-KVA.example'),
    'xn--bcher-kva.example',
    'an upper-case punycode label is still validated',
  );
  t.equal(normalizeHost('xn--a.example'), undefined, 'an invalid punycode label is malformed');
  t.equal(normalizeHost('XN--A.example'), undefined, 'also when upper-case');
  t.equal(normalizeHost('a--b.example'), 'a--b.example', 'a double hyphen that is not punycode');
  t.equal(normalizeHost('A..B'), undefined, 'an empty label');
  t.equal(normalizeHost('.A'), undefined);
  t.equal(normalizeHost('Bücher.Example'), 'xn--bcher-kva.example', 'IDN (general path)');
});
