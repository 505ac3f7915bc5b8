/**
 * The documentation is self-contained: every relative link in every Markdown file of the
 * repository resolves to a file in the repository (and a `#fragment` to a heading of the target
 * file), and no file points at the team's private notes outside the repository.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', 'dist', 'generated', 'results']);
const TEXT = /\.(md|ts|mjs|js|json|peggy|ya?ml|txt|sh)$|^run$/;

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      // Dot directories are tool state (.git, .tap, .tools), except the CI script's.
      if (!SKIP_DIRS.has(entry.name) && (!entry.name.startsWith('.') || entry.name === '.ci'))
        walk(join(dir, entry.name), out);
    } else if (TEXT.test(entry.name)) out.push(join(dir, entry.name));
  }
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces become hyphens. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Inline links and images `[x](target)` and reference definitions `[x]: target`, outside code. */
function links(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  let fenced = false;
  markdown.split('\n').forEach((text, i) => {
    if (/^\s*(```|~~~)/.test(text)) fenced = !fenced;
    if (fenced) return;
    const line = text.replace(/`[^`]*`/g, '');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ target: m[1]!, line: i + 1 });
    const def = /^\s*\[[^\]]+\]:\s*(\S+)/.exec(line);
    if (def) out.push({ target: def[1]!, line: i + 1 });
  });
  return out;
}

const files = walk(root);
const markdown = files.filter((f) => f.endsWith('.md'));

t.test('the walk finds the documentation it must check', async (tt) => {
  for (const doc of ['README.md', 'docs/architecture.md', 'docs/errors.md', 'dsl/LANGUAGE.md'])
    tt.ok(markdown.includes(join(root, doc)), `${doc} is checked`);
});

t.test('every relative link in a Markdown file resolves in the repository', async (tt) => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdown) {
    const text = readFileSync(file, 'utf8');
    for (const { target, line } of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: — not ours to resolve
      checked++;
      const where = `${relative(root, file)}:${line}: ${target}`;
      const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
      const dest = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
      if (!dest.startsWith(root + '/') && dest !== root) {
        broken.push(`${where} (points outside the repository)`);
        continue;
      }
      let isFile: boolean;
      try {
        isFile = statSync(dest).isFile();
      } catch {
        broken.push(`${where} (no such file)`);
        continue;
      }
      if (fragment !== undefined && isFile && dest.endsWith('.md')) {
        if (!anchors(readFileSync(dest, 'utf8')).has(fragment.toLowerCase()))
          broken.push(`${where} (no heading #${fragment} in ${relative(root, dest)})`);
      }
    }
  }
  tt.ok(checked > 20, `checked ${checked} relative links`);
  tt.same(broken, [], 'no broken links');
});

t.test('nothing in the repository points at files outside it', async (tt) => {
  const outside = /(^|[^\w.-])shared\/|DESIGN\.md|POLICY-LANGUAGE|STYLE\.md/;
  const self = fileURLToPath(import.meta.url);
  const hits: string[] = [];
  for (const file of files.filter((f) => f !== self)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (outside.test(line)) hits.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  tt.same(hits, [], 'no references to files outside the repository');
});

t.test('the anchor rule matches the headings it is given', async (tt) => {
  tt.same(
    [...anchors('# A request, end to end\n## `--explain`\n## Leases\n## Leases\n```\n# not a heading\n```')],
    ['a-request-end-to-end', '--explain', 'leases', 'leases-1'],
  );
});
