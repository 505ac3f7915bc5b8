/**
 * Built-in pattern rules for common credentials. Each rule has keywords (lower case): its regular
 * expression runs only on a text containing one of them, which keeps a pass over ordinary text to
 * a few indexOf calls. A rule may demand a minimum Shannon entropy of the secret part (bits per
 * character), which is what separates a token from a placeholder ("ghp_xxxx…", "changeme").
 * Patterns run over the text as latin1, so that a string index is a byte offset.
 */

export interface PatternRule {
  /** Stable id, reported as the finding's rule. */
  id: string;
  /** The finding's kind (the credential family). */
  kind: string;
  /** Lower-case substrings, one of which must occur for the pattern to run. */
  keywords: string[];
  /** Global regular expression; `group` (default 0) is the secret part. */
  pattern: RegExp;
  group?: number;
  /** Minimum Shannon entropy of the secret part, bits per character; default 0. */
  minEntropy?: number;
  /** A secret part this (non-global) expression matches is not reported; default none. */
  exclude?: RegExp;
}

/**
 * Longest match a rule may report, in bytes (a private-key block: 12,000 bytes of body and its two
 * lines). A stream holds back at least this much, so a longer match could be cut: it is dropped.
 */
export const MAX_PATTERN_SPAN = 12_288;

export const BUILTIN_RULES: PatternRule[] = [
  {
    id: 'aws-access-key-id',
    kind: 'aws',
    keywords: ['akia', 'asia', 'abia', 'acca'],
    pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/g,
    minEntropy: 3,
    exclude: /EXAMPLE$/, // AWS's documentation key, AKIAIOSFODNN7EXAMPLE, and its look-alikes
  },
  {
    id: 'aws-secret-access-key',
    kind: 'aws',
    keywords: ['aws', 'secret_access_key', 'secretaccesskey'],
    pattern: /(?:aws|secret_?access_?key)[\w.-]{0,24}["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
    group: 1,
    minEntropy: 4,
  },
  {
    id: 'github-token',
    kind: 'github',
    keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
    pattern: /\bgh[pousr]_[A-Za-z0-9]{36}\b/g,
    minEntropy: 3,
  },
  {
    id: 'github-fine-grained-token',
    kind: 'github',
    keywords: ['github_pat_'],
    pattern: /\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b/g,
    minEntropy: 3,
  },
  {
    id: 'gitlab-token',
    kind: 'gitlab',
    keywords: ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'gloas-'],
    pattern: /\b(?:glpat|gldt|glrt|gloas)-[A-Za-z0-9_-]{20,}|\bglptt-[0-9a-f]{40}\b/g,
    minEntropy: 3,
  },
  {
    id: 'slack-token',
    kind: 'slack',
    keywords: ['xox'],
    pattern: /\bxox[abposr]-[0-9A-Za-z-]{20,200}/g,
    minEntropy: 3,
  },
  {
    id: 'slack-webhook',
    kind: 'slack',
    keywords: ['hooks.slack.com'],
    pattern: /https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]{6,12}\/B[A-Z0-9]{6,12}\/[A-Za-z0-9]{20,32}/g,
  },
  {
    id: 'private-key',
    kind: 'private-key',
    keywords: ['private key'],
    pattern: new RegExp(
      '-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\\s\\S]{16,12000}?' +
        '-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----',
      'g',
    ),
  },
  {
    id: 'jwt',
    kind: 'jwt',
    keywords: ['eyj'],
    pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g,
  },
  {
    id: 'generic-assignment',
    kind: 'generic',
    keywords: ['key', 'secret', 'token', 'passw', 'pwd', 'credential', 'auth'],
    pattern: new RegExp(
      '(?:api[_-]?key|secret|token|passw(?:or)?d|pwd|credentials?|auth)[\\w.-]{0,20}["\']?' +
        '\\s*(?::=|=>|[:=])\\s*["\']?([A-Za-z0-9+/_\\-.~!@#$%^&*]{16,128})',
      'gi',
    ),
    group: 1,
    minEntropy: 3.6,
    // A value that is a dotted name is code or a host name, not a credential: `settings.API_KEY`,
    // `req.headers.authorization`, `auth.example.com` (measured on the corpus: minified JS and code).
    exclude: /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$-]*)+$/,
  },
];

/** Shannon entropy of a string, bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Every match of the rules in `latin1` (the text as latin1, so offsets are byte offsets). */
export function matchRules(rules: PatternRule[], latin1: string): { rule: PatternRule; start: number; end: number }[] {
  const lower = latin1.toLowerCase();
  const out: { rule: PatternRule; start: number; end: number }[] = [];
  for (const rule of rules) {
    if (!rule.keywords.some((k) => lower.includes(k))) continue;
    rule.pattern.lastIndex = 0;
    for (const m of latin1.matchAll(rule.pattern)) {
      const secret = m[rule.group ?? 0];
      if (secret === undefined || secret.length === 0 || m[0].length > MAX_PATTERN_SPAN) continue;
      if (entropy(secret) < (rule.minEntropy ?? 0) || rule.exclude?.test(secret)) continue;
      // With the "d" flag (rules files) the group's own offset; else the last occurrence of its text.
      const start = m.indices?.[rule.group ?? 0]?.[0] ?? (m.index ?? 0) + (rule.group ? m[0].lastIndexOf(secret) : 0);
      out.push({ rule, start, end: start + secret.length });
    }
  }
  return out;
}
