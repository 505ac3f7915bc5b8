/**
 * The language server: LSP over a pair of streams, answering from the same compile(), format() and
 * symbol index that `portcullis check` and `fmt` use, so an editor never disagrees with CI.
 * Every change re-checks the whole set synchronously (a 1,000-rule set takes milliseconds; see
 * bench/lsp): no debounce means diagnostics never describe text that is no longer there.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Diagnostic as PolicyDiagnostic, PolicySymbols, SymbolSpan } from '@portcullis/policy';
import { compile, format, policySymbols } from '@portcullis/policy';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type {
  CodeAction,
  CompletionItem,
  Connection,
  Diagnostic,
  InitializeParams,
  Location,
  Position,
  Range,
} from 'vscode-languageserver/node.js';
import {
  CodeActionKind,
  CompletionItemKind,
  DiagnosticSeverity,
  TextDocumentSyncKind,
  TextDocuments,
} from 'vscode-languageserver/node.js';
import { completionContext } from './completion.js';
import { PolicySets } from './policy-sets.js';

const KEYWORDS = ['policy', 'scope', 'global', 'project', 'blueprint', 'session', 'role', 'extends', 'let', 'action'];
const RULE_KEYWORDS = ['allow', 'deny', 'ask', 'when', 'because', 'and', 'or', 'not', 'in', 'matches', 'exists'];
const PRINCIPAL_ATTRIBUTES = ['id', 'roles'];
const CONTEXT_ATTRIBUTES = ['project', 'blueprint', 'session', 'leases'];
const SUGGESTION = /\(did you mean "([^"]+)"\?\)/;

/** Wires the LSP handlers onto a connection; returns when the connection is set up (not closed). */
export function serveLanguage(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  let sets = new PolicySets();
  /** Files that got diagnostics last time, per set root, so that fixed files are cleared. */
  const published = new Map<string, Set<string>>();

  connection.onInitialize((params: InitializeParams) => {
    const options = (params.initializationOptions ?? {}) as { policyRoots?: unknown };
    const roots = Array.isArray(options.policyRoots)
      ? options.policyRoots.filter((r): r is string => typeof r === 'string')
      : [];
    sets = new PolicySets({ roots });
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        definitionProvider: true,
        referencesProvider: true,
        documentFormattingProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        completionProvider: { triggerCharacters: ['.', ' ', '"'] },
      },
      serverInfo: { name: 'portcullis-lsp' },
    };
  });

  const recheck = (uri: string) => {
    const path = pathOf(uri);
    if (path === undefined) return;
    const { root, files } = sets.setOf(path);
    const byFile = new Map<string, Diagnostic[]>(files.map((f) => [f.path, []]));
    for (const d of compile(files).diagnostics) byFile.get(d.file)?.push(toLspDiagnostic(d));
    const before = published.get(root) ?? new Set<string>();
    const now = new Set<string>();
    for (const [file, diagnostics] of byFile) {
      if (diagnostics.length === 0 && !before.has(file)) continue;
      void connection.sendDiagnostics({ uri: pathToFileURL(file).href, diagnostics });
      if (diagnostics.length > 0) now.add(file);
    }
    published.set(root, now);
  };

  documents.onDidChangeContent(({ document }) => {
    const path = pathOf(document.uri);
    if (path === undefined) return;
    sets.setOpen(path, document.getText());
    recheck(document.uri);
  });
  documents.onDidClose(({ document }) => {
    const path = pathOf(document.uri);
    if (path === undefined) return;
    sets.close(path);
    recheck(document.uri);
  });

  const symbolsFor = (uri: string): { path: string; symbols: PolicySymbols } | undefined => {
    const path = pathOf(uri);
    return path === undefined ? undefined : { path, symbols: policySymbols(sets.setOf(path).files) };
  };

  connection.onHover(({ textDocument, position }) => {
    const s = symbolsFor(textDocument.uri);
    const o = s?.symbols.at(s.path, position.line + 1, position.character + 1);
    if (!s || !o) return null;
    return { contents: { kind: 'plaintext', value: s.symbols.describe(o) }, range: toRange(o.span) };
  });

  connection.onDefinition(({ textDocument, position }) => {
    const s = symbolsFor(textDocument.uri);
    const o = s?.symbols.at(s.path, position.line + 1, position.character + 1);
    if (!s || !o) return null;
    return s.symbols.definitions(o.kind, o.name).map(toLocation);
  });

  connection.onReferences(({ textDocument, position, context }) => {
    const s = symbolsFor(textDocument.uri);
    const o = s?.symbols.at(s.path, position.line + 1, position.character + 1);
    if (!s || !o) return null;
    const refs = s.symbols.references(o.kind, o.name);
    return (context.includeDeclaration ? [...s.symbols.definitions(o.kind, o.name), ...refs] : refs).map(toLocation);
  });

  connection.onDocumentFormatting(({ textDocument }) => {
    const doc = documents.get(textDocument.uri);
    const path = pathOf(textDocument.uri);
    if (!doc || path === undefined) return null;
    // A file that does not parse is left alone: its diagnostics already say why.
    const { text } = format({ path, text: doc.getText() });
    if (text === undefined || text === doc.getText()) return [];
    return [{ range: { start: { line: 0, character: 0 }, end: doc.positionAt(doc.getText().length) }, newText: text }];
  });

  connection.onCodeAction(({ textDocument, context }) => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return [];
    const actions: CodeAction[] = [];
    for (const d of context.diagnostics) {
      const suggestion = SUGGESTION.exec(d.message)?.[1];
      if (suggestion === undefined) continue;
      const edit = replacement(doc.getText(d.range), suggestion);
      actions.push({
        title: `Change to "${edit}"`,
        kind: CodeActionKind.QuickFix,
        diagnostics: [d],
        isPreferred: true,
        edit: { changes: { [textDocument.uri]: [{ range: d.range, newText: edit }] } },
      });
    }
    return actions;
  });

  connection.onCompletion(({ textDocument, position }): CompletionItem[] => {
    const doc = documents.get(textDocument.uri);
    const s = symbolsFor(textDocument.uri);
    if (!doc || !s) return [];
    const before = doc.getText({ start: { line: 0, character: 0 }, end: position });
    const ctx = completionContext(before);
    const item = (label: string, kind: CompletionItemKind, detail?: string): CompletionItem => ({
      label,
      kind,
      ...(detail ? { detail } : {}),
    });
    switch (ctx.kind) {
      case 'resource':
        return [...s.symbols.resourceAttributes(ctx.actions)].map(([n, t]) => item(n, CompletionItemKind.Field, t));
      case 'principal':
        return PRINCIPAL_ATTRIBUTES.map((n) => item(n, CompletionItemKind.Field));
      case 'context':
        return CONTEXT_ATTRIBUTES.map((n) => item(n, CompletionItemKind.Field));
      case 'action':
        return s.symbols.actions.map((n) => item(n, CompletionItemKind.Function));
      case 'role':
        return s.symbols.roles.map((n) => item(n, CompletionItemKind.Class));
      default:
        return [
          ...s.symbols.constants.map((n) => item(n, CompletionItemKind.Constant)),
          ...(ctx.inRule ? RULE_KEYWORDS : KEYWORDS).map((n) => item(n, CompletionItemKind.Keyword)),
        ];
    }
  });

  documents.listen(connection);
}

/** `resource.hots` with suggestion `host` becomes `resource.host`; whole names are replaced whole. */
function replacement(found: string, suggestion: string): string {
  const dot = found.lastIndexOf('.');
  return dot >= 0 && !suggestion.includes('.') ? found.slice(0, dot + 1) + suggestion : suggestion;
}

function pathOf(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

function toLspDiagnostic(d: PolicyDiagnostic): Diagnostic {
  const start: Position = { line: d.line - 1, character: d.col - 1 };
  // A diagnostic without an end marks one character, like the caret `check` prints.
  const end: Position =
    d.endLine !== undefined && d.endCol !== undefined
      ? { line: d.endLine - 1, character: d.endCol - 1 }
      : { line: start.line, character: start.character + 1 };
  return {
    range: { start, end },
    severity: d.severity === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Error,
    code: d.code,
    source: 'portcullis',
    message: d.message,
  };
}

function toRange(s: SymbolSpan): Range {
  return { start: { line: s.line - 1, character: s.col - 1 }, end: { line: s.endLine - 1, character: s.endCol - 1 } };
}
function toLocation(s: SymbolSpan): Location {
  return { uri: pathToFileURL(s.file).href, range: toRange(s) };
}
