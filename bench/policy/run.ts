/**
 * Policy decision benchmark: in-process decision latency and compile time of @portcullis/policy,
 * side by side in one run with Cedar (@cedar-policy/cedar-wasm, pre-parsed policy set) and
 * casbin, on equivalent policy sets of 10, 1,000, 10,000 and 100,000 rules.
 *
 * The policy set (the same meaning in all three): N-2 allow rules, each for one distinct
 * (principal, host) pair on net.connect, plus 2 denies on the resolved IP (private ranges,
 * cloud metadata). Every timed request hits exactly one allow rule and is checked against both
 * denies, so every engine does the full decision. Before timing, the three engines are checked
 * to agree on a mixed sample (hits, misses, denied addresses); a disagreement aborts the run.
 *
 * Ours is timed as a PEP would call it: a fresh, un-normalised request object per decision
 * (normalisation of host and IP included). Latency = time of a batch / batch size, batches
 * timed with process.hrtime.bigint after a warm-up, the engines sampled in interleaved rounds;
 * median and p99 are over the batch means.
 *
 * Run: node bench/run.mjs policy  (writes bench/results/policy.json and policy.svg)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { compile, type CompiledPolicy } from '@portcullis/policy';
import { writeReport, type Chart } from '../lib/report.js';

const require = createRequire(import.meta.url);
// cedar-wasm's Node build is CommonJS and loads its .wasm synchronously.
const cedar = require('@cedar-policy/cedar-wasm/nodejs') as typeof import('@cedar-policy/cedar-wasm');
const casbin = require('casbin') as typeof import('casbin');

const SIZES = [10, 1_000, 10_000, 100_000];
const PRIVATE_NETS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];
const METADATA = '169.254.169.254';
/** Time spent sampling one engine at one size (after warm-up), split into interleaved rounds. */
const SAMPLE_BUDGET_MS = 1_500;
const WARMUP_MS = 300;
const MAX_SAMPLES = 2_000;
/** A batch should take at least this long, so that the timer's own cost disappears. */
const MIN_BATCH_NS = 200_000;
/** Peers whose single decision takes longer than this are measured with few samples only. */
const SLOW_CALL_NS = 20e6;
/**
 * A peer is skipped at a size where, projected from its growth between the two previous sizes,
 * loading would take longer than this or one decision longer than MAX_PROJECTED_CALL_MS
 * (cedar-wasm's preparse grows super-linearly: a trial at 100,000 rules took 250 s).
 */
const MAX_PROJECTED_LOAD_MS = 30_000;
const MAX_PROJECTED_CALL_MS = 1_000;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

interface Latency {
  medianNs: number;
  p99Ns: number;
  samples: number;
  batch: number;
}
interface EngineResult {
  compileMs: number | null;
  latency: Latency | null;
  /** Why this engine was not measured at this size. */
  skipped?: string;
}
type Engine = 'portcullis' | 'cedar-wasm' | 'casbin';
const ENGINES: Engine[] = ['portcullis', 'cedar-wasm', 'casbin'];

// ---- the policy set, three ways -----------------------------------------------------------

const principalOf = (i: number): string => `agent-${i}`;
const hostOf = (i: number): string => `h${i}.svc${i % 97}.example.com`;

function oursText(n: number): string {
  const lines = [
    `let private_nets = [${PRIVATE_NETS.map((c) => JSON.stringify(c)).join(', ')}]`,
    'policy "bench" {',
    '  deny net.connect when resource.ip exists and resource.ip in private_nets because "private"',
    `  deny net.connect when resource.ip exists and resource.ip in ["${METADATA}"] because "metadata"`,
  ];
  for (let i = 0; i < n - 2; i++)
    lines.push(`  allow net.connect when principal.id == "${principalOf(i)}" and resource.host == "${hostOf(i)}"`);
  lines.push('}', '');
  return lines.join('\n');
}

function cedarText(n: number): string {
  const lines = [
    `forbid (principal, action == Action::"net.connect", resource) when { context has ip && ` +
      `(${PRIVATE_NETS.map((c) => `context.ip.isInRange(ip("${c}"))`).join(' || ')}) };`,
    `forbid (principal, action == Action::"net.connect", resource) when { context has ip && ` +
      `context.ip.isInRange(ip("${METADATA}/32")) };`,
  ];
  for (let i = 0; i < n - 2; i++)
    lines.push(
      `permit (principal == Agent::"${principalOf(i)}", action == Action::"net.connect", resource == ` +
        `Host::"${hostOf(i)}");`,
    );
  return lines.join('\n');
}

