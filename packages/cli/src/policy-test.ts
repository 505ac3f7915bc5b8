/**
 * `portcullis test PATH`: runs the policy tests kept next to the policies.
 *
 * A test file is `*.test.json` below PATH (or, when PATH is one .pol file, the `NAME.test.json`
 * beside it): `{ "defaults"?: {principal?, context?}, "tests": [{ name, request, expect,
 * rules?, error?, leases? }] }` — documented in examples/README.md ("Policy tests").
 *
 * Shape: parsing a test file and running a test are pure (data in, results out); only
 * testCommand touches the file system and the streams. Exit status: 0 when every test passes,
 * 1 when a test fails, a test file is invalid or the policies do not compile, 2 for usage errors.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PcxError, type Decision, type Reason } from '@portcullis/protocol';
import { compile, renderDiagnostic, type CompiledPolicy, type Diagnostic, type LeaseGrant } from '@portcullis/policy';
import { readPolicySources } from '@portcullis/pdp';
import type { CommandIO } from './io.js';

const EFFECTS = ['allow', 'deny', 'ask'] as const;
type Effect = (typeof EFFECTS)[number];
const MAX_TEST_FILE_BYTES = 16 * 1024 * 1024;

interface LeaseSpec {
  id: string;
  rules: string;
  /** The key id or issuer name that signed it. Default: the first issuer of the set's first lease ceiling. */
  issuer?: string;
  /** exp - iat in seconds. Default 600. */
  lifetime?: number;
}

interface PolicyTest {
  file: string;
  name: string;
  request: Record<string, unknown>;
  expect: Effect;
  /** Exact set of rule ids expected in the decision's reasons ([] = decided by no rule). */
  rules?: string[];
  /** Prefix of the expected error code of a malformed request (implies expect "deny"). */
  error?: string;
  leases: LeaseSpec[];
}

interface TestFileProblem {
  file: string;
  message: string;
}

const usageText = `usage: portcullis test [--filter TEXT] PATH

Compiles the policy set at PATH (a .pol file, or a directory meaning every *.pol below it) and
runs every policy test file (*.test.json) below it; for a single file PATH, NAME.test.json
beside it. Prints one line per test; a failure shows the decision and its reasons.

options:
  --filter TEXT  run only the tests whose name contains TEXT
  -h, --help     show this help

exit status: 0 all tests passed; 1 a test failed, a test file is invalid or the policies do
not compile; 2 usage error.
`;

export async function testCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { filter: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(usageText);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new PcxError('PCX_USAGE', `expected exactly one policy path, got ${positionals.length}`, {
      hint: 'run "portcullis test examples/policies" (see "portcullis test --help")',
    });
  }
  const path = resolve(io.cwd, positionals[0]!);
  const sources = await readPolicySources(path, { cwd: io.cwd });
  const result = compile(sources);
  const textOf = new Map(sources.map((s) => [s.path, s.text]));
  for (const d of result.diagnostics) io.stderr.write(renderDiagnostic(d, textOf.get(d.file)) + '\n');
  if (!result.policy) {
    const n = result.diagnostics.filter((d) => d.severity === 'error').length;
    io.stderr.write(
      `portcullis test: the policies at ${positionals[0]} do not compile (${n} error${n === 1 ? '' : 's'}); no ` +
        `tests were run\n`,
    );
    return 1;
  }

  const testFiles = await findTestFiles(path);
  if (testFiles.length === 0) {
    io.stderr.write(
      `portcullis test: no test files (*.test.json) found at ${positionals[0]}\n  hint: keep tests next to the ` +
        `policies, e.g. policies/egress.test.json (format: examples/README.md)\n`,
    );
    return 1;
  }
  const problems: TestFileProblem[] = [];
  const tests: PolicyTest[] = [];
  for (const file of testFiles) {
    const shown = displayPath(io.cwd, file);
    const text = await readTestFile(file);
    const parsed = parseTestFile(shown, text);
    problems.push(...parsed.problems);
    tests.push(...parsed.tests);
  }
  for (const p of problems) io.stderr.write(`${p.file}: PCX_TEST_FILE: ${p.message}\n`);
  const selected = values.filter === undefined ? tests : tests.filter((t) => t.name.includes(values.filter!));
  if (selected.length === 0 && tests.length > 0) {
    io.stderr.write(
      `portcullis test: no test name contains ${JSON.stringify(values.filter)} (${tests.length} tests in ` +
        `${testFiles.length} files)\n`,
    );
    return 1;
  }

  let passed = 0;
  let failed = 0;
  for (const test of selected) {
    const outcome = runTest(result.policy, test);
    if (outcome.ok) {
      passed++;
      io.stdout.write(`ok    ${test.file} › ${test.name}\n`);
    } else {
      failed++;
      io.stdout.write(`FAIL  ${test.file} › ${test.name}\n${outcome.detail.map((l) => `      ${l}\n`).join('')}`);
    }
  }
  const invalid =
    problems.length > 0 ? `, ${problems.length} problem${problems.length === 1 ? '' : 's'} in test files` : '';
  const filteredOut = tests.length - selected.length;
  io.stdout.write(
    `\n${passed} passed, ${failed} failed${filteredOut > 0 ? `, ${filteredOut} filtered out` : ''}${invalid} ` +
      `(${testFiles.length} test file${testFiles.length === 1 ? '' : 's'}, ${result.policy.ruleCount} rules)\n`,
  );
  return failed === 0 && problems.length === 0 ? 0 : 1;
}

