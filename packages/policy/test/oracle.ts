/**
 * The independent reference evaluator — a TEST ORACLE, not part of the package's surface.
 *
 * It starts from the parse tree (the grammar is the one thing it shares with the package) and
 * does everything else on its own, written from dsl/LANGUAGE.md rather than from the engine:
 * its own table of built-in actions, lowering of constants (list constants spliced), expansion
 * of action wildcards, role closure over every body's `extends`, rule numbering, request
 * validation, and host / path / IP normalisation and matching (node:net, node:url and the WHATWG
 * URL serialiser are its only helpers; no import from the checker's model, the engine, the
 * package's value normalisers or @portcullis/protocol/ip), and lease ceilings (issuers, lifetimes
 * from the duration's text, which lease rules a ceiling admits, and the ceiling's conditions
 * intersected with the lease's at decision time). It then scans every rule in source order on
 * every request. Slow and obvious on purpose: the decision trees are checked against it.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import type { CondAst, FileAst, Operand, PathAst, RuleAst, ValueAst } from '../src/ast.js';
import { parseFile, parseGrant } from '../src/parse.js';

// ---- the language's tables (LANGUAGE.md "Built-in actions", "Principal and context attributes") ----

type Type = 'string' | 'number' | 'bool' | 'host' | 'path' | 'ip' | 'list' | 'any';
interface Attr {
  type: Type;
  required: boolean;
}
const BUILT_IN: Record<string, string> = {
  'net.connect': 'host:host! port:number! ip:ip',
  'net.http': 'host:host! port:number! method:string! path:path! scheme:string ip:ip',
  'fs.read': 'path:path!',
  'fs.write': 'path:path!',
  'fs.list': 'path:path!',
  'fs.delete': 'path:path!',
  'comms.send': 'channel:string! to:string secrets:number size:number',
  'cmd.exec': 'command:string! args:list',
  'proc.spawn': 'command:string! args:list',
  'tool.call': 'tool:string! network:bool',
  'stage.transition': 'from:string! to:string!',
  'secret.read': 'name:string! workspace:string',
  'secret.inject': 'name:string! workspace:string',
};
const BUILT_IN_ATTRS: Record<string, Type> = {
  'principal.id': 'string',
  'principal.roles': 'list',
  'context.project': 'string',
  'context.blueprint': 'string',
  'context.session': 'string',
  'context.leases': 'list',
};

// ---- IP addresses: own parsing to BigInt, node:net for IPv6 syntax, URL for RFC 5952 text ----

interface IpV {
  fam: 4 | 6;
  v: bigint;
}
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const V4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

function v4Value(s: string): bigint {
  return s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function parseIpO(text: string): IpV | undefined {
  if (V4.test(text)) return { fam: 4, v: v4Value(text) };
  let s = text;
  const pct = s.indexOf('%');
  if (pct >= 0) {
    if (!/^[A-Za-z0-9._~-]+$/.test(s.slice(pct + 1))) return undefined;
    s = s.slice(0, pct);
  }
  if (!isIPv6(s)) return undefined;
  let tail: string[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const quad = s.slice(lastColon + 1);
    if (!V4.test(quad)) return undefined;
    const q = v4Value(quad);
    tail = [(q >> 16n).toString(16), (q & 0xffffn).toString(16)];
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  const part = (h: string) => (h === '' ? [] : h.split(':'));
  const head = part(halves[0]!);
  const rest = halves.length > 1 ? part(halves[1]!) : [];
  const known = [...head, ...rest, ...tail].length;
  const groups = halves.length > 1 ? [...head, ...Array(8 - known).fill('0'), ...rest, ...tail] : [...head, ...tail];
  if (groups.length !== 8) return undefined;
  const v = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  // ::ffff:0:0/96 IS its IPv4 address (LANGUAGE.md "ip").
  if (v >> 32n === 0xffffn) return { fam: 4, v: v & 0xffffffffn };
  return { fam: 6, v };
}

function ipText(ip: IpV): string {
  if (ip.fam === 4) return [24n, 16n, 8n, 0n].map((sh) => String((ip.v >> sh) & 255n)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((ip.v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // The WHATWG URL serialiser writes IPv6 hosts in RFC 5952 form.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

interface CidrV {
  fam: 4 | 6;
  v: bigint;
  bits: number;
}
function parseCidrO(text: string): CidrV | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIpO(addr);
  if (!ip) return undefined;
  if (slash < 0) return { ...ip, bits: ip.fam === 4 ? 32 : 128 };
  let bits = Number(text.slice(slash + 1));
  // A mapped network written in IPv6 text counts its prefix from the IPv4 part.
  if (ip.fam === 4 && addr.includes(':')) bits -= 96;
  return { ...ip, bits };
}

function inCidr(c: CidrV, ip: IpV): boolean {
  if (c.fam !== ip.fam) return false;
  const shift = BigInt((c.fam === 4 ? 32 : 128) - c.bits);
  return c.v >> shift === ip.v >> shift;
}

// ---- hosts ----------------------------------------------------------------------------------

function normHost(raw: string, label = false): string | undefined {
  let h = raw.replace(/[\u3002\uff0e\uff61]/g, '.');
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.includes(':')) {
    const ip = parseIpO(h);
    return ip ? ipText(ip) : undefined;
  }
  // IDNs (and punycode labels, which must be valid) go through UTS #46 as domainToASCII does it.
  if ([...h].some((ch) => ch.charCodeAt(0) > 0x7f) || /(^|\.)xn--/i.test(h)) {
    h = domainToASCII(h);
    if (h === '') return undefined;
  }
  h = h.toLowerCase();
  const labels = h.split('.');
  if (!labels.every((l) => /^[a-z0-9_-]+$/.test(l))) return undefined;
  // A name that ends in a number is an IPv4 literal: only the dotted quad is one.
  if (!label && /^([0-9]+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!) && !V4.test(h)) return undefined;
  return h;
}

function hostGlob(glob: string): string[] {
  let g = glob.replace(/[\u3002\uff0e\uff61]/g, '.');
  if (g.endsWith('.') && g.length > 1) g = g.slice(0, -1);
  return g.split('.').map((l) => (l === '*' || l === '**' ? l : normHost(l, true)!));
}

/** Label / segment list matching: `**` is zero or more items, `one` matches a single item. */
function seqMatch(p: string[], s: string[], one: (pat: string, x: string) => boolean): boolean {
  if (p.length === 0) return s.length === 0;
  const [first, ...rest] = p;
  if (first === '**') {
    for (let k = 0; k <= s.length; k++) if (seqMatch(rest, s.slice(k), one)) return true;
    return false;
  }
  return s.length > 0 && one(first!, s[0]!) && seqMatch(rest, s.slice(1), one);
}

