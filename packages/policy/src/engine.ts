/**
 * Decision trees and the evaluator.
 *
 * THE PERFORMANCE CONTRACT: the cost of a decision must not grow with rules that cannot match
 * it. Rules are indexed by action (wildcards expanded against the schema at compile time), then
 * scope (global, or the project/blueprint/session value), then role (or none), then by one
 * discriminating conjunct of their condition: a label trie for host globs, a segment trie for
 * path globs, a CIDR trie for ip membership, a hash map for equality/membership on scalars.
 * Rules with no discriminating conjunct sit in a residual bucket of their leaf. A decision walks
 * only the leaves its request selects and runs only the remaining conjuncts of the candidates.
 *
 * Hot-path notes: a candidate's common residual test (`resource.x == literal`) is data in the
 * rule, other conditions are closures built once; a key with one rule maps to it directly;
 * candidates are de-duplicated with a per-decision stamp (no Set per request); reasons are
 * frozen objects shared by decisions.
 */
import type { Decision, ErrorInfo, Reason } from '@portcullis/protocol';
import type { EffectName } from './ast.js';
import type { CeilingIR, CondIR, Model, Ref, RuleIR, Scalar } from './model.js';
import type { NormalRequest } from './request.js';
import { normalizeRequest, reader } from './request.js';
import { segmentGlob, stringGlob } from './glob.js';
import { type Cidr, cidrContains, formatIp, type Ip, ipBit, ipEqual } from '@portcullis/protocol/ip';

type Test = (q: NormalRequest) => boolean;
type Getter = (q: NormalRequest) => unknown;

/**
 * A compiled rule: the fields a decision touches, in one small object. Decisions on large sets
 * are bound by cache and TLB misses on cold per-rule objects, not by instructions: a hit used to
 * chase list → rule → closure → context → getter → context → literal; now it is rule → literal.
 */
export class CRule {
  /** The decision that last visited this rule (de-duplication without a Set per request). */
  stamp = 0;
  constructor(
    readonly ir: RuleIR,
    readonly effect: EffectName,
    readonly ordinal: number,
    readonly reason: Reason,
    /**
     * The most common residual conjunct, `resource.<attr> == literal`, kept as data and checked
     * inline by the evaluator rather than through a closure: global slot of the attribute, or
     * -1 when the first residual conjunct is not of that form.
     */
    readonly eqSlot: number,
    readonly eqValue: Scalar | undefined,
    /** The remaining residual conjuncts, in source order (null: none left). */
    readonly rest: Test | null,
  ) {}

  /** True when the residual conjuncts hold (the index position implies the discriminator). */
  holds(q: NormalRequest): boolean {
    if (this.eqSlot >= 0) {
      const i = q.schema.local[this.eqSlot]!;
      // Not declared by the action (-1), missing (undefined) or of another type: never ===
      // the literal, so false, as the closure compileCond builds (precise rules 9, 10).
      if (i < 0 || q.res[i] !== this.eqValue) return false;
    }
    return this.rest === null || this.rest(q);
  }
}

// ---- conditions → closures -------------------------------------------------------------------

export function getter(ref: Ref): Getter {
  switch (ref.root) {
    case 'resource': {
      const slot = ref.slot;
      return (q) => {
        const i = q.schema.local[slot]!;
        return i < 0 ? undefined : q.res[i];
      };
    }
    case 'action':
      return (q) => q.action;
    case 'principal': {
      if (ref.name === 'id') return (q) => q.id;
      if (ref.name === 'roles') return (q) => q.roles;
      const read = reader(ref.name);
      return (q) => read(q.principal);
    }
    case 'context': {
      const name = ref.name;
      if (name === 'project') return (q) => q.project;
      if (name === 'blueprint') return (q) => q.blueprint;
      if (name === 'session') return (q) => q.session;
      const read = reader(name);
      return (q) => read(q.context);
    }
  }
}

function isScalar(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean';
}

/** Dynamic values compare only within one JSON type (=== does exactly that for scalars). */
function listHas(list: unknown, v: unknown): boolean {
  if (!Array.isArray(list)) return false;
  for (let i = 0; i < list.length; i++) if (list[i] === v) return true;
  return false;
}

