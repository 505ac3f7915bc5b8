// The TextMate grammar editors use for .pol files, run by the same engine as VS Code (vscode-textmate
// with the Oniguruma WebAssembly build): chosen tokens get the scopes a theme colours, and every word
// of the example policies gets a scope of its own.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import oniguruma from 'vscode-oniguruma';
import textmate from 'vscode-textmate';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

async function grammar(): Promise<textmate.IGrammar> {
  const wasm = readFileSync(join(dirname(require.resolve('vscode-oniguruma')), 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p: string[]) => new oniguruma.OnigScanner(p),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () =>
      textmate.parseRawGrammar(
        readFileSync(join(root, 'editors/vscode/syntaxes/portcullis.tmLanguage.json'), 'utf8'),
        'portcullis.tmLanguage.json',
      ),
  });
  return (await registry.loadGrammar('source.portcullis'))!;
}

/** Each token of the text with its innermost scope. */
function tokens(g: textmate.IGrammar, text: string): { line: number; text: string; scope: string }[] {
  const out: { line: number; text: string; scope: string }[] = [];
  let stack = textmate.INITIAL;
  text.split('\n').forEach((line, i) => {
    const r = g.tokenizeLine(line, stack);
    for (const tok of r.tokens) {
      out.push({ line: i + 1, text: line.slice(tok.startIndex, tok.endIndex), scope: tok.scopes.at(-1)! });
    }
    stack = r.ruleStack;
  });
  return out;
}

t.test('the constructs of the language get their scopes', async (t) => {
  const g = await grammar();
  const toks = tokens(g, readFileSync(join(root, 'testdata/editors/highlight.pol'), 'utf8'));
  const scopeOf = (line: number, text: string) => toks.find((x) => x.line === line && x.text === text)?.scope;
  const expect: [number, string, string][] = [
    [1, '# A fixture for the TextMate grammar: every construct once.', 'comment.line.number-sign.portcullis'],
    [2, 'let', 'storage.type.let.portcullis'],
    [2, 'hosts', 'variable.other.constant.portcullis'],
    [2, '\\u{2603}', 'constant.character.escape.portcullis'],
    [2, '\\n', 'constant.character.escape.portcullis'],
    [3, 'app.deploy', 'entity.name.function.action.portcullis'],
    [4, 'lead', 'entity.name.type.role.portcullis'],
    [4, 'extends', 'storage.modifier.extends.portcullis'],
    [5, 'allow', 'keyword.control.effect.allow.portcullis'],
    [5, 'fs.read', 'entity.name.function.action.portcullis'],
    [5, 'resource', 'variable.language.resource.portcullis'],
    [5, 'path', 'variable.other.property.portcullis'],
    [5, 'matches', 'keyword.operator.word.portcullis'],
    [7, 'policy', 'storage.type.policy.portcullis'],
    [7, 'project', 'constant.language.scope.portcullis'],
    [8, 'deny', 'keyword.control.effect.deny.portcullis'],
    [8, 'net.*', 'entity.name.function.action.portcullis'],
    [8, 'net.http', 'entity.name.function.action.portcullis'],
    [8, 'hosts', 'variable.other.constant.portcullis'],
    [8, 'not', 'keyword.operator.word.portcullis'],
    [8, '==', 'keyword.operator.comparison.portcullis'],
    [8, 'because', 'keyword.control.because.portcullis'],
    [9, '>=', 'keyword.operator.comparison.portcullis'],
    [9, '3', 'constant.numeric.portcullis'],
    [9, 'true', 'constant.language.boolean.portcullis'],
  ];
  for (const [line, text, scope] of expect) t.equal(scopeOf(line, text), scope, `${line}: ${text}`);
});

t.test('every word of the example policies is scoped', async (t) => {
  const g = await grammar();
  const dir = join(root, 'examples/policies');
  let words = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pol'))) {
    for (const tok of tokens(g, readFileSync(join(dir, f), 'utf8'))) {
      if (!/[A-Za-z0-9]/.test(tok.text)) continue;
      words++;
      if (tok.scope === 'source.portcullis') t.fail(`${f}:${tok.line}: "${tok.text}" has no scope`);
    }
  }
  t.ok(words > 500, `${words} words tokenised`);
});
