// Property test: the indexed decision trees agree with the naive oracle (test/oracle.ts) on the
// decision AND the reasons (in source order) for random policy sets and random requests,
// including leases. 250 policy sets × 48 requests = 12,000 cases per run.
import t from 'tap';
import fc from 'fast-check';
import { compile } from '../src/index.js';
import { parseAll } from '../src/policy.js';
import { checkSet } from '../src/check.js';
import type { GrantSet } from '../src/engine.js';
import { oracleEvaluate } from './oracle.js';
import { grantArb, policySetArb, requestArb } from './gen.js';

t.test('decision trees agree with the naive oracle (decision and reasons)', async (t) => {
  let cases = 0;
  let nonDefault = 0;
  fc.assert(
    fc.property(
      policySetArb,
      fc.array(grantArb, { maxLength: 2 }),
      fc.array(requestArb, { minLength: 48, maxLength: 48 }),
      (files, grantTexts, requests) => {
        const r = compile(files);
        if (!r.policy) {
          const diagnostics = r.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code} ${d.message}`);
          throw new Error(
            `generated policy did not compile:\n${diagnostics.join('\n')}\n${files.map((f) => f.text).join('\n')}`,
          );
        }
        const { model } = checkSet(parseAll(files).parsed);
        const grants = grantTexts.map((g, i) => {
          const c = r.policy!.compileGrant(`jti-${i}`, g, { issuers: ['gen'], lifetimeSec: 600 });
          if (!c.grant) throw new Error(`grant did not compile: ${JSON.stringify(c.diagnostics)}\n${g}`);
          return c.grant;
        });
        for (const req of requests) {
          const got = r.policy.evaluate(req, { grants });
          const want = oracleEvaluate(model!, r.policy.version, req, grants as unknown as GrantSet[]);
          cases++;
          if (got.reasons.length > 0) nonDefault++;
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            throw new Error(
              `mismatch for ${JSON.stringify(req)}\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`,
            );
          }
          // explain walks every applicable rule (not the index): it must decide the same.
          if (cases % 8 === 0) {
            const { explain: _, ...ex } = r.policy.explain(req, { grants });
            if (JSON.stringify(ex) !== JSON.stringify(want))
              throw new Error(`explain differs for ${JSON.stringify(req)}: ${JSON.stringify(ex)}`);
          }
        }
      },
    ),
    { numRuns: 250 },
  );
  t.ok(cases >= 10_000, `${cases} generated cases`);
  // The generators must actually exercise rules, not only the default deny.
  t.ok(nonDefault > cases / 10, `${nonDefault} decisions came from rules or leases`);
});
