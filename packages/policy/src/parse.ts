/**
 * The parser front end: runs the generated peggy parser and turns its failures into
 * diagnostics. After a syntax error the file is cut at every line that starts a declaration or
 * a rule, and each piece is parsed on its own (start rule `Fragment`), so that every syntax
 * error in a file is reported, not only the first.
 */
import { isPcxCode, type PcxCode } from '@portcullis/protocol/codes';
import type { Diagnostic } from './diagnostics.js';
import type { FileAst, GrantAst } from './ast.js';
import { parse as peggyParse } from './generated/parser.js';

interface PeggyExpectation {
  type: string;
  text?: string;
  description?: string;
}
interface PeggyError {
  message: string;
  expected?: PeggyExpectation[] | null;
  found?: string | null;
  location: {
    start: { offset: number; line: number; column: number };
    end: { offset: number; line: number; column: number };
  };
}

function isPeggyError(e: unknown): e is PeggyError {
  return typeof e === 'object' && e !== null && 'location' in e && 'message' in e;
}

interface Base {
  baseLine: number;
  baseCol: number;
  baseOffset: number;
}

function toDiagnostic(e: PeggyError, file: string, base: Base): Diagnostic {
  const adj = (p: { line: number; column: number }) => ({
    line: p.line + base.baseLine - 1,
    col: p.line === 1 ? p.column + base.baseCol - 1 : p.column,
  });
  const s = adj(e.location.start);
  const en = adj(e.location.end);
  let code: PcxCode = 'PCX_PARSE_UNEXPECTED';
  let message: string;
  // The grammar's own failures are "CODE|message" (dsl/policy.peggy, fail and failHere).
  const bar = e.message.indexOf('|');
  const named = bar > 0 ? e.message.slice(0, bar) : undefined;
  if (e.expected == null && isPcxCode(named)) {
    code = named;
    message = e.message.slice(bar + 1);
  } else {
    message = describeExpected(e);
  }
  return {
    code,
    severity: 'error',
    message,
    file,
    line: s.line,
    col: s.col,
    endLine: en.line,
    endCol: Math.max(en.col, s.col + 1),
  };
}

// Peggy's own message lists every expectation; this keeps the named ones (rule display names)
// and literal punctuation, and says what was found.
function describeExpected(e: PeggyError): string {
  const seen = new Set<string>();
  for (const x of e.expected ?? []) {
    if (x.type === 'other' && x.description && x.description !== 'whitespace') seen.add(x.description);
    else if (x.type === 'literal' && x.text) seen.add('`' + x.text + '`');
  }
  const items = [...seen];
  const what =
    items.length === 0
      ? 'something else'
      : items.length === 1
        ? items[0]!
        : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
  const found = e.found == null ? 'end of file' : e.found === '\n' ? 'end of line' : '`' + e.found + '`';
  return `expected ${what}, found ${found}`;
}

function parseWith<T>(
  text: string,
  startRule: string,
  file: string,
  base: Base,
): { ast?: T; error?: Diagnostic; atEnd?: boolean } {
  try {
    return { ast: peggyParse(text, { startRule, file, ...base }) as T };
  } catch (e) {
    if (isPeggyError(e))
      return { error: toDiagnostic(e, file, base), atEnd: e.location.start.offset >= text.trimEnd().length };
    // A RangeError (stack exhausted by absurd nesting) is still a syntax problem of the input.
    if (e instanceof RangeError) {
      return {
        error: {
          code: 'PCX_PARSE_TOO_DEEP',
          severity: 'error',
          message: 'the expression nests too deeply to parse; simplify it',
          file,
          line: base.baseLine,
          col: base.baseCol,
        },
      };
    }
    throw e;
  }
}

const SYNC = new RegExp(
  '^[ \\t]*(?:(?:policy|let|leases)\\b|role[ \\t]+[A-Za-z_]|action[ \\t]+[A-Za-z_][A-Za-z0-9_.-]*[ \\t]*\\{' +
    '|(?:allow|deny|ask)\\b)',
);

export function parseFile(text: string, file: string): { ast?: FileAst; diagnostics: Diagnostic[] } {
  const root = { baseLine: 1, baseCol: 1, baseOffset: 0 };
  const first = parseWith<FileAst>(text, 'File', file, root);
  if (first.ast) return { ast: first.ast, diagnostics: [] };
  const diagnostics: Diagnostic[] = [first.error!];
  // Resynchronise: cut at lines that start a declaration or a rule; parse each piece alone.
  const starts: { offset: number; line: number }[] = [];
  let offset = 0;
  let line = 1;
  for (const l of text.split('\n')) {
    if (SYNC.test(l)) starts.push({ offset, line });
    offset += l.length + 1;
    line++;
  }
  const f = first.error!;
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i]!;
    const end = i + 1 < starts.length ? starts[i + 1]!.offset : text.length;
    const r = parseWith(text.slice(s.offset, end), 'Fragment', file, {
      baseLine: s.line,
      baseCol: 1,
      baseOffset: s.offset,
    });
    // An error at the very end of a piece means its construct runs on past the cut (the
    // whole-file parse judges that); the first error is already reported.
    const runsOn = r.atEnd && r.error!.message.endsWith('found end of file');
    if (r.error && !runsOn && !(r.error.line === f.line && r.error.col === f.col)) diagnostics.push(r.error);
  }
  diagnostics.sort((a, b) => a.line - b.line || a.col - b.col);
  return { diagnostics };
}

export function parseGrant(text: string, file: string): { ast?: GrantAst; diagnostics: Diagnostic[] } {
  const r = parseWith<GrantAst>(text, 'Grant', file, { baseLine: 1, baseCol: 1, baseOffset: 0 });
  return r.ast ? { ast: r.ast, diagnostics: [] } : { diagnostics: [r.error!] };
}
