// The VS Code extension packages as users install it: esbuild bundles the client, `vsce package`
// (the Marketplace's own packager) must succeed, and the .vsix carries the grammar and the manifest
// that starts `portcullis lsp --stdio`.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ext = join(root, 'editors', 'vscode');
const require = createRequire(join(ext, 'package.json'));

t.test('vsce packages the extension with its grammar and bundled client', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'pcx-vsix-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const node = process.execPath;
  // The extension is type-checked against the VS Code API it targets (engines.vscode).
  const tsc = join(dirname(createRequire(join(root, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc');
  execFileSync(node, [tsc, '-p', join(ext, 'tsconfig.json')], { stdio: 'pipe' });
  execFileSync(
    node,
    [
      join(dirname(require.resolve('esbuild/package.json')), 'bin', 'esbuild'),
      'src/extension.ts',
      '--bundle',
      '--platform=node',
      '--format=cjs',
      '--external:vscode',
      '--outfile=dist/extension.js',
    ],
    { cwd: ext, stdio: 'pipe' },
  );
  const bundle = readFileSync(join(ext, 'dist', 'extension.js'), 'utf8');
  t.match(bundle, /"lsp", "--stdio"/, 'the bundle starts the language server');
  t.notMatch(bundle, /require\("vscode-languageclient/, 'the client library is bundled, not required');
  const vsix = join(out, 'portcullis-policy.vsix');
  execFileSync(
    node,
    [join(dirname(require.resolve('@vscode/vsce/package.json')), 'vsce'), 'package', '--no-dependencies', '-o', vsix],
    { cwd: ext, stdio: 'pipe' },
  );
  // A .vsix is a zip: list its central directory without unpacking.
  const listing = readFileSync(vsix).toString('latin1');
  for (const f of [
    'extension/package.json',
    'extension/syntaxes/portcullis.tmLanguage.json',
    'extension/dist/extension.js',
    'extension/language-configuration.json',
    'extension.vsixmanifest',
  ])
    t.ok(listing.includes(f), `the package holds ${f}`);
  const manifest = JSON.parse(readFileSync(join(ext, 'package.json'), 'utf8'));
  t.same(manifest.contributes.languages[0].extensions, ['.pol']);
});
