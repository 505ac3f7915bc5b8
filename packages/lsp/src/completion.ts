/**
 * What the author is typing, read from the text before the cursor: a resource attribute (typed by
 * the actions of the rule it sits in), a principal or context attribute, an action, a role after
 * `extends`, or anything else. Text-based on purpose: the buffer is usually mid-edit and does not
 * parse.
 */

export type CompletionContext =
  | { kind: 'resource'; actions: string[] }
  | { kind: 'principal' | 'context' | 'action' | 'role' }
  | { kind: 'other'; inRule: boolean };

const RULE_START = /\b(?:allow|deny|ask)\s/g;

export function completionContext(before: string): CompletionContext {
  const rule = currentRule(before);
  if (/\bresource\.\w*$/.test(before)) return { kind: 'resource', actions: rule ? ruleActions(rule) : [] };
  if (/\bprincipal\.\w*$/.test(before)) return { kind: 'principal' };
  if (/\bcontext\.\w*$/.test(before)) return { kind: 'context' };
  if (/\bextends\s+(?:[\w-]+\s*,\s*)*[\w-]*$/.test(before)) return { kind: 'role' };
  if (rule && /^(?:allow|deny|ask)\s+(?:[\w.*]+\s*,\s*)*[\w.*]*$/.test(rule)) return { kind: 'action' };
  return { kind: 'other', inRule: rule !== undefined };
}

/** The text of the rule the cursor is in, from its effect keyword; undefined outside any rule. */
function currentRule(before: string): string | undefined {
  let start = -1;
  for (const m of before.matchAll(RULE_START)) start = m.index;
  if (start < 0) return undefined;
  const rule = before.slice(start);
  // A brace or a blank line after the keyword means that rule has ended.
  return /[{}]|\n\s*\n/.test(rule) ? undefined : rule;
}

function ruleActions(rule: string): string[] {
  const head = rule.replace(/^(?:allow|deny|ask)\s+/, '').split(/\bwhen\b/)[0] ?? '';
  return head
    .split(',')
    .map((a) => a.trim())
    .filter((a) => /^[\w.*]+$/.test(a));
}
