/** compile(): sources → parse → check → decision trees; the CompiledPolicy handle. */
import { createHash } from 'node:crypto';
import type { Decision, Reason } from '@portcullis/protocol';
import type { Diagnostic } from './diagnostics.js';
import { compareDiagnostics } from './diagnostics.js';
import type { Checker, ParsedFile } from './check.js';
import { checkSet } from './check.js';
import type { ExplainEntry, GrantRule } from './engine.js';
import { ceilingBound, Engine, GrantSet, compileCond, makeCRule, type CeilingIndex } from './engine.js';
import type { RuleIR } from './model.js';
import { parseFile, parseGrant } from './parse.js';

export interface SourceFile {
  /** Where the file is, as diagnostics show it (relative to the working directory, or absolute). */
  path: string;
  text: string;
  /**
   * The file's name relative to the policy root, `/`-separated (a single-file set: its base
   * name). This, not `path`, is what policy_version hashes, so that the version does not depend
   * on where the set is loaded from. Default: `path`.
   */
  name?: string;
}
/** Room to grow: no options yet, so none is accepted. */
export type CompileOptions = Record<string, never>;
export interface LeaseGrant {
  readonly id: string;
}
/** What bounds a lease: who signed it and for how long (the PDP reads both from the verified token). */
export interface LeaseBound {
  /**
   * The names the lease's issuer goes by: the kid of the key that verified it, and its `iss`
   * claim when that key speaks for that issuer. Ceilings naming any of them apply.
   */
  issuers: readonly string[];
  /** The lease's lifetime, exp - iat, in seconds. */
  lifetimeSec: number;
}
/** Why a lease (or one of its rules) grants nothing under the policy's lease ceilings. */
export type CeilingIgnoreReason = 'no_ceiling' | 'exceeds_lifetime' | 'exceeds_ceiling';
export interface IgnoredGrant {
  ignored: CeilingIgnoreReason;
  /** The lease rule ignored (`lease:<id>#<n>`); absent when the whole lease is. */
  rule?: string;
  /** One line saying why, naming issuers and actions (never the token). */
  message: string;
}
export interface GrantResult {
  /** The rules that count (possibly none); absent when the whole lease is ignored or does not compile. */
  grant?: LeaseGrant;
  /** Compile errors of the lease's rules. */
  diagnostics: Diagnostic[];
  ignored: IgnoredGrant[];
}
/** A lease ceiling as declared, for tools that show it. */
export interface LeaseCeiling {
  readonly issuers: readonly string[];
  readonly maxSec: number;
  readonly source: string;
}
export interface EvaluateOptions {
  grants?: readonly LeaseGrant[];
}

/** A rule `explain` lists as skipped: its action applies but its scope or its role does not. */
export interface SkippedEntry {
  rule: string;
  effect: string;
  source: string;
  skipped: 'scope' | 'role';
  why: string;
}

export interface CompiledPolicy {
  /** "sha256:<hex>" over the sources (name + text, sorted by name): the policy_version (see policyVersion). */
  readonly version: string;
  readonly ruleCount: number;
  /** Never throws. Malformed request → deny with `error` {code, message} (a request code such as PCX_REQ_BAD_TYPE). */
  evaluate(request: unknown, options?: EvaluateOptions): Decision;
  /**
   * Like evaluate, plus `explain.candidates` (the rules considered, and which conditions failed) and
   * `explain.skipped` (rules for the action whose scope or role did not apply, and why).
   */
  explain(request: unknown, options?: EvaluateOptions): Decision & { explain: unknown };
  /** The lease ceilings the set declares (`leases from … max … { … }`), in set order. */
  readonly ceilings: readonly LeaseCeiling[];
  /**
   * Compiles a lease's rules (allow only) against this set's schema and constants (their
   * diagnostics are returned whatever the bound), bounded by the ceiling of its issuer: with no
   * ceiling for it, or a lifetime over the ceiling's max, the lease grants nothing; a rule whose
   * actions are not all within the ceiling is ignored; the rest apply only where a ceiling rule
   * also applies.
   */
  compileGrant(id: string, rules: string, bound: LeaseBound): GrantResult;
}

export interface CompileResult {
  policy?: CompiledPolicy;
  diagnostics: Diagnostic[];
}