export function compileCond(c: CondIR): Test {
  switch (c.k) {
    case 'true':
      return () => true;
    case 'and': {
      const parts = c.args.map(compileCond);
      if (parts.length === 2) {
        const [a, b] = parts as [Test, Test];
        return (q) => a(q) && b(q);
      }
      return (q) => {
        for (let i = 0; i < parts.length; i++) if (!parts[i]!(q)) return false;
        return true;
      };
    }
    case 'or': {
      const parts = c.args.map(compileCond);
      return (q) => {
        for (let i = 0; i < parts.length; i++) if (parts[i]!(q)) return true;
        return false;
      };
    }
    case 'not': {
      const a = compileCond(c.arg);
      return (q) => !a(q);
    }
    case 'exists': {
      const g = getter(c.ref);
      return (q) => g(q) !== undefined;
    }
    case 'truthy': {
      const g = getter(c.ref);
      return (q) => g(q) === true;
    }
    case 'eq': {
      const g = getter(c.ref);
      if (c.ip) {
        const ip = c.ip;
        return c.neg
          ? (q) => {
              const v = g(q) as Ip | undefined;
              return v !== undefined && !ipEqual(ip, v);
            }
          : (q) => {
              const v = g(q) as Ip | undefined;
              return v !== undefined && ipEqual(ip, v);
            };
      }
      const want = c.value;
      const t = typeof want;
      // Missing or of another JSON type: false for both == and != (precise rules 9, 10).
      return c.neg
        ? (q) => {
            const v = g(q);
            return typeof v === t && v !== want;
          }
        : (q) => g(q) === want;
    }
    case 'cmp':
      return compileCmp(getter(c.ref), c.op, c.value);
    case 'in': {
      const g = getter(c.ref);
      if (c.cidrs) {
        const cidrs = c.cidrs;
        return (q) => {
          const v = g(q) as Ip | undefined;
          if (v === undefined) return false;
          for (const cd of cidrs) if (cidrContains(cd, v)) return true;
          return false;
        };
      }
      const set = new Set<unknown>(c.values);
      return (q) => {
        const v = g(q);
        return isScalar(v) && set.has(v);
      };
    }
    case 'contains': {
      const g = getter(c.ref);
      const want = c.value;
      return (q) => listHas(g(q), want);
    }
    case 'matches': {
      const g = getter(c.ref);
      const t = c.ref.type;
      const ms = c.globs.map((x) => (t === 'host' ? hostGlobTest(x) : t === 'path' ? pathGlobTest(x) : stringGlob(x)));
      return (q) => {
        const v = g(q);
        if (typeof v !== 'string') return false;
        for (let i = 0; i < ms.length; i++) if (ms[i]!(v)) return true;
        return false;
      };
    }
  }
}

function compileCmp(g: Getter, op: '<' | '<=' | '>' | '>=', n: number): Test {
  switch (op) {
    case '<':
      return (q) => {
        const v = g(q);
        return typeof v === 'number' && v < n;
      };
    case '<=':
      return (q) => {
        const v = g(q);
        return typeof v === 'number' && v <= n;
      };
    case '>':
      return (q) => {
        const v = g(q);
        return typeof v === 'number' && v > n;
      };
    case '>=':
      return (q) => {
        const v = g(q);
        return typeof v === 'number' && v >= n;
      };
  }
}

// ---- tries -----------------------------------------------------------------------------------

/** A trie over labels (hosts, reversed: TLD first) or segments (paths): `*` one, `**` zero or more. */
class Trie {
  kids: Map<string, Trie> | undefined;
  star: Trie | undefined;
  dstar: Trie | undefined;
  /** Segments with `*` inside (`*.txt`): tested one by one (paths only). */
  globs: { src: string; test: (s: string) => boolean; node: Trie }[] | undefined;
  rules: CRule[] | undefined;

  insert(parts: readonly string[], rule: CRule, segmentGlobs: boolean): void {
    let node: Trie = this;
    for (const p of parts) {
      if (p === '*') node = node.star ??= new Trie();
      else if (p === '**') node = node.dstar ??= new Trie();
      else if (segmentGlobs && p.includes('*')) {
        node.globs ??= [];
        let g = node.globs.find((x) => x.src === p);
        if (!g) node.globs.push((g = { src: p, test: segmentGlob(p), node: new Trie() }));
        node = g.node;
      } else {
        node.kids ??= new Map();
        let k = node.kids.get(p);
        if (!k) node.kids.set(p, (k = new Trie()));
        node = k;
      }
    }
    (node.rules ??= []).push(rule);
  }

