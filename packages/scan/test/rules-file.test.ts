// Rules files: a good file adds its rules to the built-in ones (minus those it disables) and they
// find what they describe, with the group's exact span; each broken fixture is refused with
// PCX_SCAN_BAD_RULES naming file:line:col of the offending value, the field and a useful hint.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isPcxError } from '@portcullis/protocol';
import { BUILTIN_RULES, createScanner, parseRules } from '../src/index.js';

const dir = join(import.meta.dirname, '../../../testdata/scan/rules');
const load = (name: string) => parseRules(readFileSync(join(dir, name), 'utf8'), `rules/${name}`);

t.test('a rules file extends the built-in rules and its rules find what they describe', async (t) => {
  const rules = load('good.json');
  const ids = rules.map((r) => r.id);
  t.notOk(ids.includes('generic-assignment'), 'a disabled built-in rule is gone');
  t.ok(ids.includes('github-token'), 'the other built-in rules stay');
  t.same(ids.slice(-2), ['stripe-live-key', 'internal-db-url']);
  const scanner = createScanner({ rules });
  const key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dcQ2mN';
  const text = `STRIPE=${key}\nDATABASE_URL=POSTGRES://app:pa55w0rd-Xq9z@db:5432/app\npassword = "Zq8#vL2!pX9@mR4t"\n`;
  const { findings, redacted } = scanner.scan(text);
  t.same(
    findings.map((f) => [f.kind, f.rule, text.slice(f.start, f.end)]),
    [
      ['stripe', 'stripe-live-key', key],
      ['database', 'internal-db-url', 'pa55w0rd-Xq9z'],
    ],
    'the group is the span (flag i honoured); the disabled generic rule finds nothing',
  );
  t.match(redacted, 'app:[REDACTED:database]@db');
  t.notOk(scanner.scan('sk_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaa').findings.length, 'the entropy floor applies');
  t.notOk(scanner.scan('sk_live_4eC39HqLyjWDarjtTESTdp7dcQ2mN').findings.length, 'an excluded value is not reported');
});

t.test('"builtin": false keeps only the file\'s rules', async (t) => {
  const text = '{"format":"portcullis-scan-rules","version":1,"builtin":false,"rules":[]}';
  t.same(parseRules(text, 'x.json'), []);
  t.equal(parseRules('{"format":"portcullis-scan-rules","version":1,"rules":[]}', 'x').length, BUILTIN_RULES.length);
});

const broken: [string, RegExp, RegExp][] = [
  ['bad-syntax.txt', /^rules\/bad-syntax\.txt:6:3: not valid JSON: a trailing comma, or a missing value/, /README/],
  ['bad-regex.json', /^rules\/bad-regex\.json:9:18: rules\[0\]\.pattern: not a valid regular expression/, /README/],
  ['bad-field.json', /^rules\/bad-field\.json:8:19: rules\[0\]\.keywrods: unknown field "keywrods"/, /"keywords"/],
  [
    'bad-disable.json',
    /^rules\/bad-disable\.json:4:15: disable\[0\]: "github-tokens" is not a built-in/,
    /"github-token"/,
  ],
  ['bad-group.json', /:4:117: rules\[0\]\.group: must be a whole number from 0 .* to 1/, /README/],
  ['bad-empty-match.json', /:4:82: rules\[0\]\.pattern: matches the empty string/, /README/],
  ['bad-duplicate.json', /:4:21: rules\[0\]\.id: rule id "jwt" is used twice/, /add it to "disable"/],
  ['bad-version.json', /:1:49: version: version 2 is not one this scanner reads/, /README/],
];

t.test('each broken rules file is refused with file:line:col, the field and a hint', async (t) => {
  for (const [name, message, hint] of broken) {
    try {
      load(name);
      t.fail(`${name} was accepted`);
    } catch (e) {
      t.ok(isPcxError(e) && e.code === 'PCX_SCAN_BAD_RULES', `${name}: PCX_SCAN_BAD_RULES`);
      t.match((e as Error).message, message, name);
      t.match((e as { hint?: string }).hint, hint, `${name}: hint`);
    }
  }
});

t.test('hostile or odd JSON is refused cleanly', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /x:1:1: not valid JSON: the text ends too soon/],
    ['[1]', /x:1:1: expected a JSON object/],
    ['{"format":"portcullis-scan-rules","format":1}', /x:1:35: not valid JSON: duplicate member "format"/],
    ['['.repeat(100_000), /nested more than 64 levels/],
    ['{"a":"\u0001"}', /a string is not closed/],
    ['{} x', /x:1:4: not valid JSON: unexpected text after the end/],
    ['{"format":"portcullis-scan-rules","version":1,"rules":[{"id":"A b"}]}', /rules\[0\]\.id: must be 1-64/],
    [
      '{"format":"portcullis-scan-rules","version":1,' +
        '"rules":[{"id":"a","kind":"b","keywords":["k"],"pattern":"k","flags":"g"}]}',
      /rules\[0\]\.flags: must be made of/,
    ],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parseRules(text, 'x'), { code: 'PCX_SCAN_BAD_RULES', message }, JSON.stringify(text.slice(0, 40)));
  }
});
