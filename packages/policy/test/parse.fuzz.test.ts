// Parser fuzzing: random bytes, random token soup and mutations of valid policies never crash
// or hang the parser/checker: each input yields either a policy or diagnostics with stable
// codes and in-range positions, within a bounded time.
import t from 'tap';
import fc from 'fast-check';
import { compile, format } from '../src/index.js';
import { policySetArb } from './gen.js';

const TOKENS = [
  'policy',
  'role',
  'let',
  'action',
  'allow',
  'deny',
  'ask',
  'when',
  'because',
  'and',
  'or',
  'not',
  'in',
  'matches',
  'exists',
  'scope',
  'global',
  'project',
  'extends',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ',',
  '==',
  '!=',
  '<',
  '>=',
  '"x"',
  '"**.a.com"',
  '"/a/**"',
  '"\\u{41}"',
  '"\\q',
  '42',
  '-1.5',
  'true',
  'resource.host',
  'principal.roles',
  'context.project',
  'action',
  'net.*',
  '*',
  'fs.read',
  'x',
  '#c\n',
  '\n',
  ' ',
  '"',
  '?',
  ':',
  '.',
  '\u00e9',
  '\u0000',
];

function assertWellFormed(text: string): void {
  const started = performance.now();
  const files = [{ path: 'f.pol', text }];
  const r = compile(files);
  const lines = text.split('\n').length;
  for (const d of r.diagnostics) {
    if (!/^PCX_(PARSE|CHECK)_[A-Z_]+$/.test(d.code) || d.line < 1 || d.line > lines + 1 || d.col < 1 || !d.message) {
      throw new Error(`bad diagnostic ${JSON.stringify(d)} for ${JSON.stringify(text)}`);
    }
  }
  if (!r.policy && !r.diagnostics.some((d) => d.severity === 'error'))
    throw new Error(`no policy and no error for ${JSON.stringify(text)}`);
  const f = format(files[0]!);
  if (f.text === undefined && !f.diagnostics.some((d) => d.code.startsWith('PCX_PARSE_')))
    throw new Error(`format failed without a syntax error for ${JSON.stringify(text)}`);
  const ms = performance.now() - started;
  if (ms > 2000) throw new Error(`took ${ms} ms for ${JSON.stringify(text.slice(0, 200))}`);
}

t.test('random strings never crash the parser', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => assertWellFormed(s)),
    { numRuns: 1000 },
  );
  t.pass('1000 random strings');
});

t.test('token soup never crashes the parser', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 80 }), (toks) => assertWellFormed(toks.join(' '))),
    { numRuns: 2000 },
  );
  t.pass('2000 token soups');
});

t.test('mutations of valid policies never crash the parser', async (t) => {
  const mutation = fc.tuple(
    fc.nat(),
    fc.nat({ max: 20 }),
    fc.constantFrom(...TOKENS, ''),
    fc.constantFrom('delete', 'insert', 'replace'),
  );
  fc.assert(
    fc.property(policySetArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (files, muts) => {
      let text = files.map((f) => f.text).join('\n');
      for (const [at, len, tok, kind] of muts) {
        const i = at % (text.length + 1);
        text =
          kind === 'delete'
            ? text.slice(0, i) + text.slice(i + len)
            : kind === 'insert'
              ? text.slice(0, i) + tok + text.slice(i)
              : text.slice(0, i) + tok + text.slice(i + len);
      }
      assertWellFormed(text);
    }),
    { numRuns: 400 },
  );
  t.pass('400 mutated policy sets');
});

t.test('pathological nesting is an error, not a crash', async (t) => {
  const deep = `policy "p" { allow fs.read when ${'('.repeat(20000)}resource.path == "/"${')'.repeat(20000)} }`;
  const r = compile([{ path: 'deep.pol', text: deep }]);
  t.ok(r.policy || r.diagnostics.length > 0, 'compiles or reports');
  if (!r.policy) t.match(r.diagnostics[0]!.code, /^PCX_PARSE_/);
  const long = `policy "p" { ${'allow fs.read when resource.path == "/a" '.repeat(5000)} }`;
  const started = performance.now();
  const r2 = compile([{ path: 'long.pol', text: long }]);
  t.ok(r2.policy, '5000 rules on one line compile');
  t.ok(performance.now() - started < 5000, 'in bounded time');
});
