/**
 * The policy language's conformance corpus: every case in dsl/conformance/cases/*.json is run
 * against @portcullis/policy and must give the decision (and reasons, or diagnostics) that
 * the language reference (dsl/LANGUAGE.md) prescribes. Expected values were written from the specification, never
 * captured from the implementation. The format is documented in dsl/conformance/README.md.
 */
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// dsl/ is not a workspace package, so the implementation is imported by path (from source, via tsx).
import {
  compile,
  type CompileResult,
  type CompiledPolicy,
  type Diagnostic,
  type LeaseGrant,
} from '../../packages/policy/src/index.js';
import type { Decision, Reason } from '../../packages/protocol/src/types.js';

type Lines = string | string[];

interface GrantSpec {
  id: string;
  rules: Lines;
  /** The names its issuer goes by (the verifying key's kid, its bound iss): the ceilings that apply. */
  issuer: string | string[];
  /** exp - iat in seconds; default 600. */
  lifetime?: number;
  /** compileGrant must refuse these rules (e.g. a lease carrying `deny`). */
  invalid?: boolean;
  /** Exactly these ignore reasons ({ignored, rule?}) for the lease or its rules; default none. */
  ignored?: Array<{ ignored: string; rule?: string }>;
}

interface Loc {
  file?: string;
  /** A line, or the lines any one of which is an acceptable place to report the problem. */
  line: number | number[];
  /** Prefix of the diagnostic code; defaults to "PCX_". */
  code?: string;
  /** Text the message must contain (e.g. the "did you mean" suggestion). */
  message?: string;
}

interface Expect {
  decision: 'allow' | 'deny' | 'ask';
  /** The exact set of rule ids in `reasons` (order-free). [] = no rule produced the decision. */
  rules?: string[];
  /** Reasons must be non-empty and every rule id one of these (several allows may apply). */
  rulesAnyOf?: string[];
  /** Rule ids that must appear among the reasons (others may too). */
  rulesInclude?: string[];
  /** Each of these must equal, field by field, some reason. */
  reasons?: Partial<Reason>[];
  /** The request is malformed: deny with error.code PCX_REQ_…, whose message mentions this text. */
  malformed?: string;
}

interface Case {
  name: string;
  /** The specification text the case checks. */
  spec: string;
  policies?: Record<string, Lines>;
  grants?: GrantSpec[];
  request?: unknown;
  expect?: Expect;
  /** Expected compile diagnostics: with `errors`, compile must fail and report each of them. */
  compile?: { errors?: Loc[]; warnings?: Loc[]; noWarnings?: boolean };
}

interface CaseFile {
  topic: string;
  policies?: Record<string, Lines>;
  cases: Case[];
}

const casesDir = join(dirname(fileURLToPath(import.meta.url)), 'cases');
const text = (l: Lines): string => (Array.isArray(l) ? l.join('\n') + '\n' : l);

const compiled = new Map<string, CompileResult>();
function compileSet(policies: Record<string, Lines>): CompileResult {
  const key = JSON.stringify(policies);
  let r = compiled.get(key);
  if (!r) {
    r = compile(Object.entries(policies).map(([path, lines]) => ({ path, text: text(lines) })));
    compiled.set(key, r);
  }
  return r;
}

const show = (x: unknown): string => JSON.stringify(x);
const linesOf = (l: Loc): number[] => (Array.isArray(l.line) ? l.line : [l.line]);
const matchesLoc = (d: Diagnostic, l: Loc): boolean =>
  (l.file === undefined || d.file === l.file) &&
  linesOf(l).includes(d.line) &&
  d.code.startsWith(l.code ?? 'PCX_') &&
  (l.message === undefined || d.message.includes(l.message));

function checkDiagnostics(tt: Test, c: Case, result: CompileResult): void {
  const spec = c.compile!;
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
  for (const d of result.diagnostics)
    tt.match(d.code, /^PCX_[A-Z0-9_]+$/, `diagnostic code is a stable PCX_ code: ${show(d)}`);
  if (spec.errors) {
    tt.equal(result.policy, undefined, 'a set with errors yields no policy');
    for (const e of spec.errors)
      tt.ok(
        errors.some((d) => matchesLoc(d, e)),
        `an error at ${show(e)}; got ${show(errors)}`,
      );
  } else {
    tt.same(errors, [], 'no errors');
    tt.ok(result.policy, 'the set compiles');
  }
  for (const w of spec.warnings ?? [])
    tt.ok(
      warnings.some((d) => matchesLoc(d, w)),
      `a warning at ${show(w)}; got ${show(warnings)}`,
    );
  if (spec.noWarnings) tt.same(warnings, [], 'no warnings');
}