const CASBIN_MODEL =
  `[request_definition]
r = sub, obj, act, ip
[policy_definition]
p = sub, obj, act, eft
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = r.act == p.act && ((p.eft == "allow" && r.sub == p.sub && r.obj == p.obj) || (p.eft == "deny" && ipMatch(r.ip, ` +
  `p.obj)))
`;

function casbinCsv(n: number): string {
  const lines = [...PRIVATE_NETS.map((c) => `p, *, ${c}, net.connect, deny`), `p, *, ${METADATA}, net.connect, deny`];
  for (let i = 0; i < n - 2; i++) lines.push(`p, ${principalOf(i)}, ${hostOf(i)}, net.connect, allow`);
  return lines.join('\n') + '\n';
}

// ---- requests ----------------------------------------------------------------------------

interface Probe {
  rule: number;
  host: string;
  ip: string;
}

/** Random rule indices (a fixed-seed LCG, so runs are comparable), public IPs: each hits one allow. */
function probes(n: number, count: number): Probe[] {
  let seed = 0x2545f491;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const out: Probe[] = [];
  for (let k = 0; k < count; k++) {
    const rule = next() % (n - 2);
    // Upper-case some hosts so ours really normalises (the PEP passes what it got).
    const host = k % 4 === 0 ? hostOf(rule).toUpperCase() : hostOf(rule);
    out.push({ rule, host, ip: `93.184.${next() % 250}.${1 + (next() % 250)}` });
  }
  return out;
}

const oursRequest = (p: Probe): unknown => ({
  principal: { id: principalOf(p.rule) },
  action: 'net.connect',
  resource: { host: p.host, port: 443, ip: p.ip },
});

function cedarCall(p: Probe, id: string): Parameters<typeof cedar.statefulIsAuthorized>[0] {
  return {
    principal: { type: 'Agent', id: principalOf(p.rule) },
    action: { type: 'Action', id: 'net.connect' },
    // Cedar has no host normalisation: the peer gets the lower-cased name.
    resource: { type: 'Host', id: p.host.toLowerCase() },
    context: { ip: { __extn: { fn: 'ip', arg: p.ip } } },
    preparsedPolicySetId: id,
    entities: [],
  };
}

// ---- measurement -------------------------------------------------------------------------

/**
 * Times one engine. Engines are sampled in interleaved rounds (see measureAll) so that load from
 * other processes on a shared machine falls on all of them alike and the ratios stay fair.
 */
class Sampler {
  private k = 0;
  private readonly samples: number[] = [];
  readonly batch: number;
  private readonly maxSamples: number;

  constructor(
    private readonly call: (k: number) => void,
    private readonly probeCount: number,
  ) {
    // Warm-up (JIT, caches), then calibrate a batch size that takes at least MIN_BATCH_NS on the
    // warm code (timing the warm-up itself would count JIT compilation as per-call cost).
    const warmEnd = performance.now() + WARMUP_MS;
    do this.once();
    while (performance.now() < warmEnd);
    // The fastest of several short windows: a window in which the process was preempted (the
    // machine is shared) would otherwise make the batches too small.
    let perCall = Infinity;
    for (let w = 0; w < 10; w++) {
      let calls = 0;
      const t0 = process.hrtime.bigint();
      const calEnd = performance.now() + 2;
      do {
        this.once();
        calls++;
      } while (performance.now() < calEnd);
      perCall = Math.min(perCall, Number(process.hrtime.bigint() - t0) / calls);
    }
    this.batch = Math.max(1, Math.ceil(MIN_BATCH_NS / perCall));
    this.maxSamples = perCall > SLOW_CALL_NS ? 20 : MAX_SAMPLES;
  }

  private once(): void {
    this.call(this.k);
    this.k = this.k + 1 === this.probeCount ? 0 : this.k + 1;
  }

  /** Takes batch samples for about `ms` (at least one, at most this engine's share of maxSamples). */
  run(ms: number, share: number): void {
    const limit = Math.min(this.maxSamples, Math.ceil(this.maxSamples * share));
    const end = performance.now() + ms;
    do {
      const s = process.hrtime.bigint();
      for (let i = 0; i < this.batch; i++) this.once();
      this.samples.push(Number(process.hrtime.bigint() - s) / this.batch);
    } while (this.samples.length < limit && performance.now() < end);
  }

