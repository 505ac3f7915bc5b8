/**
 * The scan package's error constructor: a PcxError whose code is one of protocol's table
 * (ERROR_CODES, every code defined once with its meaning), so that a code made up here does not
 * compile; and JSON reading with file:line:col, shared by fingerprint and rules files.
 */
import { PcxError, type PcxCode } from '@portcullis/protocol';

type ScanErrorCode = PcxCode;

export function scanError(code: ScanErrorCode, message: string, options: { hint?: string } = {}): PcxError {
  return new PcxError(code, message, options);
}

/** "file:line:col" of a character offset in a text (for JSON syntax errors). */
export function positionOf(text: string, source: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      col = 1;
    } else col++;
  }
  return `${source}:${line}:${col}`;
}

/** JSON.parse with a PcxError naming file:line:col on a syntax error. */
export function parseJson(text: string, source: string, code: ScanErrorCode, hint: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const at = /position (\d+)/.exec(message);
    // Node names the offending position, except for a text that ends too soon.
    const offset = at ? Number(at[1]) : /end of JSON input/.test(message) ? text.length : -1;
    const where = offset >= 0 ? positionOf(text, source, offset) : source;
    throw scanError(code, `${where}: not valid JSON: ${message.replace(/ in JSON at position \d+.*$/, '')}`, {
      hint,
    });
  }
}
