/**
 * The naive reference evaluator — a TEST ORACLE, not part of the package's surface.
 * It scans every rule in source order and interprets the checked model directly, with its own
 * matching code (recursive globs, BigInt CIDRs), so that the indexed decision trees can be
 * checked against it. Shares only request normalisation with the engine.
 */
import type { Decision, Reason } from '@portcullis/protocol';
import type { CondIR, Model, Ref, RuleIR } from '../src/model.js';
import type { NormalRequest } from '../src/request.js';
import { normalizeRequest } from '../src/request.js';
import type { Cidr, Ip } from '../src/values.js';

function get(ref: Ref, q: NormalRequest): unknown {
  if (ref.root === 'resource')
    return q.schema.attrs.has(ref.name) ? q.res[q.schema.list.findIndex((a) => a.name === ref.name)] : undefined;
  if (ref.root === 'action') return q.action;
  if (ref.root === 'principal') {
    if (ref.name === 'id') return q.id;
    if (ref.name === 'roles') return q.roles;
    return Object.keys(q.principal).includes(ref.name) ? q.principal[ref.name] : undefined;
  }
  if (ref.name === 'project') return q.project;
  if (ref.name === 'blueprint') return q.blueprint;
  if (ref.name === 'session') return q.session;
  return q.context && Object.keys(q.context).includes(ref.name) ? q.context[ref.name] : undefined;
}

function listGlob(p: string[], i: number, s: string[], j: number, one: (pat: string, x: string) => boolean): boolean {
  if (i === p.length) return j === s.length;
  if (p[i] === '**') return listGlob(p, i + 1, s, j, one) || (j < s.length && listGlob(p, i, s, j + 1, one));
  if (j === s.length) return false;
  return one(p[i]!, s[j]!) && listGlob(p, i + 1, s, j + 1, one);
}

/** Character glob: `*` matches `min` or more characters. */
function charGlob(p: string, s: string, min: number): boolean {
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === s.length;
    if (p[i] === '*') {
      for (let k = j + min; k <= s.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < s.length && p[i] === s[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

function hostMatch(glob: string, h: string): boolean {
  return listGlob(glob.split('.'), 0, h.split('.'), 0, (pat, x) => pat === '*' || pat === x);
}

function pathMatch(glob: string, p: string): boolean {
  const parts = (x: string) => (x === '/' ? [] : x.slice(1).split('/'));
  return listGlob(parts(glob), 0, parts(p), 0, (pat, x) => charGlob(pat, x, 1));
}

function ipBig(ip: Ip): bigint {
  if (ip.v === 4) return BigInt(ip.n);
  return ip.g.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

function inCidr(c: Cidr, ip: Ip): boolean {
  if (c.ip.v !== ip.v) return false;
  const width = BigInt(ip.v === 4 ? 32 : 128);
  const shift = width - BigInt(c.bits);
  return ipBig(c.ip) >> shift === ipBig(ip) >> shift;
}

function scalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

export function evalCond(c: CondIR, q: NormalRequest): boolean {
  switch (c.k) {
    case 'true':
      return true;
    case 'and':
      return c.args.every((a) => evalCond(a, q));
    case 'or':
      return c.args.some((a) => evalCond(a, q));
    case 'not':
      return !evalCond(c.arg, q);
    case 'exists':
      return get(c.ref, q) !== undefined;
    case 'truthy':
      return get(c.ref, q) === true;
    case 'eq': {
      const v = get(c.ref, q);
      if (v === undefined) return false;
      if (c.ip) {
        const same = ipBig(v as Ip) === ipBig(c.ip) && (v as Ip).v === c.ip.v;
        return c.neg ? !same : same;
      }
      if (!scalar(v) || typeof v !== typeof c.value) return false;
      return c.neg ? v !== c.value : v === c.value;
    }
    case 'cmp': {
      const v = get(c.ref, q);
      if (typeof v !== 'number') return false;
      return c.op === '<' ? v < c.value : c.op === '<=' ? v <= c.value : c.op === '>' ? v > c.value : v >= c.value;
    }
    case 'in': {
      const v = get(c.ref, q);
      if (v === undefined) return false;
      if (c.cidrs) return c.cidrs.some((cd) => inCidr(cd, v as Ip));
      return scalar(v) && c.values.some((x) => x === v);
    }
    case 'contains': {
      const v = get(c.ref, q);
      return Array.isArray(v) && v.some((x) => x === c.value);
    }
    case 'matches': {
      const v = get(c.ref, q);
      if (typeof v !== 'string') return false;
      const t = c.ref.type;
      return c.globs.some((g) => (t === 'host' ? hostMatch(g, v) : t === 'path' ? pathMatch(g, v) : charGlob(g, v, 0)));
    }
  }
}

function applicable(r: RuleIR, q: NormalRequest): boolean {
  if (!r.actions.includes(q.action)) return false;
  if (r.scope.kind !== 'global' && q[r.scope.kind] !== r.scope.value) return false;
  if (r.role !== undefined && !q.roles.includes(r.role)) return false;
  return evalCond(r.cond, q);
}

export function oracleEvaluate(
  model: Model,
  version: string,
  request: unknown,
  grants: readonly { rules: { ir: RuleIR }[] }[] = [],
  /** The issuer the grants were compiled for: its ceiling's rules bound every lease rule. */
  issuer = 'gen',
): Decision {
  const q = normalizeRequest(request, model.schema, model.roleClosure);
  if ('code' in q) return { decision: 'deny', reasons: [], policy_version: version, error: q };
  const hits = model.rules.filter((r) => applicable(r, q)).sort((a, b) => a.ordinal - b.ordinal);
  const of = (e: string): Reason[] => hits.filter((r) => r.effect === e).map((r) => r.reason);
  // A lease rule applies only where a rule of its issuer's ceiling applies too.
  const ceiling = model.ceilings.filter((c) => c.issuers.includes(issuer)).flatMap((c) => c.rules);
  const bounded = ceiling.some((c) => applicable(c, q));
  const leased = (): Reason[] =>
    bounded ? grants.flatMap((g) => g.rules.filter((r) => applicable(r.ir, q)).map((r) => r.ir.reason)) : [];
  const denies = of('deny');
  if (denies.length) return { decision: 'deny', reasons: denies, policy_version: version };
  const asks = of('ask');
  if (asks.length) {
    const l = leased();
    return l.length
      ? { decision: 'allow', reasons: l, policy_version: version }
      : { decision: 'ask', reasons: asks, policy_version: version };
  }
  const allows = of('allow');
  if (allows.length) return { decision: 'allow', reasons: allows, policy_version: version };
  const l = leased();
  if (l.length) return { decision: 'allow', reasons: l, policy_version: version };
  return { decision: 'deny', reasons: [], policy_version: version };
}