  /** Calls visit for every rule whose pattern matches parts[i..]. */
  walk(parts: readonly string[], i: number, visit: (r: CRule) => void): void {
    if (this.dstar !== undefined) for (let j = i; j <= parts.length; j++) this.dstar.walk(parts, j, visit);
    if (i === parts.length) {
      if (this.rules !== undefined) for (const r of this.rules) visit(r);
      return;
    }
    const p = parts[i]!;
    if (this.kids !== undefined) {
      const k = this.kids.get(p);
      if (k !== undefined) k.walk(parts, i + 1, visit);
    }
    if (this.star !== undefined) this.star.walk(parts, i + 1, visit);
    if (this.globs !== undefined) for (const g of this.globs) if (g.test(p)) g.node.walk(parts, i + 1, visit);
  }
}

export function hostParts(h: string): string[] {
  return h.split('.').reverse();
}
export function pathParts(p: string): string[] {
  return p === '/' ? [] : p.slice(1).split('/');
}

function hostGlobTest(glob: string): (h: string) => boolean {
  const t = new Trie();
  t.insert(hostParts(glob), {} as CRule, false);
  return (h) => {
    let hit = false;
    t.walk(hostParts(h), 0, () => (hit = true));
    return hit;
  };
}

function pathGlobTest(glob: string): (p: string) => boolean {
  const t = new Trie();
  t.insert(pathParts(glob), {} as CRule, true);
  return (p) => {
    let hit = false;
    t.walk(pathParts(p), 0, () => (hit = true));
    return hit;
  };
}

/** A binary trie over address bits; separate roots for IPv4 and IPv6. */
class IpTrie {
  z: IpTrie | undefined;
  o: IpTrie | undefined;
  rules: CRule[] | undefined;

  insert(c: Cidr, rule: CRule): void {
    let node: IpTrie = this;
    for (let i = 0; i < c.bits; i++)
      node = ipBit(c.ip, i) === 0 ? (node.z ??= new IpTrie()) : (node.o ??= new IpTrie());
    (node.rules ??= []).push(rule);
  }

  walk(ip: Ip, visit: (r: CRule) => void): void {
    const width = ip.width;
    let node: IpTrie | undefined = this;
    for (let i = 0; node !== undefined; i++) {
      if (node.rules !== undefined) for (const r of node.rules) visit(r);
      if (i === width) break;
      node = ipBit(ip, i) === 0 ? node.z : node.o;
    }
  }
}

// ---- leaves ----------------------------------------------------------------------------------

/**
 * Hash buckets hold the rule itself when it is alone under its key (the common case: one
 * pointer chase fewer per decision than a one-element list).
 */
type Bucket = CRule | CRule[];
interface EqIndex {
  get: Getter;
  map: Map<unknown, Bucket>;
}
interface TrieIndex {
  get: Getter;
  trie: Trie;
  host: boolean;
}
interface IpIndex {
  get: Getter;
  v4: IpTrie;
  v6: IpTrie;
}
/** `VALUE in LIST-ATTRIBUTE` (e.g. "lead" in principal.roles): probed with each element. */
interface MemberIndex {
  get: Getter;
  map: Map<unknown, Bucket>;
}

function addTo(map: Map<unknown, Bucket>, key: unknown, rule: CRule): void {
  const b = map.get(key);
  if (b === undefined) map.set(key, rule);
  else if (b instanceof CRule) map.set(key, [b, rule]);
  else b.push(rule);
}

function visitBucket(b: Bucket, visit: (r: CRule) => void): void {
  if (b instanceof CRule) visit(b);
  else for (let i = 0; i < b.length; i++) visit(b[i]!);
}

class Leaf {
  eq = new Map<string, EqIndex>();
  tries = new Map<string, TrieIndex>();
  ips = new Map<string, IpIndex>();
  members = new Map<string, MemberIndex>();
  memberList: MemberIndex[] = [];
  residual: CRule[] = [];
  /** Every rule of the leaf, for explain (which lists all rules whose action, scope and role apply). */
  all: CRule[] = [];
  eqList: EqIndex[] = [];
  trieList: TrieIndex[] = [];
  ipList: IpIndex[] = [];

