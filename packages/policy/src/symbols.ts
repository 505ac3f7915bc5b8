/**
 * The symbol index of a policy set, for editors: where each constant, role, action and attribute is
 * defined and referenced, and a one-line description of each. Pure like the rest of the package;
 * it reuses the checker's resolution (role closure, the action schema) so an editor never shows a
 * meaning that `check` and the engine do not share. Works on sets that do not check clean: every
 * file that parses contributes.
 */
import type { ActionDecl, CondAst, Loc, Operand, PathAst, RoleDecl, RuleAst, ValueAst } from './ast.js';
import { pathText } from './ast.js';
import { checkSet } from './check.js';
import { parseAll } from './policy.js';
import type { SourceFile } from './policy.js';

export type SymbolKind = 'constant' | 'role' | 'action' | 'attribute';

export interface SymbolSpan {
  file: string;
  /** 1-based, like diagnostics; `endCol` is exclusive. */
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

export interface SymbolOccurrence {
  kind: SymbolKind;
  /** `net.http`, `developer`, `git_hosts`, `resource.host`. */
  name: string;
  span: SymbolSpan;
  definition: boolean;
  /** For `resource.*` attributes: the actions of the enclosing rule (their schemas type the attribute). */
  actions?: readonly string[];
}

export interface PolicySymbols {
  readonly occurrences: readonly SymbolOccurrence[];
  /** Every action the set knows (built-in and declared), sorted. */
  readonly actions: readonly string[];
  readonly constants: readonly string[];
  readonly roles: readonly string[];
  /** The occurrence whose span holds the 1-based position, innermost first. */
  at(file: string, line: number, col: number): SymbolOccurrence | undefined;
  definitions(kind: SymbolKind, name: string): readonly SymbolSpan[];
  references(kind: SymbolKind, name: string): readonly SymbolSpan[];
  /** The resource attributes of these actions (wildcards such as `net.*` expanded), name → type text. */
  resourceAttributes(actions: readonly string[]): ReadonlyMap<string, string>;
  /** Markdown-free text an editor shows on hover. */
  describe(occurrence: SymbolOccurrence): string;
}

const PRINCIPAL_BUILTINS: Readonly<Record<string, string>> = {
  id: 'string — the principal asking (required in every request)',
  roles: 'list of role names — conditions see the transitive closure of the roles held',
};
const CONTEXT_BUILTINS: Readonly<Record<string, string>> = {
  project: 'string — the project scope of the request',
  blueprint: 'string — the blueprint scope of the request',
  session: 'string — the session scope of the request',
  leases: 'list — the lease tokens the request carries',
};

export function policySymbols(files: readonly SourceFile[]): PolicySymbols {
  const { parsed } = parseAll(files);
  const { checker } = checkSet(parsed);
  const occurrences: SymbolOccurrence[] = [];
  const constText = new Map<string, string>();
  const add = (kind: SymbolKind, name: string, loc: Loc, definition: boolean, actions?: readonly string[]) =>
    occurrences.push({ kind, name, span: spanOf(loc), definition, ...(actions ? { actions } : {}) });
  const sources = new Map(parsed.map((f) => [f.path, f.text]));

  const value = (v: ValueAst) => {
    if (v.kind === 'const') add('constant', v.name, v.loc, false);
    else if (v.kind === 'list') for (const item of v.items) value(item);
  };
  const operand = (o: Operand, actions: readonly string[]) => {
    if (o.kind === 'path') path(o, actions);
    else value(o);
  };
  const path = (p: PathAst, actions: readonly string[]) => {
    if (p.root !== 'action') add('attribute', pathText(p), p.loc, false, p.root === 'resource' ? actions : undefined);
  };
  const cond = (c: CondAst, actions: readonly string[]): void => {
    switch (c.op) {
      case 'or':
      case 'and':
        for (const a of c.args) cond(a, actions);
        return;
      case 'not':
      case 'paren':
        cond(c.arg, actions);
        return;
      case 'exists':
      case 'bool':
        path(c.path, actions);
        return;
      default:
        // `"lead" in principal.roles` names a role.
        if (
          c.op === 'in' &&
          c.left.kind === 'str' &&
          c.right.kind === 'path' &&
          pathText(c.right) === 'principal.roles'
        )
          add('role', c.left.value, unquoted(c.left.loc), false);
        else operand(c.left, actions);
        operand(c.right, actions);
    }
  };
  const rule = (r: RuleAst) => {
    const actions = r.actions.map((a) => a.name);
    for (const a of r.actions) add('action', a.name, a.loc, false);
    if (r.when) cond(r.when, actions);
  };
  const role = (d: RoleDecl) => {
    add('role', d.name, nameLoc(d.loc, 'role'.length + 1, d.name, sources), true);
    for (const e of d.extends) add('role', e.name, e.loc, false);
    for (const r of d.rules) rule(r);
  };
  const action = (d: ActionDecl) => {
    add('action', d.name, nameLoc(d.loc, 'action'.length + 1, d.name, sources), true);
    for (const at of d.attrs) add('attribute', `resource.${at.name}`, at.loc, true, [d.name]);
  };

  for (const f of parsed) {
    for (const d of f.ast.decls) {
      if (d.kind === 'let') {
        add('constant', d.name, nameLoc(d.loc, 'let'.length + 1, d.name, sources), true);
        constText.set(d.name, sources.get(d.loc.file)?.slice(d.loc.offset, d.loc.endOffset) ?? `let ${d.name}`);
        value(d.value);
      } else if (d.kind === 'action') action(d);
      else if (d.kind === 'role') role(d);
      else if (d.kind === 'policy') for (const it of d.items) it.kind === 'role' ? role(it) : rule(it);
    }
  }
  // Innermost first: a constant inside a list inside a condition wins over nothing else, but the
  // shortest span holding a position is the one the author points at.
  occurrences.sort((a, b) => spanSize(a.span) - spanSize(b.span));

  const actionNames = [...checker.schema.actions.keys()].sort();
  const expand = (patterns: readonly string[]) =>
    actionNames.filter((n) =>
      patterns.some((p) => p === '*' || p === n || (p.endsWith('.*') && n.startsWith(p.slice(0, -1)))),
    );
  const resourceAttributes = (patterns: readonly string[]) => {
    const out = new Map<string, string>();
    for (const name of expand(patterns)) {
      for (const at of checker.schema.actions.get(name)!.list) {
        const t = `${at.type}${at.required ? ', required' : ''}`;
        const prev = out.get(at.name);
        out.set(at.name, prev === undefined || prev === t ? t : `${prev} | ${t}`);
      }
    }
    return out;
  };
  const spans = (kind: SymbolKind, name: string, definition: boolean) =>
    occurrences
      .filter((o) => o.kind === kind && o.name === name && o.definition === definition)
      .map((o) => o.span)
      .sort(compareSpans);

  return {
    occurrences,
    actions: actionNames,
    constants: [...constText.keys()].sort(),
    roles: [...checker.roles.keys()].sort(),
    at: (file, line, col) => occurrences.find((o) => o.span.file === file && holds(o.span, line, col)),
    definitions: (kind, name) => spans(kind, name, true),
    references: (kind, name) => spans(kind, name, false),
    resourceAttributes,
    describe(o) {
      switch (o.kind) {
        case 'constant':
          return constText.get(o.name) ?? `constant "${o.name}" is not defined`;
        case 'role': {
          const info = checker.roles.get(o.name);
          if (!info) return `role "${o.name}" is not declared in this set`;
          const closure = (checker.roleClosure.get(o.name) ?? []).filter((r) => r !== o.name);
          const ext = [...info.extends];
          return (
            `role ${o.name}${ext.length ? ` extends ${ext.join(', ')}` : ''}` +
            ` — ${info.bodies.length} bod${info.bodies.length === 1 ? 'y' : 'ies'}` +
            (closure.length ? `; inherits the rules of ${closure.sort().join(', ')}` : '')
          );
        }
        case 'action': {
          const names = expand([o.name]);
          if (names.length === 0) return `action "${o.name}" is not known to this set`;
          if (names.length > 1 || names[0] !== o.name) return `${o.name} — matches ${names.join(', ')}`;
          const attrs = [...resourceAttributes(names)].map(([n, t]) => `${n}: ${t}`);
          return `action ${o.name} — resource { ${attrs.join('; ')} }`;
        }
        case 'attribute':
          return describeAttribute(o, resourceAttributes);
      }
    },
  };
}

function describeAttribute(
  o: SymbolOccurrence,
  resourceAttributes: (actions: readonly string[]) => ReadonlyMap<string, string>,
): string {
  const [root, name = ''] = o.name.split('.', 2) as [string, string];
  if (root === 'principal') return `${o.name}: ${PRINCIPAL_BUILTINS[name] ?? 'dynamic — supplied by the request'}`;
  if (root === 'context') return `${o.name}: ${CONTEXT_BUILTINS[name] ?? 'dynamic — supplied by the request'}`;
  const type = resourceAttributes(o.actions ?? []).get(name);
  return type === undefined
    ? `${o.name} is not an attribute of ${(o.actions ?? []).join(', ')}`
    : `${o.name}: ${type} (in ${(o.actions ?? []).join(', ')})`;
}

/** The span of a declaration's name: the grammar keeps only the whole declaration's location. */
function nameLoc(loc: Loc, keywordLength: number, name: string, sources: ReadonlyMap<string, string>): Loc {
  const text = sources.get(loc.file) ?? '';
  const at = text.indexOf(name, loc.offset + keywordLength);
  if (at < 0 || at > loc.endOffset) return loc;
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const col = at - before.lastIndexOf('\n');
  return { ...loc, line, col, endLine: line, endCol: col + name.length, offset: at, endOffset: at + name.length };
}

/** A string literal's span without its quotes: the role name the author sees. */
function unquoted(loc: Loc): Loc {
  return loc.line === loc.endLine ? { ...loc, col: loc.col + 1, endCol: loc.endCol - 1 } : loc;
}

function spanOf(loc: Loc): SymbolSpan {
  return { file: loc.file, line: loc.line, col: loc.col, endLine: loc.endLine, endCol: loc.endCol };
}
function spanSize(s: SymbolSpan): number {
  return (s.endLine - s.line) * 100_000 + (s.endCol - s.col);
}
function holds(s: SymbolSpan, line: number, col: number): boolean {
  if (line < s.line || line > s.endLine) return false;
  if (line === s.line && col < s.col) return false;
  return !(line === s.endLine && col >= s.endCol);
}
function compareSpans(a: SymbolSpan, b: SymbolSpan): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col;
}
