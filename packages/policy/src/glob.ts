/** Glob matchers compiled once per pattern (never per request). */

const SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

/** A string glob: `*` matches any run of characters (including none). */
export function stringGlob(glob: string): (s: string) => boolean {
  if (!glob.includes('*')) return (s) => s === glob;
  const re = new RegExp(
    '^' +
      glob
        .split('*')
        .map((p) => p.replace(SPECIAL, '\\$&'))
        .join('.*') +
      '$',
    's',
  );
  return (s) => re.test(s);
}

/** One path segment of a glob: `*` matches one or more characters (precise rule 5). */
export function segmentGlob(glob: string): (s: string) => boolean {
  const re = new RegExp(
    '^' +
      glob
        .split('*')
        .map((p) => p.replace(SPECIAL, '\\$&'))
        .join('.+') +
      '$',
    's',
  );
  return (s) => re.test(s);
}
