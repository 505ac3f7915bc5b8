// The performance contract, checked structurally (not with timings, which a shared CI machine
// cannot keep): the number of rules a decision looks at does not grow with rules that cannot
// match it — for every kind of index (host trie, path trie, CIDR trie, hash maps, roles, scopes).
import t from 'tap';
import { compile } from '../src/index.js';
import type { Engine } from '../src/engine.js';

function ruleSet(n: number): string {
  const out: string[] = ['policy "g" {'];
  for (let i = 0; i < n; i++) {
    out.push(`  allow net.connect when resource.host == "h${i}.example.com" and resource.port == 443`);
    out.push(`  allow net.http when resource.host matches "**.d${i}.example.org"`);
    out.push(`  allow fs.read when resource.path matches "/data/p${i}/**"`);
    out.push(`  deny net.connect when resource.ip exists and resource.ip in ["10.${(i >> 8) & 255}.${i & 255}.0/24"]`);
    out.push(`  allow tool.call when resource.tool == "tool${i}"`);
    out.push(`  allow cmd.exec when "r${i}" in principal.roles`);
    out.push(`  role role${i} { allow secret.read when resource.name == "s" }`);
    // The shared term comes first: the rule must be filed under its selective term.
    out.push(`  allow comms.send when resource.channel == "slack" and resource.to == "to${i}"`);
  }
  out.push('}');
  for (let i = 0; i < n; i++) out.push(`policy "p${i}" scope project "proj${i}" { allow fs.write }`);
  return out.join('\n');
}

const requests = [
  { principal: { id: 'a' }, action: 'net.connect', resource: { host: 'h5.example.com', port: 443, ip: '10.0.5.9' } },
  {
    principal: { id: 'a' },
    action: 'net.http',
    resource: { host: 'x.y.d6.example.org', port: 443, method: 'GET', path: '/' },
  },
  { principal: { id: 'a' }, action: 'fs.read', resource: { path: '/data/p7/a/b.txt' } },
  { principal: { id: 'a' }, action: 'tool.call', resource: { tool: 'tool9' } },
  { principal: { id: 'a', roles: ['r3', 'zz'] }, action: 'cmd.exec', resource: { command: 'x' } },
  { principal: { id: 'a', roles: ['role4'] }, action: 'secret.read', resource: { name: 's' } },
  { principal: { id: 'a' }, action: 'fs.write', resource: { path: '/x' }, context: { project: 'proj8' } },
  { principal: { id: 'a' }, action: 'comms.send', resource: { channel: 'slack', to: 'to3' } },
];

t.test('candidates per decision do not grow with the rule count', async (t) => {
  const small = compile([{ path: 's.pol', text: ruleSet(10) }]).policy!;
  const large = compile([{ path: 'l.pol', text: ruleSet(1500) }]).policy!;
  t.equal(large.ruleCount, 1500 * 9);
  const engine = (p: unknown) => (p as { engine: Engine }).engine;
  for (const req of requests) {
    const a = small.evaluate(req);
    const ca = engine(small).candidates;
    const b = large.evaluate(req);
    const cb = engine(large).candidates;
    t.equal(a.decision, b.decision, `${req.action}: same decision`);
    t.ok(a.reasons.length > 0, `${req.action}: the request hits a rule`);
    t.equal(cb, ca, `${req.action}: ${cb} candidates at 13,500 rules, ${ca} at 90`);
    t.ok(cb <= 2, `${req.action}: at most 2 candidates`);
  }
});