  add(rule: CRule, disc: CondIR | undefined): void {
    this.all.push(rule);
    if (disc === undefined) {
      this.residual.push(rule);
      return;
    }
    const ref = (disc as { ref: Ref }).ref;
    const key = `${ref.root}.${ref.name}`;
    if ((disc.k === 'in' && disc.cidrs) || (disc.k === 'eq' && disc.ip)) {
      let ix = this.ips.get(key);
      if (!ix) this.ips.set(key, (ix = { get: getter(ref), v4: new IpTrie(), v6: new IpTrie() }));
      const cidrs: Cidr[] = disc.k === 'eq' ? [{ ip: disc.ip!, bits: disc.ip!.width }] : disc.cidrs!;
      for (const c of cidrs) (c.ip.family === 4 ? ix.v4 : ix.v6).insert(c, rule);
      return;
    }
    if (disc.k === 'contains') {
      let ix = this.members.get(key);
      if (!ix) this.members.set(key, (ix = { get: getter(ref), map: new Map() }));
      addTo(ix.map, disc.value, rule);
      return;
    }
    if (disc.k === 'matches') {
      const host = ref.type === 'host';
      let ix = this.tries.get(key);
      if (!ix) this.tries.set(key, (ix = { get: getter(ref), trie: new Trie(), host }));
      for (const g of disc.globs) ix.trie.insert(host ? hostParts(g) : pathParts(g), rule, !host);
      return;
    }
    let ix = this.eq.get(key);
    if (!ix) this.eq.set(key, (ix = { get: getter(ref), map: new Map() }));
    const values = disc.k === 'eq' ? [disc.value] : (disc as { values: unknown[] }).values;
    for (const v of values) addTo(ix.map, v, rule);
  }

  seal(): void {
    this.eqList = [...this.eq.values()];
    this.trieList = [...this.tries.values()];
    this.ipList = [...this.ips.values()];
    this.memberList = [...this.members.values()];
  }

  probe(q: NormalRequest, visit: (r: CRule) => void, everything: boolean): void {
    if (everything) {
      for (let i = 0; i < this.all.length; i++) visit(this.all[i]!);
      return;
    }
    for (let i = 0; i < this.eqList.length; i++) {
      const ix = this.eqList[i]!;
      const v = ix.get(q);
      if (v === undefined) continue;
      const b = ix.map.get(v);
      if (b !== undefined) visitBucket(b, visit);
    }
    for (let i = 0; i < this.trieList.length; i++) {
      const ix = this.trieList[i]!;
      const v = ix.get(q);
      if (typeof v === 'string') ix.trie.walk(ix.host ? hostParts(v) : pathParts(v), 0, visit);
    }
    for (let i = 0; i < this.ipList.length; i++) {
      const ix = this.ipList[i]!;
      const v = ix.get(q) as Ip | undefined;
      if (v !== undefined) (v.family === 4 ? ix.v4 : ix.v6).walk(v, visit);
    }
    for (let i = 0; i < this.memberList.length; i++) {
      const ix = this.memberList[i]!;
      const v = ix.get(q);
      if (!Array.isArray(v)) continue;
      for (let j = 0; j < v.length; j++) {
        const b = ix.map.get(v[j]);
        if (b !== undefined) visitBucket(b, visit);
      }
    }
    for (let i = 0; i < this.residual.length; i++) visit(this.residual[i]!);
  }
}

/** Index keys a conjunct would file its rule under, or undefined when it cannot be indexed. */
function indexKeys(c: CondIR): string[] | undefined {
  if (c.k === 'true' || !('ref' in c)) return undefined;
  const ref = `${c.ref.root}.${c.ref.name}`;
  // Scope values are indexed already; a condition on them discriminates nothing new.
  if (c.ref.root === 'context' && (c.ref.name === 'project' || c.ref.name === 'blueprint' || c.ref.name === 'session'))
    return undefined;
  if (c.k === 'eq' && !c.neg) return [c.ip ? `${ref}|ip|${formatIp(c.ip)}` : `${ref}|${typeof c.value}|${c.value}`];
  if (c.k === 'in' && c.values.length > 0 && c.values.length <= 64)
    return c.values.map((v) => `${ref}|${typeof v}|${v}`);
  if (c.k === 'contains') return [`${ref}|has|${typeof c.value}|${c.value}`];
  if (c.k === 'matches' && (c.ref.type === 'host' || c.ref.type === 'path'))
    return c.globs.map((g) => `${ref}|glob|${g}`);
  return undefined;
}

