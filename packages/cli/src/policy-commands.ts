/**
 * `portcullis check`, `fmt` and `eval`: thin shells over @portcullis/policy (which is pure) —
 * all file and stream I/O happens here.
 */
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { PcxError } from '@portcullis/protocol';
import type { Decision, PcxCode } from '@portcullis/protocol';
import type { CompiledPolicy, Diagnostic, SourceFile } from '@portcullis/policy';
import { compile, format, renderDiagnostic } from '@portcullis/policy';
import { readPolicySources } from '@portcullis/pdp';
import type { CommandIO } from './io.js';

/** Requests on one --input line are limited like PDP frames (1 MiB). */
const MAX_LINE_BYTES = 1024 * 1024;

async function readSources(paths: string[], io: CommandIO): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    for (const s of await readPolicySources(isAbsolute(p) ? p : resolve(io.cwd, p), { cwd: io.cwd })) {
      if (!seen.has(s.path)) {
        seen.add(s.path);
        out.push(s);
      }
    }
  }
  if (out.length === 0) throw new PcxError('PCX_POLICY_EMPTY', `no .pol files found in ${paths.join(', ')}`);
  return out;
}

function printDiagnostics(
  diagnostics: readonly Diagnostic[],
  sources: readonly SourceFile[],
  out: NodeJS.WritableStream,
): void {
  const text = new Map(sources.map((s) => [s.path, s.text]));
  for (const d of diagnostics) out.write(renderDiagnostic(d, text.get(d.file)) + '\n');
}

function summary(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  return `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
}

const CHECK_HELP = `usage: portcullis check PATH...

Checks a policy set (files, or directories meaning every *.pol below them, loaded together).
Prints every diagnostic as "file:line:col: CODE: message" with the source line and a caret.
Exit status: 0 when there is no error (warnings are printed), 1 on errors, 2 on usage errors.
`;

export async function checkCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(CHECK_HELP);
    return 0;
  }
  if (positionals.length === 0)
    throw new PcxError('PCX_USAGE', 'check needs at least one policy file or directory', {
      hint: 'portcullis check policies/',
    });
  const sources = await readSources(positionals, io);
  const r = compile(sources);
  printDiagnostics(r.diagnostics, sources, io.stdout);
  if (!r.policy) {
    io.stdout.write(`${summary(r.diagnostics)}\n`);
    return 1;
  }
  io.stdout.write(
    `ok: ${sources.length} file${sources.length === 1 ? '' : 's'}, ${r.policy.ruleCount} ` +
      `rule${r.policy.ruleCount === 1 ? '' : 's'}${r.diagnostics.length ? `, ${summary(r.diagnostics)}` : ''} ` +
      `(policy_version ${r.policy.version})\n`,
  );
  return 0;
}

const FMT_HELP = `usage: portcullis fmt [--check | --write] PATH...

Formats policy files canonically. By default prints the formatted text; --check lists the
files that would change and exits 1 if there are any; --write rewrites them in place.
Files with syntax errors are reported and left alone (exit 1).
`;

export async function fmtCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { check: { type: 'boolean' }, write: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(FMT_HELP);
    return 0;
  }
  if (values.check && values.write) throw new PcxError('PCX_USAGE', 'fmt takes --check or --write, not both');
  if (positionals.length === 0)
    throw new PcxError('PCX_USAGE', 'fmt needs at least one policy file or directory', {
      hint: 'portcullis fmt --check policies/',
    });
  const sources = await readSources(positionals, io);
  let failed = false;
  let changed = 0;
  for (const s of sources) {
    const r = format(s);
    if (r.text === undefined) {
      printDiagnostics(r.diagnostics, [s], io.stderr);
      failed = true;
      continue;
    }
    if (values.check) {
      if (r.text !== s.text) {
        io.stdout.write(`${s.path}\n`);
        changed++;
      }
    } else if (values.write) {
      if (r.text !== s.text) {
        await writeFile(resolve(io.cwd, s.path), r.text);
        io.stdout.write(`formatted ${s.path}\n`);
        changed++;
      }
    } else {
      io.stdout.write(sources.length > 1 ? `# ${s.path}\n${r.text}` : r.text);
    }
  }
  if (values.check && changed > 0)
    io.stderr.write(`${changed} file${changed === 1 ? '' : 's'} would be reformatted (run portcullis fmt --write)\n`);
  return failed || (values.check && changed > 0) ? 1 : 0;
}