/**
 * The policy_version of a set (the recipe dsl/LANGUAGE.md documents, so that anyone can
 * recompute it): SHA-256 over the files sorted by the UTF-8 bytes of their names (ties, which
 * only a set assembled from several roots can have, by text), each contributing
 * `<bytes of name>:<name>\n<bytes of text>:<text>\n`, written "sha256:<lower-case hex>". Only
 * names relative to the policy root and contents count: never the directory it was loaded from.
 */
export function policyVersion(files: readonly SourceFile[]): string {
  const entries = files.map((f) => ({ name: Buffer.from(f.name ?? f.path), text: Buffer.from(f.text) }));
  entries.sort((a, b) => Buffer.compare(a.name, b.name) || Buffer.compare(a.text, b.text));
  const h = createHash('sha256');
  for (const e of entries) {
    // Length-prefixed so that moving text between name and content cannot collide.
    h.update(`${e.name.length}:`).update(e.name).update(`\n${e.text.length}:`).update(e.text).update('\n');
  }
  return `sha256:${h.digest('hex')}`;
}

/**
 * Parses every file; returns the ASTs and all syntax diagnostics. Files are in the order the
 * version hashes them (by name): source order, which orders reasons, must not depend on where
 * the set was loaded from either.
 */
export function parseAll(files: readonly SourceFile[]): { parsed: ParsedFile[]; diagnostics: Diagnostic[] } {
  const parsed: ParsedFile[] = [];
  const diagnostics: Diagnostic[] = [];
  const sorted = files
    .map((f) => ({ f, name: Buffer.from(f.name ?? f.path) }))
    .sort((a, b) => Buffer.compare(a.name, b.name))
    .map((e) => e.f);
  for (const f of sorted) {
    const r = parseFile(f.text, f.path);
    diagnostics.push(...r.diagnostics);
    if (r.ast)
      parsed.push({ path: f.path, ...(f.name !== undefined ? { name: f.name } : {}), text: f.text, ast: r.ast });
  }
  return { parsed, diagnostics };
}

export function compile(files: readonly SourceFile[], _options: CompileOptions = {}): CompileResult {
  const { parsed, diagnostics } = parseAll(files);
  if (diagnostics.length > 0) return { diagnostics: diagnostics.sort(compareDiagnostics) };
  const { model, checker } = checkSet(parsed);
  const all = checker.diagnostics.sort(compareDiagnostics);
  if (!model) return { diagnostics: all };
  const engine = new Engine(model, policyVersion(files));
  return { policy: new Compiled(engine, checker), diagnostics: all };
}

class Compiled implements CompiledPolicy {
  readonly version: string;
  readonly ruleCount: number;
  readonly ceilings: readonly LeaseCeiling[];
  constructor(
    readonly engine: Engine,
    private readonly checker: Checker,
  ) {
    this.version = engine.version;
    this.ruleCount = engine.ruleCount;
    this.ceilings = engine.model.ceilings.map((c) =>
      Object.freeze({ issuers: Object.freeze([...c.issuers]), maxSec: c.maxSec, source: c.source }),
    );
  }

  evaluate(request: unknown, options?: EvaluateOptions): Decision {
    return this.engine.evaluate(request, grantsOf(options));
  }

  explain(request: unknown, options?: EvaluateOptions): Decision & { explain: unknown } {
    const candidates: ExplainEntry[] = [];
    const d = this.engine.evaluate(request, grantsOf(options), candidates);
    return { ...d, explain: { candidates, skipped: this.skipped(request) } };
  }

  /**
   * The rules for the request's action that were never candidates because their scope or role does
   * not apply, each with why: the question an author asks when an expected rule "did nothing".
   * Explain only (it scans every rule); a malformed request has none.
   */
  private skipped(request: unknown): SkippedEntry[] {
    let q: ReturnType<Engine['normalize']>;
    try {
      q = this.engine.normalize(request);
    } catch {
      return [];
    }
    if ('code' in q) return [];
    const out: SkippedEntry[] = [];
    for (const ir of this.engine.model.rules) {
      if (!ir.actions.includes(q.action)) continue;
      const base = { rule: ir.id, effect: ir.effect, source: ir.source };
      const s = ir.scope;
      if (s.kind !== 'global' && q[s.kind] !== s.value) {
        const have = q[s.kind];
        out.push({
          ...base,
          skipped: 'scope',
          why:
            `applies in ${s.kind} "${s.value}"; the request's context.${s.kind} is ` +
            (have === undefined ? 'absent' : `"${have}"`),
        });
      } else if (ir.role !== undefined && !q.roles.includes(ir.role)) {
        out.push({
          ...base,
          skipped: 'role',
          why:
            `applies to role "${ir.role}" (or a role extending it); the principal holds ` +
            (q.roles.length === 0 ? 'no roles' : q.roles.map((r) => `"${r}"`).join(', ')),
        });
      }
    }
    return out;
  }

