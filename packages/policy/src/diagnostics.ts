/** Diagnostics: errors and warnings as data, with stable codes, rendered with a caret line. */
export type Severity = 'error' | 'warning';

export interface Diagnostic {
  /** Stable: PCX_PARSE_…, PCX_CHECK_…, PCX_GRANT_… */
  code: string;
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

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** ` (did you mean "x"?)` when a candidate is close enough, else ''. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance || (d === bestDistance && best !== undefined && c < best)) {
      bestDistance = d;
      best = c;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}
