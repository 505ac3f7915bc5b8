/**
 * Rules files: pattern rules written by an operator, added to (or replacing some of) the built-in
 * ones. The file is JSON (format in the README); every field is checked and the first problem
 * refuses the whole file with file:line:col, the field's path and, for a misspelt name, a
 * suggestion. A scanner that loaded half a file would silently miss what the rest would catch.
 */
import { closestName } from '@portcullis/protocol';
import { scanError } from './errors.js';
import { parseLocatedJson } from './located-json.js';
import { BUILTIN_RULES, type PatternRule } from './rules.js';

export const RULES_FORMAT = 'portcullis-scan-rules';
export const RULES_VERSION = 1;

const TOP_FIELDS = ['format', 'version', 'builtin', 'disable', 'rules'];
const RULE_FIELDS = ['id', 'kind', 'keywords', 'pattern', 'flags', 'group', 'minEntropy', 'exclude'];
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const HINT = 'see "Rules files" in the @portcullis/scan README';

/**
 * The rules a rules file asks for: the built-in rules (unless `"builtin": false`) without those
 * named in `disable`, then the file's own. `source` (a path) names the file in errors.
 */
export function parseRules(text: string, source: string): PatternRule[] {
  const doc = parseLocatedJson(text, source, 'PCX_SCAN_BAD_RULES', HINT);
  const bad = (path: (string | number)[], what: string, hint = HINT): never => {
    const field = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
    throw scanError('PCX_SCAN_BAD_RULES', `${doc.where(path)}: ${field ? `${field.slice(1)}: ` : ''}${what}`, {
      hint,
    });
  };
  const top = doc.value;
  if (!isObject(top)) return bad([], 'expected a JSON object');
  checkFields(top, [], TOP_FIELDS, bad);
  if (top.format !== RULES_FORMAT) bad(['format'], `must be "${RULES_FORMAT}"`);
  if (top.version !== RULES_VERSION)
    bad(
      ['version'],
      `version ${JSON.stringify(top.version)} is not one this scanner reads (it reads ${RULES_VERSION})`,
    );
  if (top.builtin !== undefined && typeof top.builtin !== 'boolean') bad(['builtin'], 'must be true or false');
  const builtinIds = BUILTIN_RULES.map((r) => r.id);
  const disabled = new Set<string>();
  if (top.disable !== undefined) {
    if (!Array.isArray(top.disable)) bad(['disable'], 'must be a list of built-in rule ids');
    (top.disable as unknown[]).forEach((id, n) => {
      if (typeof id !== 'string' || !builtinIds.includes(id)) {
        const guess = typeof id === 'string' ? closestName(id, builtinIds) : undefined;
        bad(
          ['disable', n],
          `${JSON.stringify(id)} is not a built-in rule`,
          guess ? `did you mean "${guess}"?` : `built-in rules: ${builtinIds.join(', ')}`,
        );
      }
      disabled.add(id as string);
    });
  }
  if (!Array.isArray(top.rules)) return bad(['rules'], 'must be a list of rules (it may be empty)');
  const rules = top.builtin === false ? [] : BUILTIN_RULES.filter((r) => !disabled.has(r.id));
  const taken = new Set(rules.map((r) => r.id));
  (top.rules as unknown[]).forEach((raw, n) => {
    const rule = parseRule(raw, ['rules', n], bad);
    if (taken.has(rule.id)) {
      bad(
        ['rules', n, 'id'],
        `rule id "${rule.id}" is used twice`,
        builtinIds.includes(rule.id) ? `"${rule.id}" is built in: add it to "disable" to replace it` : HINT,
      );
    }
    taken.add(rule.id);
    rules.push(rule);
  });
  return rules;
}

type Bad = (path: (string | number)[], what: string, hint?: string) => never;

function parseRule(raw: unknown, at: (string | number)[], bad: Bad): PatternRule {
  if (!isObject(raw)) return bad(at, 'a rule must be an object');
  checkFields(raw, at, RULE_FIELDS, bad);
  for (const field of ['id', 'kind'] as const) {
    const v = raw[field];
    if (typeof v !== 'string' || !NAME.test(v))
      bad([...at, field], 'must be 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit');
  }
  if (raw.kind === 'known-secret') bad([...at, 'kind'], '"known-secret" is reserved for the fingerprinted secrets');
  const keywords = raw.keywords;
  if (!Array.isArray(keywords) || keywords.length === 0)
    bad([...at, 'keywords'], 'must be a non-empty list: the pattern runs only on texts containing one of them');
  (keywords as unknown[]).forEach((k, n) => {
    if (typeof k !== 'string' || k.length === 0) bad([...at, 'keywords', n], 'a keyword must be a non-empty string');
  });
  const flags = raw.flags ?? '';
  if (typeof flags !== 'string' || !/^(?!.*(.).*\1)[ims]*$/.test(flags))
    bad([...at, 'flags'], 'must be made of "i", "m" and "s", each at most once');
  if (typeof raw.pattern !== 'string' || raw.pattern.length === 0)
    bad([...at, 'pattern'], 'must be a non-empty regular expression (a JSON string: double each backslash)');
  let pattern: RegExp;
  try {
    // Patterns run over the text as latin1 (one character per byte), so no "u" flag.
    pattern = new RegExp(raw.pattern as string, `gd${flags}`); // d: the group's exact offsets
  } catch (e) {
    return bad([...at, 'pattern'], `not a valid regular expression: ${(e as Error).message}`);
  }
  if (new RegExp(`^(?:${raw.pattern as string})$`, flags as string).test(''))
    bad([...at, 'pattern'], 'matches the empty string, so it would report empty findings');
  // The number of capture groups: an alternative that matches "" fills every group with undefined.
  const groups = (new RegExp(`${raw.pattern as string}|`).exec('') as RegExpExecArray).length - 1;
  const group = raw.group ?? 0;
  if (!Number.isSafeInteger(group) || (group as number) < 0 || (group as number) > groups)
    bad([...at, 'group'], `must be a whole number from 0 (the whole match) to ${groups} (the pattern's groups)`);
  const minEntropy = raw.minEntropy ?? 0;
  if (typeof minEntropy !== 'number' || minEntropy < 0 || minEntropy > 8)
    bad([...at, 'minEntropy'], 'must be a number of bits per character from 0 to 8');
  let exclude: RegExp | undefined;
  if (raw.exclude !== undefined) {
    if (typeof raw.exclude !== 'string' || raw.exclude.length === 0)
      bad([...at, 'exclude'], 'must be a non-empty regular expression');
    try {
      exclude = new RegExp(raw.exclude as string, flags as string);
    } catch (e) {
      bad([...at, 'exclude'], `not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const rule: PatternRule = {
    id: raw.id as string,
    kind: raw.kind as string,
    keywords: (keywords as string[]).map((k) => k.toLowerCase()),
    pattern,
  };
  if (group !== 0) rule.group = group as number;
  if (minEntropy !== 0) rule.minEntropy = minEntropy as number;
  if (exclude) rule.exclude = exclude;
  return rule;
}

function checkFields(value: Record<string, unknown>, at: (string | number)[], allowed: string[], bad: Bad): void {
  for (const k of Object.keys(value)) {
    if (allowed.includes(k)) continue;
    const guess = closestName(k, allowed);
    bad([...at, k], `unknown field "${k}"`, guess ? `did you mean "${guess}"?` : `fields: ${allowed.join(', ')}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
