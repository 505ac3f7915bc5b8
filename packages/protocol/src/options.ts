/**
 * Command-line option tables: each daemon defines its options once, as data (name, type, default,
 * one line of help), and that one table is what its parser reads (node's parseArgs), what its
 * `--help` prints, and what `portcullis up` composes to take the same options as the daemons it
 * starts. An option added to a daemon's table is therefore accepted by `up` without a second edit.
 */

/** One option: node's parseArgs option config plus what `--help` shows. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** The value the daemon uses when the option is absent (shown in --help). */
  default?: string | boolean | string[];
  /** The placeholder of the value in --help, e.g. "PATH" (string options; default "VALUE"). */
  value?: string;
  /** One line (or a few, separated by "\n") saying what the option does. */
  help: string;
}

/** A daemon's options by name (without the leading "--"). */
export type OptionTable = Record<string, OptionSpec>;

/** `-h`/`--help`, which every command takes and no table lists. */
export const HELP_OPTION = { type: 'boolean', short: 'h', default: false, help: 'print this help' } as const;

const COLUMN = 27;

/** The `options:` section of a usage text, one option per line, help aligned in one column. */
export function formatOptions(table: OptionTable): string {
  const out: string[] = [];
  for (const [name, spec] of Object.entries(table)) {
    const head = `  --${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
    const shown =
      typeof spec.default === 'string' && spec.default !== '' && !spec.help.includes('(default')
        ? ` (default ${spec.default})`
        : '';
    const [first, ...rest] = `${spec.help}${shown}${spec.multiple ? '; repeatable' : ''}`.split('\n');
    out.push(head.length < COLUMN - 1 ? `${head.padEnd(COLUMN)}${first}` : `${head}\n${' '.repeat(COLUMN)}${first}`);
    for (const line of rest) out.push(`${' '.repeat(COLUMN)}${line}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Turn parsed values back into an argument list for `table`'s command: only the options that were
 * given (so the daemon applies its own defaults), each repeated value as its own `--name value`.
 */
export function toArgv(table: OptionTable, values: Record<string, unknown>): string[] {
  const argv: string[] = [];
  for (const [name, spec] of Object.entries(table)) {
    const v = values[name];
    if (v === undefined || v === false) continue;
    if (spec.type === 'boolean') argv.push(`--${name}`);
    else for (const one of Array.isArray(v) ? v : [v]) argv.push(`--${name}`, String(one));
  }
  return argv;
}
