// Quick local timing (not the benchmark: bench/policy is). Checks the performance contract:
// median decision including request normalisation at 10 and 100,000 rules, and compile time.
//   npx tsx --conditions=portcullis-source packages/policy/scripts/timing.ts
import { compile } from '../src/index.js';

function policyText(n: number): string {
  const lines: string[] = ['policy "gen" {'];
  for (let i = 0; i < n; i++) {
    switch (i % 5) {
      case 0:
        lines.push(`  allow net.connect when resource.host == "h${i}.example.com" and resource.port == 443`);
        break;
      case 1:
        lines.push(`  allow net.connect when resource.host matches "**.d${i}.example.org"`);
        break;
      case 2:
        lines.push(`  allow fs.read when resource.path matches "/data/p${i}/**"`);
        break;
      case 3:
        lines.push(`  deny net.connect when resource.ip in ["10.${(i >> 8) & 255}.${i & 255}.0/24"]`);
        break;
      case 4:
        lines.push(`  allow tool.call when resource.tool == "tool${i}" and principal.team == "core"`);
        break;
    }
  }
  lines.push('}');
  return lines.join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(n: number): { compileMs: number; ns: number } {
  const text = policyText(n);
  const t0 = performance.now();
  const r = compile([{ path: 'gen.pol', text }]);
  const compileMs = performance.now() - t0;
  if (!r.policy) throw new Error(JSON.stringify(r.diagnostics.slice(0, 3)));
  const p = r.policy;
  const reqs = [
    {
      principal: { id: 'a', roles: ['dev'] },
      action: 'net.connect',
      resource: { host: 'h5.example.com', port: 443, ip: '8.8.8.8' },
      context: { project: 'alpha' },
    },
    { principal: { id: 'a' }, action: 'net.connect', resource: { host: 'x.d6.example.org', port: 443 } },
    { principal: { id: 'a' }, action: 'fs.read', resource: { path: '/data/p7/a/b.txt' } },
    { principal: { id: 'a', team: 'core' }, action: 'tool.call', resource: { tool: 'tool9' } },
  ];
  for (let i = 0; i < 200_000; i++) p.evaluate(reqs[i & 3]);
  const samples: number[] = [];
  for (let round = 0; round < 31; round++) {
    const k = 20_000;
    const s = process.hrtime.bigint();
    for (let i = 0; i < k; i++) p.evaluate(reqs[i & 3]);
    samples.push(Number(process.hrtime.bigint() - s) / k);
  }
  return { compileMs, ns: median(samples) };
}

const small = measure(10);
const ten = measure(10_000);
const big = measure(100_000);
console.log(`10 rules:      ${small.ns.toFixed(0)} ns/decision, compile ${small.compileMs.toFixed(1)} ms`);
console.log(`10,000 rules:  ${ten.ns.toFixed(0)} ns/decision, compile ${ten.compileMs.toFixed(0)} ms`);
console.log(
  `100,000 rules: ${big.ns.toFixed(0)} ns/decision, compile ${big.compileMs.toFixed(0)} ms; ratio to 10 rules ` +
    `${(big.ns / small.ns).toFixed(2)}x`,
);