/** `*` matches a run of at least `min` characters. */
function starMatch(p: string, s: string, min: number): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') {
    for (let k = min; k <= s.length; k++) if (starMatch(p.slice(1), s.slice(k), min)) return true;
    return false;
  }
  return s.length > 0 && p[0] === s[0] && starMatch(p.slice(1), s.slice(1), min);
}

// ---- paths ----------------------------------------------------------------------------------

function normPath(p: string): string | undefined {
  if (!p.startsWith('/') || p.includes('\0')) return undefined;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/** net.http: percent-decode once; a decoded `/`, `\` or NUL, or a bad escape, is malformed. */
function decodeHttpPath(p: string): string | undefined {
  const bytes: number[] = [];
  let out = '';
  const flush = () => {
    out += Buffer.from(bytes).toString('utf8');
    bytes.length = 0;
  };
  for (let i = 0; i < p.length; i++) {
    if (p[i] !== '%') {
      flush();
      out += p[i];
      continue;
    }
    const hex = p.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
    const b = parseInt(hex, 16);
    if (b === 0x2f || b === 0x5c || b === 0) return undefined;
    bytes.push(b);
    i += 2;
  }
  flush();
  return out;
}

const segs = (p: string) => (p === '/' ? [] : p.slice(1).split('/'));

// ---- the lowered set --------------------------------------------------------------------------

type Lit = string | number | boolean;
type Value = { list: false; v: Lit } | { list: true; vs: Lit[] };
/** A normalised request as the oracle sees it. */
interface Req {
  action: string;
  attrs: Record<string, Attr>;
  res: Map<string, unknown>;
  principal: Record<string, unknown>;
  roles: string[];
  context: Record<string, unknown>;
}
type Test = (q: Req) => boolean;
interface Rule {
  effect: 'allow' | 'deny' | 'ask';
  actions: Set<string>;
  scope?: { kind: 'project' | 'blueprint' | 'session'; value: string };
  role?: string;
  test: Test;
  reason: Record<string, string>;
}

const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

class Lowering {
  readonly actions = new Map<string, Record<string, Attr>>();
  readonly declared = new Map<string, Type>();
  private readonly lets = new Map<string, ValueAst>();
  private readonly extendsOf = new Map<string, Set<string>>();
  readonly closure = new Map<string, Set<string>>();

  constructor(asts: FileAst[]) {
    for (const [name, spec] of Object.entries(BUILT_IN)) {
      const attrs: Record<string, Attr> = {};
      for (const a of spec.split(' ')) {
        const [n, t] = a.split(':') as [string, string];
        attrs[n] = { type: t.replace('!', '') as Type, required: t.endsWith('!') };
      }
      this.actions.set(name, attrs);
    }
    const decls = asts.flatMap((a) => a.decls);
    for (const d of decls) {
      if (d.kind === 'let') this.lets.set(d.name, d.value);
      else if (d.kind === 'action') {
        const attrs: Record<string, Attr> = {};
        for (const a of d.attrs) attrs[a.name] = { type: a.type as Type, required: !a.optional };
        this.actions.set(d.name, attrs);
      } else if (d.kind === 'attributes')
        for (const a of d.attrs) this.declared.set(`${a.root}.${a.name}`, a.type as Type);
      else if (d.kind === 'role') this.addExtends(d.name, d.extends);
      else if (d.kind === 'policy')
        for (const it of d.items) if (it.kind === 'role') this.addExtends(it.name, it.extends);
    }
    for (const r of this.extendsOf.keys()) {
      const seen = new Set<string>();
      const walk = (x: string) => {
        if (seen.has(x)) return;
        seen.add(x);
        for (const e of this.extendsOf.get(x) ?? []) walk(e);
      };
      walk(r);
      this.closure.set(r, seen);
    }
  }

  private addExtends(role: string, ext: { name: string }[]): void {
    const s = this.extendsOf.get(role) ?? new Set<string>();
    for (const e of ext) s.add(e.name);
    this.extendsOf.set(role, s);
  }

  value(v: ValueAst): Value {
    if (v.kind === 'const') return this.value(this.lets.get(v.name)!);
    if (v.kind !== 'list') return { list: false, v: v.value };
    const vs: Lit[] = [];
    for (const it of v.items) {
      const x = this.value(it);
      if (x.list) vs.push(...x.vs);
      else vs.push(x.v);
    }
    return { list: true, vs };
  }

  expand(names: string[]): Set<string> {
    const all = [...this.actions.keys()];
    const out = new Set<string>();
    for (const n of names) {
      if (n === '*') for (const a of all) out.add(a);
      else if (n.endsWith('.*')) for (const a of all.filter((x) => x.startsWith(n.slice(0, -1)))) out.add(a);
      else out.add(n);
    }
    return out;
  }

  /** The type of a path in a rule for `actions`, and how to read it from a request. */
  private ref(p: PathAst, actions: Set<string>): { type: Type; get: (q: Req) => unknown } {
    if (p.root === 'action') return { type: 'string', get: (q) => q.action };
    const name = p.name!;
    if (p.root === 'resource') {
      let type: Type = 'any';
      for (const a of actions) {
        const at = this.actions.get(a)![name];
        if (at) type = at.type;
      }
      // Declared by the request's own action, or missing (precise rule 12).
      return { type, get: (q) => q.res.get(name) };
    }
    const key = `${p.root}.${name}`;
    const type = BUILT_IN_ATTRS[key] ?? this.declared.get(key)!;
    if (key === 'principal.roles') return { type, get: (q) => q.roles };
    const root = p.root;
    return { type, get: (q) => own(root === 'principal' ? q.principal : q.context, name) };
  }

  cond(c: CondAst, actions: Set<string>): Test {
    switch (c.op) {
      case 'paren':
        return this.cond(c.arg, actions);
      case 'and': {
        const ts = c.args.map((a) => this.cond(a, actions));
        return (q) => ts.every((t) => t(q));
      }
      case 'or': {
        const ts = c.args.map((a) => this.cond(a, actions));
        return (q) => ts.some((t) => t(q));
      }
      case 'not': {
        const t = this.cond(c.arg, actions);
        return (q) => !t(q);
      }
      case 'exists': {
        const { get } = this.ref(c.path, actions);
        return (q) => get(q) !== undefined;
      }
      case 'bool': {
        const { get } = this.ref(c.path, actions);
        return (q) => get(q) === true;
      }
      case 'cmp':
        return this.cmp(c.cmp, c.left, c.right, actions);
      case 'in':
        return this.inTest(c.left, c.right, actions);
      case 'matches':
        return this.matches(c.left as PathAst, c.right as ValueAst, actions);
    }
  }

  /** A literal as the attribute's type sees it: hosts normalised, ips parsed. */
  private lit(type: Type, v: Lit): Lit {
    return type === 'host' ? normHost(v as string)! : v;
  }

  private cmp(op: string, l: Operand, r: Operand, actions: Set<string>): Test {
    const flip: Record<string, string> = { '<': '>', '>': '<', '<=': '>=', '>=': '<=' };
    if (l.kind !== 'path') [l, r, op] = [r, l, flip[op] ?? op];
    const { type, get } = this.ref(l as PathAst, actions);
    const lit = (this.value(r as ValueAst) as { v: Lit }).v;
    if (op === '==' || op === '!=') {
      const neg = op === '!=';
      if (type === 'ip') {
        const want = parseIpO(lit as string)!;
        return (q) => {
          const v = get(q) as IpV | undefined;
          if (v === undefined) return false;
          const same = v.fam === want.fam && v.v === want.v;
          return neg ? !same : same;
        };
      }
      const want = this.lit(type, lit);
      // Present and of the literal's JSON type, else false — `!=` included.
      return (q) => {
        const v = get(q);
        if (typeof v !== typeof want) return false;
        return neg ? v !== want : v === want;
      };
    }
    const n = lit as number;
    return (q) => {
      const v = get(q);
      if (typeof v !== 'number') return false;
      return op === '<' ? v < n : op === '<=' ? v <= n : op === '>' ? v > n : v >= n;
    };
  }

  private inTest(l: Operand, r: Operand, actions: Set<string>): Test {
    if (r.kind === 'path') {
      const { get } = this.ref(r, actions);
      const want = (this.value(l as ValueAst) as { v: Lit }).v;
      return (q) => {
        const v = get(q);
        return Array.isArray(v) && v.includes(want);
      };
    }
    const { type, get } = this.ref(l as PathAst, actions);
    const vs = (this.value(r) as { vs: Lit[] }).vs;
    if (type === 'ip') {
      const cidrs = vs.map((x) => parseCidrO(x as string)!);
      return (q) => {
        const v = get(q) as IpV | undefined;
        return v !== undefined && cidrs.some((c) => inCidr(c, v));
      };
    }
    const wants = vs.map((x) => this.lit(type, x));
    return (q) => {
      const v = get(q);
      return (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && wants.includes(v);
    };
  }

  private matches(l: PathAst, r: ValueAst, actions: Set<string>): Test {
    const { type, get } = this.ref(l, actions);
    const v = this.value(r);
    const globs = (v.list ? v.vs : [v.v]) as string[];
    let one: (g: string, s: string) => boolean;
    if (type === 'host') {
      const gs = globs.map(hostGlob);
      return (q) => {
        const h = get(q);
        return typeof h === 'string' && gs.some((g) => seqMatch(g, h.split('.'), (p, x) => p === '*' || p === x));
      };
    }
    if (type === 'path') one = (g, s) => seqMatch(segs(g), segs(s), (p, x) => starMatch(p, x, 1));
    else one = (g, s) => starMatch(g, s, 0);
    return (q) => {
      const s = get(q);
      return typeof s === 'string' && globs.some((g) => one(g, s));
    };
  }

  rule(
    r: RuleAst,
    reason: Record<string, string>,
    scope: { kind: string; value?: string },
    role: string | undefined,
  ): Rule {
    const actions = this.expand(r.actions.map((a) => a.name));
    const test: Test = r.when ? this.cond(r.when, actions) : () => true;
    return {
      effect: r.effect,
      actions,
      scope: scope.kind === 'global' ? undefined : (scope as Rule['scope']),
      role,
      test,
      reason,
    };
  }
}

// ---- requests ---------------------------------------------------------------------------------

type Normal =
  | { ok: true; q: Req; project?: string; blueprint?: string; session?: string }
  | { ok: false; code: string };

function normValue(v: unknown, type: Type, httpPath: boolean): { v: unknown } | { code: string } {
  const bad = { code: 'PCX_REQ_BAD_TYPE' };
  switch (type) {
    case 'string':
      return typeof v === 'string' ? { v } : bad;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? { v } : bad;
    case 'bool':
      return typeof v === 'boolean' ? { v } : bad;
    case 'list':
      return Array.isArray(v) ? { v } : bad;
    case 'host': {
      if (typeof v !== 'string') return bad;
      const h = normHost(v);
      return h === undefined ? { code: 'PCX_REQ_BAD_HOST' } : { v: h };
    }
    case 'path': {
      if (typeof v !== 'string') return bad;
      const d = httpPath ? decodeHttpPath(v) : v;
      const p = d === undefined ? undefined : normPath(d);
      return p === undefined ? { code: 'PCX_REQ_BAD_PATH' } : { v: p };
    }
    case 'ip': {
      if (typeof v !== 'string') return bad;
      const ip = parseIpO(v);
      return ip === undefined ? { code: 'PCX_REQ_BAD_IP' } : { v: ip };
    }
    default:
      return { v };
  }
}

function normalize(req: unknown, set: Lowering): Normal {
  const fail = (code: string): Normal => ({ ok: false, code });
  const missingOr = (v: unknown) => fail(v === undefined ? 'PCX_REQ_MISSING_ATTRIBUTE' : 'PCX_REQ_BAD_TYPE');
  if (!isObj(req)) return fail('PCX_REQ_NOT_OBJECT');
  const principal = own(req, 'principal');
  if (!isObj(principal)) return missingOr(principal);
  const id = own(principal, 'id');
  if (typeof id !== 'string') return missingOr(id);
  const rawRoles = own(principal, 'roles') ?? [];
  if (!Array.isArray(rawRoles) || !rawRoles.every((r) => typeof r === 'string')) return fail('PCX_REQ_BAD_TYPE');
  const action = own(req, 'action');
  if (typeof action !== 'string') return missingOr(action);
  const attrs = set.actions.get(action);
  if (!attrs) return fail('PCX_REQ_UNKNOWN_ACTION');
  const resource = own(req, 'resource') ?? {};
  if (!isObj(resource)) return fail('PCX_REQ_BAD_TYPE');
  const context = own(req, 'context') ?? {};
  if (!isObj(context)) return fail('PCX_REQ_BAD_TYPE');
  for (const k of ['project', 'blueprint', 'session'])
    if (own(context, k) !== undefined && typeof own(context, k) !== 'string') return fail('PCX_REQ_BAD_TYPE');
  const leases = own(context, 'leases');
  if (leases !== undefined && (!Array.isArray(leases) || !leases.every((l) => typeof l === 'string')))
    return fail('PCX_REQ_BAD_TYPE');
  const res = new Map<string, unknown>();
  for (const [name, at] of Object.entries(attrs)) {
    const v = own(resource, name);
    if (v === undefined) {
      if (at.required) return fail('PCX_REQ_MISSING_ATTRIBUTE');
      continue;
    }
    const n = normValue(v, at.type, action === 'net.http' && name === 'path');
    if ('code' in n) return fail(n.code);
    res.set(name, n.v);
  }
  // Roles held: each named role with everything it extends; undeclared names stay as they are.
  const roles = new Set<string>();
  for (const r of rawRoles as string[]) for (const x of set.closure.get(r) ?? [r]) roles.add(x);
  return {
    ok: true,
    q: { action, attrs, res, principal, roles: [...roles], context },
    project: own(context, 'project') as string | undefined,
    blueprint: own(context, 'blueprint') as string | undefined,
    session: own(context, 'session') as string | undefined,
  };
}

// ---- the oracle -------------------------------------------------------------------------------

/** Why a lease (or one of its rules) counts for nothing, as compileGrant must report it. */
export interface OracleIgnored {
  lease: string;
  ignored: 'no_ceiling' | 'exceeds_lifetime' | 'exceeds_ceiling';
  rule?: string;
}

/** A lease as the PDP hands it over after verifying its token: its rules, issuer names, lifetime. */
export interface OracleLease {
  id: string;
  text: string;
  /** The names the issuer goes by (key id, bound `iss`). */
  issuers: readonly string[];
  /** exp - iat, in seconds. */
  lifetimeSec: number;
}

export interface OracleDecision {
  decision: 'allow' | 'deny' | 'ask';
  reasons: Record<string, string>[];
  policy_version: string;
  error?: string;
}

const UNIT_SEC: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Source files and leases → the leases' ignore reasons and an evaluate function that scans every rule. */
export function oracle(
  files: readonly { path: string; text: string }[],
  grants: readonly OracleLease[] = [],
): { ignored: OracleIgnored[]; evaluate: (request: unknown) => OracleDecision } {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const h = createHash('sha256');
  for (const f of sorted)
    h.update(`${Buffer.byteLength(f.path)}:${f.path}\n${Buffer.byteLength(f.text)}:${f.text}\n`, 'utf8');
  const version = `sha256:${h.digest('hex')}`;
  const asts = sorted.map((f) => {
    const r = parseFile(f.text, f.path);
    if (!r.ast) throw new Error(`oracle: ${f.path} does not parse`);
    return r.ast;
  });
  const set = new Lowering(asts);
  const rules: Rule[] = [];
  const topCount = new Map<string, number>();
  const src = (r: RuleAst) => `${r.loc.file}:${r.loc.line}:${r.loc.col}`;
  const reason = (r: RuleAst, policy: string, id: string) => ({
    effect: r.effect,
    policy,
    rule: id,
    ...(r.because !== undefined ? { because: r.because } : {}),
    source: src(r),
  });
  for (const ast of asts)
    for (const d of ast.decls) {
      if (d.kind === 'policy') {
        let n = 0;
        for (const it of d.items)
          for (const r of it.kind === 'rule' ? [it] : it.rules)
            rules.push(
              set.rule(r, reason(r, d.name, `${d.name}#${++n}`), d.scope, it.kind === 'role' ? it.name : undefined),
            );
      } else if (d.kind === 'role')
        for (const r of d.rules) {
          const n = (topCount.get(d.name) ?? 0) + 1;
          topCount.set(d.name, n);
          rules.push(set.rule(r, reason(r, `role:${d.name}`, `role:${d.name}#${n}`), { kind: 'global' }, d.name));
        }
    }
  // Lease ceilings: issuer name → its ceilings (one each in a valid set, but the oracle does not
  // rely on it), each with its lifetime in seconds and its allow rules.
  const ceilingsOf = new Map<string, { maxSec: number; rules: Rule[] }[]>();
  for (const ast of asts)
    for (const d of ast.decls) {
      if (d.kind !== 'leases') continue;
      const maxSec = Number(d.max.raw.slice(0, -1)) * UNIT_SEC[d.max.raw.slice(-1)]!;
      const c = { maxSec, rules: d.rules.map((r) => set.rule(r, {}, { kind: 'global' }, undefined)) };
      for (const i of d.issuers) ceilingsOf.set(i.value, [...(ceilingsOf.get(i.value) ?? []), c]);
    }
  const ignored: OracleIgnored[] = [];
  /** Lease rules that count, each with the ceiling rules that bound it. */
  const leaseRules: { rule: Rule; bound: Rule[] }[] = [];
  for (const g of grants) {
    const p = parseGrant(g.text, `lease:${g.id}`);
    if (!p.ast) throw new Error(`oracle: lease ${g.id} does not parse`);
    const ceilings = [...new Set(g.issuers.flatMap((i) => ceilingsOf.get(i) ?? []))];
    if (ceilings.length === 0) {
      ignored.push({ lease: g.id, ignored: 'no_ceiling' });
      continue;
    }
    const fitting = ceilings.filter((c) => g.lifetimeSec <= c.maxSec);
    if (fitting.length === 0) {
      ignored.push({ lease: g.id, ignored: 'exceeds_lifetime' });
      continue;
    }
    const bound = fitting.flatMap((c) => c.rules);
    p.ast.rules.forEach((r, i) => {
      const id = `lease:${g.id}#${i + 1}`;
      const rule = set.rule(r, { effect: 'allow', lease: g.id, rule: id }, { kind: 'global' }, undefined);
      // Every action the rule names (wildcards expanded) must be in some fitting ceiling rule.
      if ([...rule.actions].some((a) => !bound.some((c) => c.actions.has(a))))
        ignored.push({ lease: g.id, ignored: 'exceeds_ceiling', rule: id });
      else leaseRules.push({ rule, bound });
    });
  }

  const evaluate = (request: unknown): OracleDecision => {
    const n = normalize(request, set);
    if (!n.ok) return { decision: 'deny', reasons: [], policy_version: version, error: n.code };
    const q = n.q;
    const applies = (r: Rule) =>
      r.actions.has(q.action) &&
      (r.scope === undefined || n[r.scope.kind] === r.scope.value) &&
      (r.role === undefined || q.roles.includes(r.role)) &&
      r.test(q);
    const hits = rules.filter(applies);
    const of = (e: string) => hits.filter((r) => r.effect === e).map((r) => r.reason);
    // A lease rule applies only where one of its ceiling's rules applies too.
    const leased = () => leaseRules.filter((l) => applies(l.rule) && l.bound.some(applies)).map((l) => l.rule.reason);
    const out = (decision: OracleDecision['decision'], reasons: Record<string, string>[]): OracleDecision => ({
      decision,
      reasons,
      policy_version: version,
    });
    if (of('deny').length) return out('deny', of('deny'));
    if (of('ask').length) return leased().length ? out('allow', leased()) : out('ask', of('ask'));
    if (of('allow').length) return out('allow', of('allow'));
    if (leased().length) return out('allow', leased());
    return out('deny', []);
  };
  return { ignored, evaluate };
}