/**
 * Picks the conjunct a rule is indexed by: the one whose index keys are shared by the fewest
 * rules of the set (`count`), so that `port == 443 and host == "x"` is filed under its host,
 * not under a port that thousands of rules share. -1: no indexable conjunct (residual).
 */
function discriminator(conjuncts: CondIR[], count: (key: string) => number): number {
  let best = -1;
  let bestCost = Infinity;
  for (let i = 0; i < conjuncts.length; i++) {
    const keys = indexKeys(conjuncts[i]!);
    if (keys === undefined) continue;
    let cost = 0;
    for (const k of keys) cost += count(k);
    if (cost < bestCost) {
      best = i;
      bestCost = cost;
    }
  }
  return best;
}

export function conjunctsOf(c: CondIR): CondIR[] {
  return c.k === 'and' ? c.args : c.k === 'true' ? [] : [c];
}

export function makeCRule(
  ir: RuleIR,
  count: (key: string) => number = () => 1,
): { rule: CRule; disc: CondIR | undefined } {
  const cs = conjunctsOf(ir.cond);
  const d = discriminator(cs, count);
  const restIR = cs.filter((_, i) => i !== d);
  // Only the first residual conjunct becomes data: conjuncts keep their source order, so a
  // request whose attribute reads throw fails the same way as before.
  const first = restIR[0];
  const eq =
    first !== undefined && first.k === 'eq' && !first.neg && first.ip === undefined && first.ref.root === 'resource'
      ? { slot: first.ref.slot, value: first.value }
      : undefined;
  const tests = (eq === undefined ? restIR : restIR.slice(1)).map(compileCond);
  const rest: Test | null =
    tests.length === 0
      ? null
      : tests.length === 1
        ? tests[0]!
        : (q) => {
            for (let i = 0; i < tests.length; i++) if (!tests[i]!(q)) return false;
            return true;
          };
  const rule = new CRule(ir, ir.effect, ir.ordinal, ir.reason, eq?.slot ?? -1, eq?.value, rest);
  return { rule, disc: d >= 0 ? cs[d] : undefined };
}

class RoleSplit {
  none: Leaf | undefined;
  byRole = new Map<string, Leaf>();
  leaf(role: string | undefined): Leaf {
    if (role === undefined) return (this.none ??= new Leaf());
    let l = this.byRole.get(role);
    if (!l) this.byRole.set(role, (l = new Leaf()));
    return l;
  }
}

class ActionIndex {
  global = new RoleSplit();
  project = new Map<string, RoleSplit>();
  blueprint = new Map<string, RoleSplit>();
  session = new Map<string, RoleSplit>();
  split(kind: string, value: string | undefined): RoleSplit {
    if (kind === 'global') return this.global;
    const m = kind === 'project' ? this.project : kind === 'blueprint' ? this.blueprint : this.session;
    let s = m.get(value!);
    if (!s) m.set(value!, (s = new RoleSplit()));
    return s;
  }
}

// ---- the compiled set ------------------------------------------------------------------------

export interface GrantRule {
  rule: CRule;
  actions: Set<string>;
  full: Test;
  ir: RuleIR;
  /**
   * The lease ceiling, intersected at decision time: true when a ceiling rule of the lease's
   * issuer applies to the request too. Conditions are bounded soundly this way, without
   * deciding whether one condition implies another.
   */
  bound: Test;
  /** The ceiling rules behind `bound` (for the reference evaluator). */
  ceiling: RuleIR[];
}

/** One lease ceiling, compiled: per action, the rules (and their conditions) leases may use. */
export class CeilingIndex {
  readonly tests = new Map<string, Test[]>();
  readonly rules = new Map<string, RuleIR[]>();
  constructor(readonly ir: CeilingIR) {
    for (const r of ir.rules) {
      const test = compileCond(r.cond);
      for (const a of r.actions) {
        const ts = this.tests.get(a);
        if (ts) {
          ts.push(test);
          this.rules.get(a)!.push(r);
        } else {
          this.tests.set(a, [test]);
          this.rules.set(a, [r]);
        }
      }
    }
  }
}