  result(): Latency {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    return { medianNs: q(0.5), p99Ns: q(0.99), samples: sorted.length, batch: this.batch };
  }
}

const ROUNDS = 5;

/** Samples every engine in ROUNDS interleaved rounds of SAMPLE_BUDGET_MS / ROUNDS each. */
function measureAll<E extends string>(
  calls: Partial<Record<E, (k: number) => void>>,
  probeCount: number,
): Partial<Record<E, Latency>> {
  const samplers = Object.entries(calls).map(([e, call]) => {
    gc();
    return [e as E, new Sampler(call as (k: number) => void, probeCount)] as const;
  });
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [, sampler] of samplers) {
      gc();
      sampler.run(SAMPLE_BUDGET_MS / ROUNDS, r / ROUNDS);
    }
  }
  return Object.fromEntries(samplers.map(([e, sampler]) => [e, sampler.result()])) as Partial<Record<E, Latency>>;
}

/** Wall time of fn in ms: the median of repeats while they fit in a small budget (one run if slow). */
function timeMs<T>(fn: () => T): { ms: number; value: T } {
  const times: number[] = [];
  let value!: T;
  const end = performance.now() + 1_000;
  do {
    gc();
    const s = process.hrtime.bigint();
    value = fn();
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  } while (times.length < 15 && performance.now() < end);
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, value };
}

/** Projects load time and decision latency at n from the growth between sizes a and b. */
function projectSkip(
  results: Record<string, Record<Engine, EngineResult>>,
  a: number,
  b: number,
  n: number,
  e: Engine,
): string | undefined {
  const ra = results[a]![e];
  const rb = results[b]![e];
  if (rb.skipped) return `(skipped at ${b.toLocaleString('en-US')} rules already)`;
  const grow = (x: number, y: number): number => y * (y / x) ** (Math.log(n / b) / Math.log(b / a));
  const load = grow(ra.compileMs!, rb.compileMs!);
  const call = grow(ra.latency!.medianNs, rb.latency!.medianNs) / 1e6;
  if (load > MAX_PROJECTED_LOAD_MS || call > MAX_PROJECTED_CALL_MS) {
    return (
      `(skipped: projected from ${a.toLocaleString('en-US')} and ${b.toLocaleString('en-US')} rules, loading ` +
      `would take ~${Math.round(load / 1000)} s and one decision ~${Math.round(call)} ms; limits ` +
      `${MAX_PROJECTED_LOAD_MS / 1000} s, ${MAX_PROJECTED_CALL_MS} ms)`
    );
  }
  return undefined;
}

function describe(r: EngineResult): string {
  if (r.skipped) return r.skipped;
  const l = r.latency!;
  return (
    `load ${r.compileMs!.toFixed(2)} ms, median ${(l.medianNs / 1000).toFixed(3)} µs, p99 ` +
    `${(l.p99Ns / 1000).toFixed(3)} µs (${l.samples} batches × ${l.batch})`
  );
}