async function findTestFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (!info.isDirectory()) {
    const sibling = join(dirname(path), `${basename(path).replace(/\.pol$/, '')}.test.json`);
    return (await stat(sibling).catch(() => undefined))?.isFile() ? [sibling] : [];
  }
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      throw new PcxError('PCX_TEST_FILE', `cannot list ${dir} for test files: ${e.code ?? e.message}`);
    });
    for (const entry of entries) {
      // Same conventions as readPolicySources: ConfigMap `..data` internals are skipped.
      if (entry.name.startsWith('..')) continue;
      const full = join(dir, entry.name);
      const st = entry.isSymbolicLink() ? await stat(full).catch(() => undefined) : entry;
      if (!st) continue;
      if (st.isDirectory()) await walk(full);
      else if (st.isFile() && entry.name.endsWith('.test.json')) out.push(full);
    }
  };
  await walk(path);
  return out.sort();
}

async function readTestFile(file: string): Promise<string> {
  const unreadable = (e: NodeJS.ErrnoException): never => {
    throw new PcxError('PCX_TEST_FILE', `cannot read test file ${file}: ${e.code ?? e.message}`);
  };
  const st = await stat(file).catch(unreadable);
  if (st.size > MAX_TEST_FILE_BYTES) {
    throw new PcxError(
      'PCX_TEST_FILE',
      `${file} is ${st.size} bytes; test files are limited to ${MAX_TEST_FILE_BYTES} bytes`,
    );
  }
  return readFile(file, 'utf8').catch(unreadable);
}

function displayPath(cwd: string, file: string): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') || rel === '' ? file : rel;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const TEST_KEYS = new Set(['name', 'request', 'expect', 'rules', 'error', 'leases']);

/** Pure: validates a test file's JSON and applies its defaults. Every problem is reported, not just the first. */
function parseTestFile(file: string, text: string): { tests: PolicyTest[]; problems: TestFileProblem[] } {
  const problems: TestFileProblem[] = [];
  const problem = (message: string): void => void problems.push({ file, message });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    problem(`not valid JSON: ${(e as Error).message}`);
    return { tests: [], problems };
  }
  if (!isObject(doc) || !Array.isArray(doc.tests)) {
    problem('expected an object with a "tests" array: {"tests": [{"name", "request", "expect"}]}');
    return { tests: [], problems };
  }
  for (const key of Object.keys(doc))
    if (key !== 'tests' && key !== 'defaults')
      problem(`unknown top-level key "${key}" (expected "tests" and optionally "defaults")`);
  const defaults = doc.defaults ?? {};
  if (!isObject(defaults) || Object.keys(defaults).some((k) => k !== 'principal' && k !== 'context')) {
    problem('"defaults" may only set "principal" and/or "context"');
  }
  const tests: PolicyTest[] = [];
  const names = new Set<string>();
  doc.tests.forEach((raw: unknown, i: number) => {
    const where = `test #${i + 1}`;
    if (!isObject(raw)) {
      problem(`${where}: expected an object`);
      return;
    }
    const label = typeof raw.name === 'string' && raw.name !== '' ? `${where} ("${raw.name}")` : where;
    const before = problems.length;
    for (const key of Object.keys(raw))
      if (!TEST_KEYS.has(key)) problem(`${label}: unknown key "${key}" (expected one of ${[...TEST_KEYS].join(', ')})`);
    if (typeof raw.name !== 'string' || raw.name === '') problem(`${where}: "name" must be a non-empty string`);
    else if (names.has(raw.name)) problem(`${label}: duplicate test name`);
    if (!isObject(raw.request)) problem(`${label}: "request" must be an object (principal, action, resource, context)`);
    if (typeof raw.expect !== 'string' || !(EFFECTS as readonly string[]).includes(raw.expect))
      problem(`${label}: "expect" must be "allow", "deny" or "ask"`);
    if (raw.rules !== undefined && !(Array.isArray(raw.rules) && raw.rules.every((r) => typeof r === 'string')))
      problem(`${label}: "rules" must be a list of rule ids, e.g. ["egress-baseline#2"]`);
    if (raw.error !== undefined && (typeof raw.error !== 'string' || raw.expect !== 'deny'))
      problem(`${label}: "error" must be an error code (prefix), with "expect": "deny"`);
    const leases = raw.leases ?? [];
    if (
      !Array.isArray(leases) ||
      !leases.every(
        (l) =>
          isObject(l) &&
          typeof l.id === 'string' &&
          l.id !== '' &&
          typeof l.rules === 'string' &&
          (l.issuer === undefined || (typeof l.issuer === 'string' && l.issuer !== '')) &&
          (l.lifetime === undefined || (Number.isSafeInteger(l.lifetime) && (l.lifetime as number) > 0)),
      )
    ) {
      problem(
        `${label}: "leases" must be a list of ` +
          '{"id": "...", "rules": "allow ...", "issuer"?: "...", "lifetime"?: seconds}',
      );
    }
    if (problems.length > before) return;
    names.add(raw.name as string);
    const request = {
      ...(isObject(defaults) ? pick(defaults, ['principal', 'context']) : {}),
      ...(raw.request as Record<string, unknown>),
    };
    tests.push({
      file,
      name: raw.name as string,
      request,
      expect: raw.expect as Effect,
      ...(raw.rules !== undefined ? { rules: raw.rules as string[] } : {}),
      ...(raw.error !== undefined ? { error: raw.error as string } : {}),
      leases: leases as LeaseSpec[],
    });
  });
  return { tests, problems };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

