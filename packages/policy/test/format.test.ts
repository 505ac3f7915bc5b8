// The formatter: canonical, idempotent, keeps every comment, and never changes a decision.
import t from 'tap';
import fc from 'fast-check';
import type { Decision } from '@portcullis/protocol';
import { compile, format } from '../src/index.js';
import { policySetArb, requestArb } from './gen.js';

const messy =
  `# header
let   nets=["10.0.0.0/8",   "1.2.3.4",]   # trailing


policy "p"   scope project "a"{ # open
  # leading rule comment
  allow net.connect when resource.host matches "**.x.com"   and (resource.port==443 or not resource.ip exists) ` +
  `because "ok \\"q\\""
  allow fs.read when resource.path == "/a" # inside
    and principal.team == "x"

  role dev extends a,b { deny fs.* }
  # before close
}
role a {}
role b {
}
action deploy.app {env:string,replicas?:number}
# end
`;

t.test('canonical layout of a messy file', async (t) => {
  const r = format({ path: 'm.pol', text: messy });
  t.same(r.diagnostics, []);
  const out = r.text!;
  t.match(out, /^let nets = \["10\.0\.0\.0\/8", "1\.2\.3\.4"\] # trailing$/m);
  t.match(out, /^policy "p" scope project "a" \{ # open$/m);
  t.match(
    out,
    new RegExp(
      /^ {2}allow net\.connect when resource\.host matches "\*\*\.x\.com" and /.source +
        /\(resource\.port == 443 or not resource\.ip exists\) because "ok \\"q\\""$/.source,
      'm',
    ),
  );
  t.match(out, /^ {2}role dev extends a, b \{\n {4}deny fs\.\*\n {2}\}$/m);
  t.match(out, /^role b \{\}$/m);
  t.match(out, /^action deploy\.app \{ env: string, replicas\?: number \}$/m);
  t.notMatch(out, /\n\n\n/, 'at most one blank line');
  for (const c of ['# header', '# trailing', '# open', '# leading rule comment', '# inside', '# before close', '# end'])
    t.ok(out.includes(c), `keeps ${c}`);
  t.equal(format({ path: 'm.pol', text: out }).text, out, 'idempotent');
});

t.test('syntax errors: no text, the diagnostics', async (t) => {
  const r = format({ path: 'bad.pol', text: 'policy "x" {\n  allow\n}\n' });
  t.equal(r.text, undefined);
  t.equal(r.diagnostics[0]!.code, 'PCX_PARSE_EXPECTED_ACTION');
});

function stripSource(d: Decision) {
  return { decision: d.decision, error: d.error?.code, reasons: d.reasons.map((r) => ({ ...r, source: undefined })) };
}

t.test('property: idempotent, comments kept, decisions unchanged', async (t) => {
  let n = 0;
  fc.assert(
    fc.property(policySetArb, fc.array(requestArb, { minLength: 20, maxLength: 20 }), (files, requests) => {
      const formatted = files.map((f) => {
        const r = format(f);
        if (r.text === undefined) throw new Error(`format failed: ${JSON.stringify(r.diagnostics)}`);
        if (format({ path: f.path, text: r.text }).text !== r.text) throw new Error(`not idempotent:\n${f.text}`);
        const comments = (s: string) => s.split('\n').filter((l) => l.trim().startsWith('#')).length;
        if (comments(r.text) !== comments(f.text)) throw new Error('a comment was lost');
        return { path: f.path, text: r.text };
      });
      const a = compile(files).policy!;
      const b = compile(formatted).policy!;
      for (const req of requests) {
        n++;
        const x = JSON.stringify(stripSource(a.evaluate(req)));
        const y = JSON.stringify(stripSource(b.evaluate(req)));
        if (x !== y) throw new Error(`formatting changed a decision for ${JSON.stringify(req)}: ${x} vs ${y}`);
      }
    }),
    { numRuns: 150 },
  );
  t.ok(n >= 3000, `${n} requests compared`);
});
