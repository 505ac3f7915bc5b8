// Property test: the indexed decision trees agree with the independent oracle (test/oracle.ts,
// which works from the parse tree alone) on the decision, the reasons (in source order), the
// policy_version and the error code of a malformed request, for random policy sets and random
// requests, including leases under lease ceilings (and which leases or lease rules those set
// aside, and why). 300 policy sets × 48 requests = 14,400 cases per run (5–15 s).
import t from 'tap';
import fc from 'fast-check';
import type { Decision } from '@portcullis/protocol';
import { compile } from '../src/index.js';
import { type OracleDecision, type OracleIgnored, oracle } from './oracle.js';
import { leaseArb, policySetArb, requestArb } from './gen.js';

/** The engine's decision in the oracle's terms: the error as its code (messages are prose). */
function comparable(d: Decision): OracleDecision {
  const { error, explain: _, ...rest } = d as Decision & { explain?: unknown };
  return { ...rest, ...(error ? { error: error.code } : {}) } as OracleDecision;
}

/** JSON with sorted keys: the comparison must not depend on the order fields were written in. */
function canon(x: unknown): string {
  return JSON.stringify(x, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

t.test('decision trees agree with the independent oracle (decision, reasons, version, error)', async (t) => {
  let cases = 0;
  const seen = {
    rules: 0,
    leases: 0,
    malformed: 0,
    roleRules: 0,
    no_ceiling: 0,
    exceeds_lifetime: 0,
    exceeds_ceiling: 0,
  };
  fc.assert(
    fc.property(
      policySetArb,
      fc.array(leaseArb, { maxLength: 2 }),
      fc.array(requestArb, { minLength: 48, maxLength: 48 }),
      (files, leaseSpecs, requests) => {
        const r = compile(files);
        if (!r.policy) {
          const diagnostics = r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code} ${d.message}`);
          throw new Error(
            `generated policy did not compile:\n${diagnostics.join('\n')}\n${files.map((f) => f.text).join('\n')}`,
          );
        }
        const leases = leaseSpecs.map((l, i) => ({ id: `jti-${i}`, ...l }));
        const want = oracle(files, leases);
        const ignored: OracleIgnored[] = [];
        const grants = leases.flatMap((l) => {
          const c = r.policy!.compileGrant(l.id, l.text, { issuers: l.issuers, lifetimeSec: l.lifetimeSec });
          if (c.diagnostics.some((d) => d.severity === 'error'))
            throw new Error(`lease did not compile: ${JSON.stringify(c.diagnostics)}\n${l.text}`);
          for (const x of c.ignored)
            ignored.push({ lease: l.id, ignored: x.ignored, ...(x.rule ? { rule: x.rule } : {}) });
          if (!c.grant) return [];
          return [c.grant];
        });
        // The lease ceilings: which leases and lease rules count for nothing, and why.
        if (canon(ignored) !== canon(want.ignored))
          throw new Error(`ignored leases differ\n got ${canon(ignored)}\nwant ${canon(want.ignored)}`);
        for (const x of ignored) seen[x.ignored]++;
        for (const req of requests) {
          const got = r.policy.evaluate(req, { grants });
          const w = want.evaluate(req);
          cases++;
          if (canon(comparable(got)) !== canon(w)) {
            throw new Error(
              `mismatch for ${JSON.stringify(req)}\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(w)}`,
            );
          }
          if (w.error) seen.malformed++;
          for (const reason of w.reasons) {
            if (reason.lease) seen.leases++;
            else seen.rules++;
            if (reason.policy?.startsWith('role:')) seen.roleRules++;
          }
          // explain walks every applicable rule (not the index): it must decide the same.
          if (cases % 8 === 0) {
            const ex = r.policy.explain(req, { grants });
            if (canon(comparable(ex)) !== canon(w))
              throw new Error(`explain differs for ${JSON.stringify(req)}: ${JSON.stringify(ex)}`);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
  t.ok(cases >= 10_000, `${cases} generated cases`);
  // The generators must exercise rules, leases, roles and malformed requests, not only the default deny.
  t.ok(seen.rules > cases / 10, `${seen.rules} reasons from policy rules`);
  t.ok(seen.leases > cases / 200, `${seen.leases} reasons from leases`);
  t.ok(seen.roleRules > cases / 200, `${seen.roleRules} reasons from top-level role rules`);
  // …and every way a lease ceiling sets a lease or a lease rule aside.
  for (const k of ['no_ceiling', 'exceeds_lifetime', 'exceeds_ceiling'] as const) t.ok(seen[k] > 0, `${seen[k]} ${k}`);
  t.ok(seen.malformed > cases / 50 && seen.malformed < cases / 2, `${seen.malformed} malformed requests`);
});
