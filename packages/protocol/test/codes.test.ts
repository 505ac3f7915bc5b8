// The table of error codes (src/codes.ts) against the code base: docs/errors.md is exactly what
// the generator renders, every PCX_ literal in a source file is a whole code in the table (no
// prefixes, nothing assembled at run time), every entry is used somewhere, and each meaning is
// one lower-case line without a final period.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, isPcxCode } from '../src/index.js';
import { ERRORS_DOC, renderErrorsDoc } from '../../../scripts/gen-errors-doc.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TABLE = join(root, 'packages', 'protocol', 'src', 'codes.ts');
const LITERAL = /\bPCX_[A-Z0-9_]+/g;

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  // A package may have no test/ directory yet.
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.split('/').includes('node_modules') && keep(f))
    .map((f) => join(dir, f));
}

/** packages/<name>/src/**.ts (the generated parser included) and the grammar it is built from. */
function sourceFiles(): string[] {
  const packages = join(root, 'packages');
  const out = [join(root, 'dsl', 'policy.peggy')];
  for (const p of readdirSync(packages)) out.push(...filesUnder(join(packages, p, 'src'), (f) => f.endsWith('.ts')));
  return out.filter((f) => f !== TABLE);
}

/** Tests and READMEs: where a code is asserted or documented. */
function otherFiles(): string[] {
  const packages = join(root, 'packages');
  const out = [join(root, 'README.md'), ...filesUnder(join(root, 'test'), (f) => f.endsWith('.ts'))];
  out.push(...filesUnder(join(root, 'dsl'), (f) => /\.(ts|md|json|pol)$/.test(f)));
  out.push(...filesUnder(join(root, 'examples'), (f) => /\.(md|json)$/.test(f)));
  for (const p of readdirSync(packages)) {
    out.push(join(packages, p, 'README.md'));
    out.push(...filesUnder(join(packages, p, 'test'), (f) => f.endsWith('.ts')));
  }
  return out.filter((f) => f !== fileURLToPath(import.meta.url));
}

function literals(files: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // a package without a README
    }
    text.split('\n').forEach((line, i) => {
      for (const m of line.matchAll(LITERAL)) {
        const where = `${relative(root, file)}:${i + 1}`;
        found.set(m[0], [...(found.get(m[0]) ?? []), where]);
      }
    });
  }
  return found;
}

t.test('docs/errors.md is what the generator renders from the table', async (t) => {
  const doc = readFileSync(ERRORS_DOC, 'utf8');
  t.ok(doc === renderErrorsDoc(), 'docs/errors.md is out of date: run "npm run errors-doc" and commit the result');
});

t.test('every PCX_ literal in a source file is a whole code from the table', async (t) => {
  const unknown: string[] = [];
  for (const [code, where] of literals(sourceFiles())) {
    if (isPcxCode(code)) continue;
    const why = code.endsWith('_') ? 'a code prefix (branch on exact codes, build none)' : 'not in the table';
    unknown.push(`${code}: ${why}; at ${where.join(', ')}`);
  }
  t.same(unknown, [], 'add new codes to packages/protocol/src/codes.ts');
});

t.test('every code in the table is used by some source file', async (t) => {
  const used = literals(sourceFiles());
  const dead = Object.keys(ERROR_CODES).filter((code) => !used.has(code));
  t.same(dead, [], 'remove unused entries from packages/protocol/src/codes.ts');
});

t.test('tests and READMEs name only codes that exist', async (t) => {
  const unknown: string[] = [];
  for (const [code, where] of literals(otherFiles())) {
    // A prefix in a pattern (/^PCX_PARSE_/, "error": "PCX_REQ_") names a family, not a code.
    if (code.endsWith('_') || isPcxCode(code)) continue;
    unknown.push(`${code} at ${where.join(', ')}`);
  }
  t.same(unknown, []);
});

t.test('each code is PCX_<AREA>_<WHAT>; each meaning one lower-case line without a final period', async (t) => {
  const bad = Object.entries(ERROR_CODES)
    .filter(([code, m]) => !/^PCX_[A-Z0-9]+(_[A-Z0-9]+)*$/.test(code) || !/^[^A-Z\s]/.test(m) || /\.$|\n/.test(m))
    .map(([code]) => code);
  t.same(bad, []);
});