function casbinVersion(): string {
  // casbin's exports map hides its package.json; read it next to the resolved entry point.
  const entry = require.resolve('casbin');
  const pkg = join(entry.slice(0, entry.lastIndexOf('/lib/')), 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

// ---- the run -----------------------------------------------------------------------------

function compileOurs(n: number): { ms: number; policy: CompiledPolicy } {
  const text = oursText(n);
  const { ms, value } = timeMs(() => compile([{ path: 'bench.pol', text }]));
  if (!value.policy)
    throw new Error(`our policy set of ${n} rules does not compile: ${JSON.stringify(value.diagnostics.slice(0, 3))}`);
  if (value.policy.ruleCount !== n) throw new Error(`expected ${n} rules, compiled ${value.policy.ruleCount}`);
  return { ms, policy: value.policy };
}

/** The three engines must agree before their speed means anything. */
function crossCheck(
  n: number,
  ours: CompiledPolicy,
  cedarId: string | null,
  enforcer: import('casbin').Enforcer | null,
): void {
  const sample = probes(n, 60);
  const cases: Probe[] = [
    ...sample,
    ...sample.slice(0, 10).map((p) => ({ ...p, ip: '10.1.2.3' })), // hit, but private: deny
    ...sample.slice(10, 20).map((p) => ({ ...p, ip: METADATA })), // hit, but metadata: deny
    ...sample.slice(20, 30).map((p) => ({ ...p, host: hostOf((p.rule + 1) % (n - 2)) })), // another rule's host: miss
  ];
  for (const p of cases) {
    const a = ours.evaluate(oursRequest(p)).decision;
    let b = a;
    if (cedarId !== null) {
      const r = cedar.statefulIsAuthorized(cedarCall(p, cedarId));
      if (r.type !== 'success') throw new Error(`cedar failed: ${JSON.stringify(r.errors)}`);
      b = r.response.decision;
    }
    const c = enforcer
      ? enforcer.enforceSync(principalOf(p.rule), p.host.toLowerCase(), 'net.connect', p.ip)
        ? 'allow'
        : 'deny'
      : a;
    if (a !== b || a !== c)
      throw new Error(
        `engines disagree at ${n} rules on ${JSON.stringify(p)}: portcullis ${a}, cedar ${b}, casbin ${c}`,
      );
  }
  const allowed = cases.filter((p) => ours.evaluate(oursRequest(p)).decision === 'allow').length;
  if (allowed !== sample.length)
    throw new Error(`expected exactly the ${sample.length} clean hits to be allowed, got ${allowed}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const results: Record<string, Record<Engine, EngineResult>> = {};
  // Instantiate cedar's wasm module before anything is timed (its first call pays for it).
  cedar.preparsePolicySet('warm-up', { staticPolicies: cedarText(3) });
  const PROBES = 4096;
  for (const [si, n] of SIZES.entries()) {
    const row = {} as Record<Engine, EngineResult>;
    results[n] = row;
    const ps = probes(n, PROBES);
    const skip = (e: Engine): string | undefined =>
      si >= 2 ? projectSkip(results, SIZES[si - 2]!, SIZES[si - 1]!, n, e) : undefined;

    const ours = compileOurs(n);
    let cedarId: string | null = null;
    const cedarSkip = skip('cedar-wasm');
    let cedarMs: number | null = null;
    if (!cedarSkip) {
      cedarId = `bench-${n}`;
      const r = timeMs(() => cedar.preparsePolicySet(cedarId!, { staticPolicies: cedarText(n) }));
      if (r.value.type !== 'success') throw new Error(`cedar rejected the policy set: ${JSON.stringify(r.value)}`);
      cedarMs = r.ms;
    }
    const casbinSkip = skip('casbin');
    let enforcer: import('casbin').Enforcer | null = null;
    let casbinMs: number | null = null;
    if (!casbinSkip) {
      const csv = casbinCsv(n);
      const s = process.hrtime.bigint();
      enforcer = await casbin.newEnforcer(casbin.newModelFromString(CASBIN_MODEL), new casbin.StringAdapter(csv));
      casbinMs = Number(process.hrtime.bigint() - s) / 1e6;
    }

    crossCheck(n, ours.policy, cedarId, enforcer);

    // Ours gets a fresh object per call, built inside the timed loop as a PEP builds it.
    const calls: Partial<Record<Engine, (k: number) => void>> = {
      portcullis: (k) => void ours.policy.evaluate(oursRequest(ps[k]!)),
    };
    if (cedarId !== null) calls['cedar-wasm'] = (k) => void cedar.statefulIsAuthorized(cedarCall(ps[k]!, cedarId!));
    if (enforcer !== null)
      calls.casbin = (k) =>
        void enforcer!.enforceSync(principalOf(ps[k]!.rule), ps[k]!.host.toLowerCase(), 'net.connect', ps[k]!.ip);
    const latency = measureAll(calls, PROBES);
    row.portcullis = { compileMs: ours.ms, latency: latency.portcullis! };
    row['cedar-wasm'] = cedarSkip
      ? { compileMs: null, latency: null, skipped: cedarSkip }
      : { compileMs: cedarMs, latency: latency['cedar-wasm']! };
    row.casbin = casbinSkip
      ? { compileMs: null, latency: null, skipped: casbinSkip }
      : { compileMs: casbinMs, latency: latency.casbin! };
    gc();
    for (const e of ENGINES) console.log(`${String(n).padStart(7)} rules  ${e.padEnd(11)} ${describe(row[e])}`);
  }

  const med = (n: number, e: Engine): number => results[n]![e].latency?.medianNs ?? NaN;
  const ratio = (e: Engine): Record<string, number | null> =>
    Object.fromEntries(SIZES.map((n) => [n, results[n]![e].latency ? med(n, e) / med(n, 'portcullis') : null]));
  const ratios = {
    cedarOverOursMedian: ratio('cedar-wasm'),
    casbinOverOursMedian: ratio('casbin'),
    ours100kOver10Median: med(100_000, 'portcullis') / med(10, 'portcullis'),
  };
  const targets = {
    'median <= 1 µs at 100,000 rules': {
      value: med(100_000, 'portcullis') / 1000,
      unit: 'µs',
      met: med(100_000, 'portcullis') <= 1000,
    },
    '100k within 1.3x of 10 rules': {
      value: ratios.ours100kOver10Median,
      unit: 'x',
      met: ratios.ours100kOver10Median <= 1.3,
    },
    '10k rules compile < 1 s': {
      value: results[10_000]!.portcullis.compileMs!,
      unit: 'ms',
      met: results[10_000]!.portcullis.compileMs! < 1000,
    },
    '>= 1000x faster than cedar-wasm at 1,000 rules': {
      value: ratios.cedarOverOursMedian[1000]!,
      unit: 'x',
      met: ratios.cedarOverOursMedian[1000]! >= 1000,
    },
  };
  console.log('\nratios', JSON.stringify(ratios, null, 2));
  console.log('targets', JSON.stringify(targets, null, 2));

  const skips = SIZES.flatMap((n) =>
    ENGINES.filter((e) => results[n]![e].skipped).map(
      (e) => `${e} at ${n.toLocaleString('en-US')} rules ${results[n]![e].skipped}`,
    ),
  );
  const categories = SIZES.map((n) => `${n.toLocaleString('en-US')} rules`);
  const series = (pick: (r: EngineResult) => number | null): Chart['series'] =>
    ENGINES.map((e) => ({ name: e, values: SIZES.map((n) => pick(results[n]![e])) }));
  const charts: Chart[] = [
    {
      title: 'Decision latency, median (µs, lower is better)',
      unit: 'µs',
      categories,
      log: true,
      series: series((r) => (r.latency ? r.latency.medianNs / 1000 : null)),
      note: [
        `At 1,000 rules portcullis is ` +
          `${Math.round(ratios.cedarOverOursMedian[1000] ?? NaN).toLocaleString('en-US')}× faster than cedar-wasm; ` +
          `portcullis at 100,000 rules takes ${ratios.ours100kOver10Median.toFixed(2)}× its time at 10 rules.`,
        ...skips,
      ].join(' '),
    },
    {
      title: 'Decision latency, p99 of batch means (µs)',
      unit: 'µs',
      categories,
      log: true,
      series: series((r) => (r.latency ? r.latency.p99Ns / 1000 : null)),
    },
    {
      title: 'Compile / load time (ms)',
      unit: 'ms',
      categories,
      log: true,
      series: series((r) => r.compileMs),
      note:
        `portcullis: compile() of the policy text (parse, check, build decision trees); cedar-wasm: ` +
        `preparsePolicySet; casbin: newEnforcer with a StringAdapter. Same policy meaning in all three: N-2 ` +
        `(principal, host) allow rules + 2 IP denies. Cedar and casbin get lower-cased hosts; portcullis ` +
        `normalises them itself, inside the timed call.`,
    },
  ];
  const out = writeReport(
    'policy',
    {
      description:
        'In-process decision latency and compile time vs. rule count; ours vs. cedar-wasm (pre-parsed) vs. casbin, ' +
        'same run, equivalent policies.',
      method: {
        sampleBudgetMs: SAMPLE_BUDGET_MS,
        rounds: ROUNDS,
        warmupMs: WARMUP_MS,
        minBatchNs: MIN_BATCH_NS,
        probes: PROBES,
        latency: 'batch time / batch size; median and p99 over batch means',
      },
      versions: { cedar: cedar.getCedarVersion(), casbin: casbinVersion() },
      results,
      ratios,
      targets,
      runSeconds: (Date.now() - started) / 1000,
    },
    charts,
  );
  console.log(`\nwrote ${out.json} and ${out.svg} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

await main();