/** Pure: runs one test against a compiled policy set. */
function runTest(policy: CompiledPolicy, test: PolicyTest): { ok: true } | { ok: false; detail: string[] } {
  const grants: LeaseGrant[] = [];
  const ignored: Reason[] = [];
  for (const lease of test.leases) {
    const issuer = lease.issuer ?? policy.ceilings[0]?.issuers[0];
    const bound = { issuers: issuer === undefined ? [] : [issuer], lifetimeSec: lease.lifetime ?? 600 };
    const r = policy.compileGrant(lease.id, lease.rules, bound);
    // Ignored like the PDP ignores them (no ceiling, over the ceiling): shown among the reasons.
    for (const i of r.ignored)
      ignored.push(
        i.rule === undefined
          ? { lease: lease.id, ignored: i.ignored }
          : { lease: lease.id, rule: i.rule, ignored: i.ignored },
      );
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) {
      return {
        ok: false,
        detail: [
          `lease "${lease.id}" does not compile:`,
          ...errors.map((d: Diagnostic) => `  ${d.code}: ${d.message} (line ${d.line}:${d.col})`),
        ],
      };
    }
    if (r.grant) grants.push(r.grant);
  }
  const decided = policy.evaluate(test.request, grants.length > 0 ? { grants } : undefined);
  const decision = ignored.length > 0 ? { ...decided, reasons: [...decided.reasons, ...ignored] } : decided;
  const wrong: string[] = [];
  if (decision.decision !== test.expect) wrong.push(`expected ${test.expect}, got ${decision.decision}`);
  const ids = decision.reasons.flatMap((r) => (r.rule === undefined || r.ignored ? [] : [r.rule])).sort();
  if (test.rules && !sameSet(ids, test.rules))
    wrong.push(`expected rules [${[...test.rules].sort().join(', ')}], got [${ids.join(', ')}]`);
  if (test.error !== undefined && !decision.error?.code.startsWith(test.error))
    wrong.push(`expected error ${test.error}…, got ${decision.error ? decision.error.code : 'no error'}`);
  if (test.error === undefined && decision.error) wrong.push(`unexpected error: the request is malformed`);
  return wrong.length === 0 ? { ok: true } : { ok: false, detail: [...wrong, ...describe(decision)] };
}

function sameSet(a: string[], b: string[]): boolean {
  const sb = [...b].sort();
  return a.length === sb.length && a.every((x, i) => x === sb[i]);
}

/** The decision and its reasons, one per line, for a failure report. */
function describe(d: Decision): string[] {
  const lines = [`decision: ${d.decision}${d.reasons.length === 0 && !d.error ? ' (default: no rule applied)' : ''}`];
  if (d.error) lines.push(`error: ${d.error.code}: ${d.error.message}`);
  for (const r of d.reasons) lines.push(`reason: ${describeReason(r)}`);
  return lines;
}

function describeReason(r: Reason): string {
  const parts = [r.effect ?? '?', r.rule ?? (r.lease ? `lease ${r.lease}` : '')];
  if (r.source) parts.push(`at ${r.source}`);
  if (r.because) parts.push(`because ${JSON.stringify(r.because)}`);
  if (r.ignored) parts.push(`(lease ignored: ${r.ignored})`);
  if (r.error) parts.push(`${r.error.code}: ${r.error.message}`);
  return parts.filter((p) => p !== '').join(' ');
}