const EVAL_HELP = `usage: portcullis eval --policy PATH (--request JSON|@FILE | --input FILE.jsonl|-) [--explain]

Evaluates requests against a policy set and prints each decision as one JSON line.
  --request JSON|@FILE   one request, given inline or read from FILE
  --input FILE|-         one request per line (JSON Lines), from FILE or stdin; decisions are
                         printed in order as they are made; a bad line yields a deny decision
                         with an error for that line
  --explain              add the candidate rules considered and the conditions that failed
`;

export async function evalCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      policy: { type: 'string', short: 'p' },
      request: { type: 'string', short: 'r' },
      input: { type: 'string', short: 'i' },
      explain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(EVAL_HELP);
    return 0;
  }
  if (!values.policy)
    throw new PcxError('PCX_USAGE', 'eval needs --policy PATH', {
      hint:
        'portcullis eval --policy policies/ --request ' +
        '\'{"principal":{"id":"a"},"action":"fs.read","resource":{"path":"/x"}}\'',
    });
  if ((values.request === undefined) === (values.input === undefined))
    throw new PcxError('PCX_USAGE', 'eval needs exactly one of --request JSON|@FILE or --input FILE.jsonl|-');
  const sources = await readSources([values.policy], io);
  const r = compile(sources);
  if (!r.policy) {
    printDiagnostics(r.diagnostics, sources, io.stderr);
    io.stderr.write(`the policy set does not compile: ${summary(r.diagnostics)}\n`);
    return 1;
  }
  const policy = r.policy;
  const decide = (req: unknown): Decision => (values.explain ? policy.explain(req) : policy.evaluate(req));
  if (values.request !== undefined) {
    let text = values.request;
    if (text.startsWith('@')) {
      const file = resolve(io.cwd, text.slice(1));
      text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new PcxError(
          'PCX_CLI_REQUEST_FILE',
          `cannot read request file ${text.slice(1)}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
        );
      });
    }
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch (e) {
      throw new PcxError('PCX_CLI_BAD_JSON', `the request is not valid JSON: ${(e as Error).message}`);
    }
    io.stdout.write(JSON.stringify(decide(req), null, values.explain ? 2 : undefined) + '\n');
    return 0;
  }
  await evalLines(values.input!, policy, decide, io);
  return 0;
}

async function evalLines(
  input: string,
  policy: CompiledPolicy,
  decide: (req: unknown) => Decision,
  io: CommandIO,
): Promise<void> {
  let stream: NodeJS.ReadableStream = io.stdin;
  if (input !== '-') {
    const file = createReadStream(resolve(io.cwd, input));
    await new Promise<void>((ok, fail) => {
      file.once('open', () => ok());
      file.once('error', (e: NodeJS.ErrnoException) =>
        fail(
          new PcxError('PCX_CLI_INPUT', `cannot read ${input}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`),
        ),
      );
    });
    stream = file;
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let d: Decision;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES)
      d = lineError(policy, 'PCX_REQ_TOO_LARGE', `line ${n}: the request is larger than ${MAX_LINE_BYTES} bytes`);
    else {
      let req: unknown;
      let ok = true;
      try {
        req = JSON.parse(line);
      } catch (e) {
        ok = false;
        d = lineError(policy, 'PCX_REQ_BAD_JSON', `line ${n}: not valid JSON: ${(e as Error).message}`);
      }
      if (ok) d = decide(req);
    }
    // Backpressure: wait for the consumer when its buffer is full (thousands of lines, one process).
    if (!io.stdout.write(JSON.stringify(d!) + '\n')) await new Promise((r) => io.stdout.once('drain', r));
  }
}

function lineError(policy: CompiledPolicy, code: PcxCode, message: string): Decision {
  return { decision: 'deny', reasons: [], policy_version: policy.version, error: { code, message } };
}
