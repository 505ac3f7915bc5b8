// policy_version depends on the files' names relative to the policy root and their contents
// only, and follows the recipe dsl/LANGUAGE.md documents: the expected values here are computed
// in the test from that recipe (plain SHA-256 over the documented bytes), not by the code.
import t from 'tap';
import { createHash } from 'node:crypto';
import { compile, policyVersion } from '../src/index.js';

/** The documented recipe, written out independently: sort names by UTF-8 bytes, length-prefix each. */
function recipe(files: Array<[name: string, text: string]>): string {
  const sorted = [...files].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let bytes = Buffer.alloc(0);
  for (const [name, text] of sorted) {
    const n = Buffer.from(name, 'utf8');
    const x = Buffer.from(text, 'utf8');
    bytes = Buffer.concat([bytes, Buffer.from(`${n.length}:`), n, Buffer.from(`\n${x.length}:`), x, Buffer.from('\n')]);
  }
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

const A = 'policy "a" {\n  allow net.connect when resource.host == "a.example"\n}\n';
const B = 'policy "b" {\n  deny net.connect when resource.host == "b.example" because "é"\n}\n';

t.test('the documented example: a root holding only a.pol with "# x\\n"', async (t) => {
  const want = 'sha256:' + createHash('sha256').update('5:a.pol\n4:# x\n\n').digest('hex');
  t.equal(policyVersion([{ path: '/anywhere/a.pol', name: 'a.pol', text: '# x\n' }]), want);
});

t.test('the version hashes names relative to the root, never the path it was loaded from', async (t) => {
  const want = recipe([
    ['team/b.pol', B],
    ['a.pol', A],
  ]);
  const fromHere = compile([
    { path: 'policies/team/b.pol', name: 'team/b.pol', text: B },
    { path: 'policies/a.pol', name: 'a.pol', text: A },
  ]);
  const fromElsewhere = compile([
    { path: '/srv/x/policies/a.pol', name: 'a.pol', text: A },
    { path: '/srv/x/policies/team/b.pol', name: 'team/b.pol', text: B },
  ]);
  t.equal(fromHere.policy?.version, want);
  t.equal(fromElsewhere.policy?.version, want);
  // What changes the version: a name, or a byte of content.
  t.not(policyVersion([{ path: 'x', name: 'c.pol', text: A }]), recipe([['a.pol', A]]));
  t.not(policyVersion([{ path: 'x', name: 'a.pol', text: `${A} ` }]), recipe([['a.pol', A]]));
  // Without a name the path stands in (callers that compile text they hold in memory).
  t.equal(policyVersion([{ path: 'mem.pol', text: A }]), recipe([['mem.pol', A]]));
});

t.test('names sort by UTF-8 bytes (U+FF5E before U+1F600, unlike UTF-16 order)', async (t) => {
  const files: Array<[string, string]> = [
    ['\u{1F600}.pol', '# a\n'],
    ['\uFF5E.pol', '# b\n'],
  ];
  t.equal(policyVersion(files.map(([name, text]) => ({ path: name, name, text }))), recipe(files));
});

t.test('reasons come in name order, whatever the loaded paths look like', async (t) => {
  const deny = (n: string) => `policy "${n}" {\n  deny net.connect when resource.host == "x" because "${n}"\n}\n`;
  const req = { principal: { id: 'p' }, action: 'net.connect', resource: { host: 'x', port: 1 } };
  // Loaded from inside the root: one path is relative, the other absolute (as readPolicySources gives them).
  const a = compile([
    { path: '/r/z.pol', name: 'z.pol', text: deny('z') },
    { path: 'b.pol', name: 'team/b.pol', text: deny('b') },
  ]);
  const b = compile([
    { path: 'r/z.pol', name: 'z.pol', text: deny('z') },
    { path: 'r/team/b.pol', name: 'team/b.pol', text: deny('b') },
  ]);
  const order = (p: typeof a) => p.policy!.evaluate(req).reasons.map((r) => r.because);
  t.same(order(a), ['b', 'z']);
  t.same(order(b), ['b', 'z']);
});
