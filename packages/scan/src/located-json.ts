/**
 * JSON parsing that remembers where each value starts, so that a config file's field errors can
 * name file:line:col, not just a path. Accepts exactly RFC 8259 JSON (what JSON.parse accepts);
 * a syntax error is a PcxError at the offending character. Used for rules files, which are
 * written by hand; machine-written files (fingerprints) use JSON.parse.
 */
import type { PcxCode } from '@portcullis/protocol';
import { positionOf, scanError } from './errors.js';

export interface LocatedJson {
  value: unknown;
  /** "file:line:col" of the value at a path (keys and indexes, e.g. ["rules", 2, "pattern"]). */
  where(path: (string | number)[]): string;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// Control characters are refused after the match (see string()), which keeps them out of this source.
const STRING = /"(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
/** Deepest nesting accepted: a hand-written config never comes close, a hostile file cannot blow the stack. */
const MAX_DEPTH = 64;

export function parseLocatedJson(text: string, source: string, code: PcxCode, hint: string): LocatedJson {
  const offsets = new Map<string, number>();
  let i = 0;
  const fail = (what: string, at = i): never => {
    throw scanError(code, `${positionOf(text, source, at)}: not valid JSON: ${what}`, { hint });
  };
  const skip = (): void => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const token = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const string = (): string => {
    const at = i;
    const raw = token(STRING);
    if (raw === undefined || [...raw].some((ch) => ch.charCodeAt(0) < 0x20))
      fail('a string is not closed, or holds a control character or a bad escape', at);
    return JSON.parse(raw as string) as string;
  };
  const value = (path: string, depth: number): unknown => {
    skip();
    if (depth > MAX_DEPTH) fail(`nested more than ${MAX_DEPTH} levels deep`);
    offsets.set(path, i);
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      skip();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        skip();
        const keyAt = i;
        if (text[i] !== '"') fail('expected a member name in double quotes');
        const key = string();
        if (Object.hasOwn(out, key)) fail(`duplicate member "${key}"`, keyAt);
        skip();
        if (text[i] !== ':') fail('expected ":" after a member name');
        i++;
        // JSON pointer-like path keys: escaping "/" keeps two different paths from colliding.
        out[key] = value(`${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`, depth + 1);
        skip();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return out;
        } else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      skip();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value(`${path}/${out.length}`, depth + 1));
        skip();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return out;
        } else fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const n = token(NUMBER);
    if (n !== undefined) return Number(n);
    if (c === ']' || c === '}') fail(`a trailing comma, or a missing value, before "${c}"`);
    return fail(i >= text.length ? 'the text ends too soon' : `unexpected character ${JSON.stringify(c)}`);
  };
  const v = value('', 0);
  skip();
  if (i < text.length) fail('unexpected text after the end of the value');
  return {
    value: v,
    where(path) {
      // The deepest recorded ancestor: a missing member is reported where its object starts.
      for (let n = path.length; n >= 0; n--) {
        const key = path
          .slice(0, n)
          .map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`)
          .join('');
        const at = offsets.get(key);
        if (at !== undefined) return positionOf(text, source, at);
      }
      return source;
    },
  };
}