  compileGrant(id: string, rules: string, bound: LeaseBound): GrantResult {
    // The rules are checked first, whatever the ceiling: a lease whose rules do not compile is
    // reported as such (and `lease issue` uses this to refuse to sign them).
    const file = `lease:${id}`;
    const p = parseGrant(rules, file);
    if (!p.ast) return { diagnostics: p.diagnostics, ignored: [] };
    const ck = this.checker;
    const mark = ck.diagnostics.length;
    const irs: RuleIR[] = [];
    p.ast.rules.forEach((r, i) => {
      if (r.effect !== 'allow') {
        ck.error(
          'PCX_GRANT_EFFECT',
          `a lease grants only \`allow\` rules; \`${r.effect}\` is not allowed in a lease`,
          r.loc,
        );
        return;
      }
      const ir = ck.checkRule(r, { id: `lease:${id}#${i + 1}`, policy: file, ordinal: i, scope: { kind: 'global' } });
      if (ir) irs.push(ir);
    });
    const diagnostics = ck.diagnostics.splice(mark).sort(compareDiagnostics);
    if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics, ignored: [] };

    const named = [...new Set(bound.issuers)];
    const ceilings = [...new Set(named.flatMap((n) => this.engine.ceilings.get(n) ?? []))];
    const names = named.map((n) => `"${n}"`).join(' or ') || '(none)';
    if (ceilings.length === 0) {
      const message = `no lease ceiling names issuer ${names}, so its leases grant nothing`;
      return { diagnostics, ignored: [{ ignored: 'no_ceiling', message }] };
    }
    const fitting = ceilings.filter((c) => bound.lifetimeSec <= c.ir.maxSec);
    if (fitting.length === 0) {
      const allowed = ceilings.map((c) => `max ${c.ir.maxText} for "${c.ir.issuers[0]}"`).join(', ');
      const message = `the lease lives ${bound.lifetimeSec} s (exp - iat), longer than its ceiling allows (${allowed})`;
      return { diagnostics, ignored: [{ ignored: 'exceeds_lifetime', message }] };
    }
    const out: GrantRule[] = [];
    const ignored: IgnoredGrant[] = [];
    for (const ir of irs) {
      const outside = ir.actions.filter((a) => !fitting.some((c) => c.tests.has(a)));
      if (outside.length > 0) {
        ignored.push({ ignored: 'exceeds_ceiling', rule: ir.id, message: exceedsMessage(ir.id, outside, fitting) });
        continue;
      }
      const reason: Reason = Object.freeze({ effect: 'allow', lease: id, rule: ir.id });
      const { rule } = makeCRule({ ...ir, reason });
      out.push({
        rule,
        actions: new Set(ir.actions),
        full: compileCond(ir.cond),
        ir: { ...ir, reason },
        bound: ceilingBound(fitting, ir.actions),
        ceiling: [...new Set(fitting.flatMap((c) => ir.actions.flatMap((a) => c.rules.get(a) ?? [])))],
      });
    }
    return { grant: new GrantSet(id, out), diagnostics, ignored };
  }
}

function exceedsMessage(rule: string, outside: string[], ceilings: CeilingIndex[]): string {
  const shown = outside.length > 4 ? `${outside.slice(0, 4).join(', ')}, …` : outside.join(', ');
  const whose = ceilings.map((c) => `"${c.ir.issuers[0]}"`).join(', ');
  return `${rule} grants ${shown}, outside the lease ceiling of ${whose}`;
}

function grantsOf(options: EvaluateOptions | undefined): GrantSet[] | undefined {
  const g = options?.grants;
  if (g === undefined || g.length === 0) return undefined;
  // Only grants compiled by compileGrant count; anything else handed in is ignored (fail closed).
  return g.filter((x): x is GrantSet => x instanceof GrantSet);
}