/** The bound of a lease rule under several ceilings: any of their rules for the request's action. */
export function ceilingBound(ceilings: readonly CeilingIndex[], actions: readonly string[]): GrantRule['bound'] {
  const byAction = new Map<string, Test[]>();
  for (const a of actions)
    byAction.set(
      a,
      ceilings.flatMap((c) => c.tests.get(a) ?? []),
    );
  return (q) => {
    const tests = byAction.get(q.action);
    if (tests === undefined) return false;
    for (let i = 0; i < tests.length; i++) if (tests[i]!(q)) return true;
    return false;
  };
}

let epoch = 0;

export interface ExplainEntry {
  rule: string;
  effect: EffectName;
  source: string;
  matched: boolean;
  failed: string[];
}
type TraceEntry = ExplainEntry & { ordinal: number };

export class Engine {
  private readonly byAction = new Map<string, ActionIndex>();
  readonly ruleCount: number;
  /** Issuer (key id or iss name) → its lease ceiling. */
  readonly ceilings = new Map<string, CeilingIndex>();
  // Scratch lists reused by every decision (evaluation is synchronous and never re-entered).
  private readonly denies: CRule[] = [];
  private readonly asks: CRule[] = [];
  private readonly allows: CRule[] = [];
  private q!: NormalRequest;
  /** Rules the last decision looked at (tests check that it does not grow with the set). */
  candidates = 0;
  private trace: TraceEntry[] | undefined;
  private readonly visit = (r: CRule): void => {
    if (r.stamp === epoch) return;
    r.stamp = epoch;
    this.candidates++;
    if (this.trace !== undefined) {
      // Explain visits every rule of the selected leaves, so it checks whole conditions.
      const e = explainRule(r, this.q);
      this.trace.push(e);
      if (!e.matched) return;
    } else if (!r.holds(this.q)) return;
    (r.effect === 'deny' ? this.denies : r.effect === 'ask' ? this.asks : this.allows).push(r);
  };

  constructor(
    readonly model: Model,
    readonly version: string,
  ) {
    this.ruleCount = model.rules.length;
    for (const c of model.ceilings) {
      const ix = new CeilingIndex(c);
      for (const issuer of c.issuers) this.ceilings.set(issuer, ix);
    }
    // How many rules share each index key (per action), to pick each rule's discriminator.
    const counts = new Map<string, number>();
    for (const ir of model.rules) {
      for (const c of conjunctsOf(ir.cond)) {
        for (const k of indexKeys(c) ?? [])
          for (const a of ir.actions) counts.set(`${a}|${k}`, (counts.get(`${a}|${k}`) ?? 0) + 1);
      }
    }
    for (const ir of model.rules) {
      const { rule, disc } = makeCRule(ir, (k) => {
        let n = 0;
        for (const a of ir.actions) n += counts.get(`${a}|${k}`) ?? 0;
        return n;
      });
      for (const a of ir.actions) {
        let ai = this.byAction.get(a);
        if (!ai) this.byAction.set(a, (ai = new ActionIndex()));
        const leaf = ai.split(ir.scope.kind, ir.scope.value).leaf(ir.role);
        leaf.add(rule, disc);
      }
    }
    for (const ai of this.byAction.values()) {
      const splits = [ai.global, ...ai.project.values(), ...ai.blueprint.values(), ...ai.session.values()];
      for (const s of splits) for (const l of [s.none, ...s.byRole.values()]) if (l) l.seal();
    }
  }

  private probeSplit(s: RoleSplit | undefined, q: NormalRequest): void {
    if (s === undefined) return;
    if (s.none !== undefined) s.none.probe(q, this.visit, this.trace !== undefined);
    if (s.byRole.size === 0) return;
    const roles = q.roles;
    for (let i = 0; i < roles.length; i++) {
      const l = s.byRole.get(roles[i]!);
      if (l !== undefined) l.probe(q, this.visit, this.trace !== undefined);
    }
  }

