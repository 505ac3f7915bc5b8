/**
 * The formatter: canonical layout (two-space indent, one rule per line, single spaces around
 * operators, `[a, b]` lists, at most one blank line kept between items), preserving every
 * comment and the author's parentheses. Idempotent: format(format(x)) == format(x).
 * Comments inside a multi-line rule move to their own lines right after it.
 */
import type {
  CondAst,
  Comment,
  Decl,
  FileAst,
  LeasesDecl,
  Loc,
  Operand,
  PolicyDecl,
  RoleDecl,
  RuleAst,
  ValueAst,
} from './ast.js';
import { pathText } from './ast.js';
import type { Diagnostic } from './diagnostics.js';
import { parseFile } from './parse.js';
import type { SourceFile } from './policy.js';

export function format(file: SourceFile): { text?: string; diagnostics: Diagnostic[] } {
  const r = parseFile(file.text, file.path);
  if (!r.ast) return { diagnostics: r.diagnostics };
  return { text: new Printer(r.ast as FileAst).print(), diagnostics: [] };
}

export function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f || c === 0x2028 || c === 0x2029) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

function value(v: ValueAst | Operand): string {
  switch (v.kind) {
    case 'str':
      return quote(v.value);
    case 'num':
      return v.raw;
    case 'bool':
      return String(v.value);
    case 'const':
      return v.name;
    case 'list':
      return `[${v.items.map(value).join(', ')}]`;
    case 'path':
      return pathText(v);
  }
}

function cond(c: CondAst): string {
  switch (c.op) {
    case 'or':
    case 'and':
      return c.args.map(cond).join(` ${c.op} `);
    case 'not':
      return `not ${cond(c.arg)}`;
    case 'paren':
      return `(${cond(c.arg)})`;
    case 'cmp':
      return `${value(c.left)} ${c.cmp} ${value(c.right)}`;
    case 'in':
    case 'matches':
      return `${value(c.left)} ${c.op} ${value(c.right)}`;
    case 'exists':
      return `${pathText(c.path)} exists`;
    case 'bool':
      return pathText(c.path);
  }
}

function rule(r: RuleAst): string {
  let s = `${r.effect} ${r.actions.map((a) => a.name).join(', ')}`;
  if (r.when) s += ` when ${cond(r.when)}`;
  if (r.because !== undefined) s += ` because ${quote(r.because)}`;
  return s;
}

class Printer {
  private readonly out: string[] = [];
  private readonly comments: Comment[];
  private ci = 0;
  /** Source line of the last thing printed, for keeping (one) blank line. */
  private lastLine = 0;

  constructor(private readonly ast: FileAst) {
    this.comments = [...ast.comments].sort((a, b) => a.loc.offset - b.loc.offset);
  }

  print(): string {
    for (const d of this.ast.decls) this.decl(d);
    this.flushBefore(Infinity, '');
    return this.out.length === 0 ? '' : this.out.join('\n') + '\n';
  }

  private emit(text: string, indent: string, srcLine: number, blankAllowed: boolean): void {
    if (blankAllowed && this.out.length > 0 && srcLine > this.lastLine + 1) this.out.push('');
    this.out.push(indent + text);
  }

  private flushBefore(offset: number, indent: string): void {
    while (this.ci < this.comments.length && this.comments[this.ci]!.loc.offset < offset) {
      const c = this.comments[this.ci++]!;
      this.emit(c.text.trimEnd(), indent, c.loc.line, true);
      this.lastLine = c.loc.line;
    }
  }

  /** Comments inside the item go on their own lines after it; one on its last line trails it. */
  private after(loc: Loc, indent: string): void {
    const inside: Comment[] = [];
    while (this.ci < this.comments.length && this.comments[this.ci]!.loc.offset < loc.endOffset)
      inside.push(this.comments[this.ci++]!);
    const next = this.comments[this.ci];
    if (next && next.loc.line === loc.endLine) {
      this.out[this.out.length - 1] += ' ' + next.text.trimEnd();
      this.ci++;
    }
    for (const c of inside) this.out.push(indent + c.text.trimEnd());
    this.lastLine = loc.endLine;
  }

  private item(text: string, loc: Loc, indent: string): void {
    this.flushBefore(loc.offset, indent);
    this.emit(text, indent, loc.line, true);
    this.after(loc, indent);
  }

  private block(
    head: string,
    loc: Loc,
    indent: string,
    body: (inner: string) => void,
    firstItem: Loc | undefined,
  ): void {
    this.flushBefore(loc.offset, indent);
    this.emit(`${head} {`, indent, loc.line, true);
    // A comment on the opening line (before the first item) stays there.
    const next = this.comments[this.ci];
    if (next && next.loc.line === loc.line && next.loc.offset < (firstItem?.offset ?? loc.endOffset)) {
      this.out[this.out.length - 1] += ' ' + next.text.trimEnd();
      this.ci++;
    }
    this.lastLine = loc.line;
    const inner = indent + '  ';
    body(inner);
    this.flushBefore(loc.endOffset - 1, inner);
    if (firstItem === undefined && this.out[this.out.length - 1] === `${indent}${head} {`)
      this.out[this.out.length - 1] += '}';
    else this.out.push(`${indent}}`);
    this.after(loc, indent);
  }

  private decl(d: Decl): void {
    switch (d.kind) {
      case 'let':
        this.item(`let ${d.name} = ${value(d.value)}`, d.loc, '');
        return;
      case 'action': {
        const attrs = d.attrs.map((a) => `${a.name}${a.optional ? '?' : ''}: ${a.type}`).join(', ');
        this.item(`action ${d.name} {${attrs ? ` ${attrs} ` : ''}}`, d.loc, '');
        return;
      }
      case 'policy':
        this.policy(d);
        return;
      case 'role':
        this.role(d, '');
        return;
      case 'leases':
        this.leases(d);
        return;
    }
  }

  private leases(d: LeasesDecl): void {
    this.block(
      `leases from ${d.issuers.map((i) => quote(i.value)).join(', ')} ` +
        `max ${Number(d.max.raw.slice(0, -1))}${d.max.raw.slice(-1)}`,
      d.loc,
      '',
      (inner) => {
        for (const r of d.rules) this.item(rule(r), r.loc, inner);
      },
      d.rules[0]?.loc,
    );
  }

  private policy(d: PolicyDecl): void {
    const scope =
      d.scope.loc === null
        ? ''
        : d.scope.kind === 'global'
          ? ' scope global'
          : ` scope ${d.scope.kind} ${quote(d.scope.value!)}`;
    this.block(
      `policy ${quote(d.name)}${scope}`,
      d.loc,
      '',
      (inner) => {
        for (const it of d.items) {
          if (it.kind === 'rule') this.item(rule(it), it.loc, inner);
          else this.role(it, inner);
        }
      },
      d.items[0]?.loc,
    );
  }

  private role(d: RoleDecl, indent: string): void {
    const ext = d.extends.length ? ` extends ${d.extends.map((e) => e.name).join(', ')}` : '';
    this.block(
      `role ${d.name}${ext}`,
      d.loc,
      indent,
      (inner) => {
        for (const r of d.rules) this.item(rule(r), r.loc, inner);
      },
      d.rules[0]?.loc,
    );
  }
}
