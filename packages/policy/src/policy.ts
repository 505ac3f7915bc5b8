/** compile(): sources → parse → check → decision trees; the CompiledPolicy handle. */
import { createHash } from 'node:crypto';
import type { Decision, Reason } from '@portcullis/protocol';
import type { Diagnostic } from './diagnostics.js';
import { compareDiagnostics } from './diagnostics.js';
import type { Checker, ParsedFile } from './check.js';
import { checkSet } from './check.js';
import type { ExplainEntry, GrantRule } from './engine.js';
import { Engine, GrantSet, compileCond, makeCRule } from './engine.js';
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
export interface EvaluateOptions {
  grants?: readonly LeaseGrant[];
}

export interface CompiledPolicy {
  /** "sha256:<hex>" over the sources (name + text, sorted by name): the policy_version (see policyVersion). */
  readonly version: string;
  readonly ruleCount: number;
  /** Never throws. Malformed request → deny with `error` {code, message} (a request code such as PCX_REQ_BAD_TYPE). */
  evaluate(request: unknown, options?: EvaluateOptions): Decision;
  /** Like evaluate, plus the candidate rules considered and which conditions failed. */
  explain(request: unknown, options?: EvaluateOptions): Decision & { explain: unknown };
  /** Compiles a lease's rules (allow only) against this set's schema and constants. */
  compileGrant(id: string, rules: string): { grant?: LeaseGrant; diagnostics: Diagnostic[] };
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
  constructor(
    readonly engine: Engine,
    private readonly checker: Checker,
  ) {
    this.version = engine.version;
    this.ruleCount = engine.ruleCount;
  }

  evaluate(request: unknown, options?: EvaluateOptions): Decision {
    return this.engine.evaluate(request, grantsOf(options));
  }

  explain(request: unknown, options?: EvaluateOptions): Decision & { explain: unknown } {
    const candidates: ExplainEntry[] = [];
    const d = this.engine.evaluate(request, grantsOf(options), candidates);
    return { ...d, explain: { candidates } };
  }

  compileGrant(id: string, rules: string): { grant?: LeaseGrant; diagnostics: Diagnostic[] } {
    const file = `lease:${id}`;
    const p = parseGrant(rules, file);
    if (!p.ast) return { diagnostics: p.diagnostics };
    const ck = this.checker;
    const mark = ck.diagnostics.length;
    const out: GrantRule[] = [];
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
      if (!ir) return;
      const reason: Reason = Object.freeze({ effect: 'allow', lease: id, rule: ir.id });
      const { rule } = makeCRule({ ...ir, reason });
      out.push({ rule, actions: new Set(ir.actions), full: compileCond(ir.cond), ir: { ...ir, reason } });
    });
    const diagnostics = ck.diagnostics.splice(mark).sort(compareDiagnostics);
    if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
    return { grant: new GrantSet(id, out), diagnostics };
  }
}

function grantsOf(options: EvaluateOptions | undefined): GrantSet[] | undefined {
  const g = options?.grants;
  if (g === undefined || g.length === 0) return undefined;
  // Only grants compiled by compileGrant count; anything else handed in is ignored (fail closed).
  return g.filter((x): x is GrantSet => x instanceof GrantSet);
}