  private collect(q: NormalRequest): void {
    // Truncating an array is not free: only touch the lists the last decision filled.
    if (this.denies.length !== 0) this.denies.length = 0;
    if (this.asks.length !== 0) this.asks.length = 0;
    if (this.allows.length !== 0) this.allows.length = 0;
    // A float counter: exact up to 2^53 decisions, so a stale stamp can never equal a new epoch.
    epoch++;
    this.candidates = 0;
    this.q = q;
    const ai = this.byAction.get(q.action);
    if (ai === undefined) return;
    this.probeSplit(ai.global, q);
    if (q.project !== undefined && ai.project.size > 0) this.probeSplit(ai.project.get(q.project), q);
    if (q.blueprint !== undefined && ai.blueprint.size > 0) this.probeSplit(ai.blueprint.get(q.blueprint), q);
    if (q.session !== undefined && ai.session.size > 0) this.probeSplit(ai.session.get(q.session), q);
  }

  normalize(request: unknown): NormalRequest | ErrorInfo {
    return normalizeRequest(request, this.model.schema, this.model.roleClosure);
  }

  evaluate(request: unknown, grants: readonly GrantSet[] | undefined, explain?: ExplainEntry[]): Decision {
    try {
      const q = this.normalize(request);
      if ('code' in q) return { decision: 'deny', reasons: [], policy_version: this.version, error: q };
      if (explain) this.trace = [];
      this.collect(q);
      if (explain) explain.push(...this.trace!.sort((a, b) => a.ordinal - b.ordinal).map(({ ordinal: _, ...e }) => e));
      return decide(this.denies, this.asks, this.allows, q, grants, this.version);
    } catch {
      // Plain JSON never gets here: only a host object whose property reads throw (a Proxy, a
      // getter) does. Fail closed, and never throw to the caller.
      return {
        decision: 'deny',
        reasons: [],
        policy_version: this.version,
        error: { code: 'PCX_REQ_INVALID', message: 'the request could not be read as JSON data' },
      };
    } finally {
      this.trace = undefined;
    }
  }
}

function byOrdinal(a: CRule, b: CRule): number {
  return a.ordinal - b.ordinal;
}

function reasonsOf(list: CRule[]): Reason[] {
  if (list.length > 1) list.sort(byOrdinal);
  const out: Reason[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = list[i]!.reason;
  return out;
}

function grantReasons(q: NormalRequest, grants: readonly GrantSet[] | undefined): Reason[] {
  const out: Reason[] = [];
  if (grants === undefined) return out;
  for (const g of grants)
    for (const r of g.rules) if (r.actions.has(q.action) && r.full(q) && r.bound(q)) out.push(r.rule.reason);
  return out;
}

/** Deny-overrides (dsl/LANGUAGE.md, "Requests and decisions"): an applicable deny wins, then ask, then allow. */
function decide(
  denies: CRule[],
  asks: CRule[],
  allows: CRule[],
  q: NormalRequest,
  grants: readonly GrantSet[] | undefined,
  version: string,
): Decision {
  if (denies.length > 0) return { decision: 'deny', reasons: reasonsOf(denies), policy_version: version };
  if (asks.length > 0) {
    const g = grantReasons(q, grants);
    if (g.length > 0) return { decision: 'allow', reasons: g, policy_version: version };
    return { decision: 'ask', reasons: reasonsOf(asks), policy_version: version };
  }
  if (allows.length > 0) return { decision: 'allow', reasons: reasonsOf(allows), policy_version: version };
  const g = grantReasons(q, grants);
  if (g.length > 0) return { decision: 'allow', reasons: g, policy_version: version };
  return { decision: 'deny', reasons: [], policy_version: version };
}

function explainRule(r: CRule, q: NormalRequest): TraceEntry {
  const failed: string[] = [];
  for (const c of conjunctsOf(r.ir.cond)) if (!compileCond(c)(q)) failed.push((c as { text: string }).text);
  return {
    ordinal: r.ordinal,
    rule: r.ir.id,
    effect: r.effect,
    source: r.ir.source,
    matched: failed.length === 0,
    failed,
  };
}

/** The compiled rules of one lease. */
export class GrantSet {
  constructor(
    readonly id: string,
    readonly rules: GrantRule[],
  ) {}
}
