/** Diagnostics: errors and warnings as data, with stable codes, rendered with a caret line. */
import { closestName } from '@portcullis/protocol';
import type { PcxCode } from '@portcullis/protocol/codes';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  /** Stable: a parse, check or grant code from protocol's ERROR_CODES (e.g. PCX_CHECK_UNKNOWN_ACTION). */
  code: PcxCode;
  severity: Severity;
  /** Includes `did you mean "x"?` where it applies. */
  message: string;
  file: string;
  /** 1-based. */
  line: number;
  col: number;
  /** For the caret run. */
  endLine?: number;
  endCol?: number;
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.col - b.col || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
}

/** "file:line:col: CODE: message\n  <source line>\n  <caret line>" (source lines only when sourceText is given). */
export function renderDiagnostic(d: Diagnostic, sourceText?: string): string {
  const head = `${d.file}:${d.line}:${d.col}: ${d.code}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message}`;
  if (sourceText === undefined) return head;
  const lines = sourceText.split('\n');
  const raw = lines[d.line - 1];
  if (raw === undefined) return head;
  const line = raw.replace(/\r$/, '').replace(/\t/g, ' ');
  const start = Math.max(1, Math.min(d.col, line.length + 1));
  // The caret run ends at endCol on the same line, or at the end of the line for a multi-line span.
  let end = start + 1;
  if (d.endLine === d.line && d.endCol !== undefined && d.endCol > start) end = d.endCol;
  else if (d.endLine !== undefined && d.endLine > d.line) end = Math.max(start + 1, line.length + 1);
  const carets = ' '.repeat(start - 1) + '^'.repeat(Math.max(1, end - start));
  return `${head}\n  ${line}\n  ${carets}`;
}

/** ` (did you mean "x"?)` when a candidate is close enough, else ''. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = closestName(word, candidates);
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}