function compileGrants(tt: Test, policy: CompiledPolicy, grants: GrantSpec[]): LeaseGrant[] {
  const out: LeaseGrant[] = [];
  for (const g of grants) {
    const issuers = Array.isArray(g.issuer) ? g.issuer : [g.issuer];
    const r = policy.compileGrant(g.id, text(g.rules), { issuers, lifetimeSec: g.lifetime ?? 600 });
    const errs = r.diagnostics.filter((d) => d.severity === 'error');
    tt.same(
      r.ignored.map((i) => ({ ignored: i.ignored, ...(i.rule !== undefined ? { rule: i.rule } : {}) })),
      g.ignored ?? [],
      `lease ${g.id}: ignored ${show(g.ignored ?? [])}; got ${show(r.ignored)}`,
    );
    for (const i of r.ignored) tt.ok(i.message.length > 0, `an ignore reason says why: ${i.message}`);
    if (g.ignored?.some((i) => i.rule === undefined)) {
      tt.equal(r.grant, undefined, `lease ${g.id} grants nothing`);
      continue;
    }
    if (g.invalid) {
      tt.equal(r.grant, undefined, `lease ${g.id} is refused`);
      tt.ok(errs.length > 0, `lease ${g.id} gets an error diagnostic`);
    } else {
      tt.same(errs, [], `lease ${g.id} compiles`);
      if (r.grant) out.push(r.grant);
    }
  }
  return out;
}

function checkDecision(tt: Test, c: Case, files: string[], d: Decision): void {
  const e = c.expect!;
  const got = `got ${show(d)}`;
  tt.equal(d.decision, e.decision, `decision ${e.decision}; ${got}`);
  tt.match(d.policy_version, /^sha256:[0-9a-f]{64}$/, 'carries the policy version');
  const ruleReasons = d.reasons.filter((r) => r.rule !== undefined);
  const ids = ruleReasons.map((r) => r.rule!).sort();
  if (e.malformed !== undefined) {
    tt.match(d.error?.code, /^PCX_REQ_/, `malformed: error code PCX_REQ_…; ${got}`);
    tt.ok(d.error?.message.includes(e.malformed), `error message mentions ${show(e.malformed)}; ${got}`);
    tt.same(ids, [], 'a malformed request is decided by no rule');
    return;
  }
  tt.equal(d.error, undefined, `a well-formed request has no error; ${got}`);
  if (e.rules) tt.same(ids, [...e.rules].sort(), `reasons are exactly ${show(e.rules)}; ${got}`);
  if (e.rulesAnyOf) {
    tt.ok(
      ids.length > 0 && ids.every((id) => e.rulesAnyOf!.includes(id)),
      `reasons non-empty, among ${show(e.rulesAnyOf)}; ${got}`,
    );
  }
  for (const id of e.rulesInclude ?? []) tt.ok(ids.includes(id), `reasons include ${id}; ${got}`);
  for (const want of e.reasons ?? []) {
    const hit = d.reasons.some((r) =>
      Object.entries(want).every(([k, v]) => show((r as Record<string, unknown>)[k]) === show(v)),
    );
    tt.ok(hit, `a reason ${show(want)}; ${got}`);
  }
  // Invariants of the semantics, for every case: a deny lists only denies, an ask only asks;
  // every policy rule points at its source; a lease rule names its lease.
  if (d.decision === 'deny')
    tt.ok(
      ruleReasons.every((r) => r.effect === 'deny'),
      `deny reasons are denies; ${got}`,
    );
  if (d.decision === 'ask')
    tt.ok(
      ruleReasons.every((r) => r.effect === 'ask'),
      `ask reasons are asks; ${got}`,
    );
  for (const r of ruleReasons) {
    if (r.rule!.startsWith('lease:')) {
      tt.ok(
        r.lease !== undefined && r.rule!.startsWith(`lease:${r.lease}#`) && r.effect === 'allow',
        `lease reason well-formed: ${show(r)}`,
      );
    } else {
      const m = /^(.*):(\d+):(\d+)$/.exec(r.source ?? '');
      tt.ok(m && files.includes(m[1]!), `reason source is file:line:col of a policy file: ${show(r)}`);
    }
  }
}

const files = readdirSync(casesDir)
  .filter((f) => f.endsWith('.json'))
  .sort();
let total = 0;
for (const file of files) {
  const data = JSON.parse(readFileSync(join(casesDir, file), 'utf8')) as CaseFile;
  total += data.cases.length;
  t.test(`${file}: ${data.topic}`, async (ft) => {
    const names = new Set<string>();
    for (const c of data.cases) {
      ft.notOk(names.has(c.name), `case names are unique in ${file}: ${c.name}`);
      names.add(c.name);
      ft.test(c.name, async (tt) => {
        const policies = c.policies ?? data.policies;
        if (!policies) throw new Error(`${file}: case "${c.name}" has no policies`);
        const result = compileSet(policies);
        if (c.compile) checkDiagnostics(tt, c, result);
        if (!c.expect && !c.grants) return;
        if (!result.policy) {
          tt.fail(
            `the policy set does not compile: ` +
              `${result.diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.code}: ${d.message}`).join('; ')}`,
          );
          return;
        }
        const grants = compileGrants(tt, result.policy, c.grants ?? []);
        if (!c.expect) return;
        const options = grants.length > 0 ? { grants } : undefined;
        const decision = result.policy.evaluate(c.request, options);
        checkDecision(tt, c, Object.keys(policies), decision);
        // Evaluation is deterministic, and explain decides exactly as evaluate does.
        tt.same(result.policy.evaluate(c.request, options), decision, 'the same decision a second time');
        const { explain: _, ...explained } = result.policy.explain(c.request, options);
        tt.same(explained, decision, 'explain gives the same decision and reasons');
      });
    }
  });
}

t.test('the corpus is large enough to mean something', async (tt) => {
  tt.ok(total >= 80, `${total} cases`);
});
