/**
 * `portcullis audit <subcommand>`: serve, keygen, verify, prove, verify-proof, tail, query.
 * (replay lives in packages/cli, which may load policies.) Exit codes: 0 ok, 1 the log or proof
 * failed verification, 2 a usage error (PcxError, printed by the CLI without a stack).
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync, constants } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, formatOptions, PcxError, type OptionTable } from '@portcullis/protocol';
import { SEGMENTS, segmentName } from './format.js';
import { openIndex, queryIndex } from './index-db.js';
import { AuditLog } from './log.js';
import { checkOrigin, generateKey, parseSigningKey } from './note.js';
import { checkInclusionProof, proveInclusion } from './proof.js';
import { serveSink, type SinkServer } from './server.js';
import { listSegments, loadVerifierKey, verifyLog, type VerifyOptions } from './verify.js';

/** Structurally the CLI's CommandIO. */
export interface AuditCommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  cwd: string;
}

type Sub = (argv: string[], io: AuditCommandIO) => Promise<number>;

/** The sink's options: its parser, `audit serve --help` and `portcullis up` all read this one table. */
export const AUDIT_SERVE_OPTIONS = {
  dir: { type: 'string', value: 'DIR', help: 'where the log lives (created if missing)' },
  socket: { type: 'string', value: 'PATH', help: 'the Unix socket to listen on (created mode 0660)' },
  key: { type: 'string', value: 'FILE', help: 'the private checkpoint key from "portcullis audit keygen"' },
  origin: { type: 'string', value: 'TEXT', help: "a new log's checkpoint origin line (an existing log keeps its own)" },
  durable: { type: 'boolean', default: false, help: 'acknowledge a record only after fdatasync' },
  'fsync-interval-ms': {
    type: 'string',
    value: 'MS',
    help: 'default mode: the longest time acknowledged data stays unsynced (default 100)',
  },
  'checkpoint-every': { type: 'string', value: 'N', help: 'sign a checkpoint after N new records (default 1000)' },
  'checkpoint-interval-ms': {
    type: 'string',
    value: 'MS',
    help: '…or after this long with new records (default 10000)',
  },
  'segment-bytes': {
    type: 'string',
    value: 'N',
    help: 'start a new segment file at this size (default 67108864, 64 MiB)',
  },
} satisfies OptionTable;

const subcommands: Record<string, { summary: string; run: Sub; options?: OptionTable }> = {
  serve: {
    summary: 'run the audit sink: --dir DIR --socket PATH --key FILE [--durable]',
    run: serve,
    options: AUDIT_SERVE_OPTIONS,
  },
  keygen: {
    summary: 'create a checkpoint signing key: --name NAME --out FILE (writes FILE and FILE.pub)',
    run: keygen,
  },
  verify: {
    summary: 'verify a log: DIR [--pubkey FILE] [--against CHECKPOINT …] (checkpoints kept elsewhere)',
    run: verify,
  },
  prove: { summary: 'print an inclusion proof: DIR --seq N [--pubkey FILE]', run: prove },
  'verify-proof': {
    summary: 'check an inclusion proof offline: [FILE|-] --pubkey FILE --origin ORIGIN',
    run: verifyProof,
  },
  tail: { summary: 'print the last records: DIR [-n N] [--follow]', run: tail },
  query: {
    summary:
      'search records: DIR [--since T] [--until T] [--principal P] [--action A] [--decision D] [--source S] ' +
      '[--limit N]',
    run: query,
  },
};

export function auditUsage(extra: Record<string, string> = {}): string {
  const all = { ...Object.fromEntries(Object.entries(subcommands).map(([k, v]) => [k, v.summary])), ...extra };
  const w = Math.max(...Object.keys(all).map((k) => k.length));
  return `usage: portcullis audit <subcommand> [options]\n\n${Object.entries(all)
    .map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)
    .join('\n')}\n`;
}

export async function auditCommand(argv: string[], io: AuditCommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout.write(auditUsage());
    return name === undefined ? 2 : 0;
  }
  // An own entry only: "constructor" or "__proto__" must not find Object.prototype's members.
  const sub = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
  if (!sub)
    throw new PcxError('PCX_USAGE', `unknown audit subcommand "${name}"`, {
      hint: `one of: ${Object.keys(subcommands).join(', ')}, replay`,
    });
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(
      `usage: portcullis audit ${name} — ${sub.summary}\n` +
        (sub.options ? `\noptions:\n${formatOptions(sub.options)}` : ''),
    );
    return 0;
  }
  return sub.run(rest, io);
}

function path(io: AuditCommandIO, p: string): string {
  return isAbsolute(p) ? p : resolve(io.cwd, p);
}

function need(value: string | undefined, flag: string, what: string): string {
  if (value === undefined || value === '') throw new PcxError('PCX_USAGE', `missing ${flag}: ${what}`);
  return value;
}

function intOption(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw new PcxError('PCX_USAGE', `${flag} must be a whole number ≥ ${min}, not "${value}"`);
  return n;
}

function dirArg(io: AuditCommandIO, positionals: string[], flag: string | undefined): string {
  const d = flag ?? positionals[0];
  return path(io, need(d, 'DIR', 'the audit log directory (as given to "audit serve --dir")'));
}

function readPubkey(io: AuditCommandIO, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(path(io, file), 'utf8');
  } catch (e) {
    throw new PcxError('PCX_AUDIT_NO_KEY', `cannot read the public key ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
}

async function serve(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: AUDIT_SERVE_OPTIONS,
  });
  const dir = path(io, need(values.dir, '--dir DIR', 'where the log lives'));
  const socketPath = path(io, need(values.socket, '--socket PATH', 'the Unix socket to listen on'));
  const keyFile = path(io, need(values.key, '--key FILE', 'the private key from "portcullis audit keygen"'));
  if (values.origin !== undefined) checkOrigin(values.origin, '--origin');
  let keyText: string;
  try {
    if ((statSync(keyFile).mode & 0o077) !== 0) {
      throw new PcxError('PCX_AUDIT_KEY_PERMISSIONS', `the private key ${keyFile} is readable by other users`, {
        hint: `chmod 600 ${keyFile}`,
      });
    }
    keyText = readFileSync(keyFile, 'utf8');
  } catch (e) {
    if (e instanceof PcxError) throw e;
    throw new PcxError(
      'PCX_AUDIT_NO_KEY',
      `cannot read the private key ${keyFile}: ${(e as NodeJS.ErrnoException).code}`,
      { hint: 'create one with "portcullis audit keygen --name NAME --out FILE"' },
    );
  }
  const key = await parseSigningKey(keyText);
  const say = createLogger({ daemon: 'audit', stream: io.stderr });
  const logOptions: Parameters<typeof AuditLog.open>[0] = {
    dir,
    key,
    durable: values.durable,
    log: (m) => say('warn', m),
  };
  const fsyncIntervalMs = intOption(values['fsync-interval-ms'], '--fsync-interval-ms', 1);
  const checkpointEvery = intOption(values['checkpoint-every'], '--checkpoint-every', 1);
  const checkpointIntervalMs = intOption(values['checkpoint-interval-ms'], '--checkpoint-interval-ms', 1);
  const segmentBytes = intOption(values['segment-bytes'], '--segment-bytes', 1024);
  if (fsyncIntervalMs !== undefined) logOptions.fsyncIntervalMs = fsyncIntervalMs;
  if (checkpointEvery !== undefined) logOptions.checkpointEvery = checkpointEvery;
  if (checkpointIntervalMs !== undefined) logOptions.checkpointIntervalMs = checkpointIntervalMs;
  if (segmentBytes !== undefined) logOptions.segmentBytes = segmentBytes;
  if (values.origin !== undefined) logOptions.origin = values.origin;
  const log = await AuditLog.open(logOptions);
  let server: SinkServer;
  try {
    server = await serveSink({ socketPath, log });
  } catch (e) {
    await log.close();
    throw e;
  }
  const s = log.state;
  say(
    'info',
    `listening on ${socketPath}; log ${dir} has ${s.size} records; ` +
      `${s.durable ? 'durable mode (ack after fsync)' : 'default mode (ack after write, fsync in group commits)'}`,
    { socket: socketPath, dir, size: s.size, mode: s.durable ? 'durable' : 'default' },
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  await log.close();
  say('info', `stopped; ${log.state.size} records`, { size: log.state.size });
  return 0;
}

async function keygen(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { name: { type: 'string' }, out: { type: 'string' } } });
  const name = need(values.name, '--name NAME', 'the key name that appears in signature lines, e.g. audit.example.com');
  const out = path(io, need(values.out, '--out FILE', 'where to write the private key (FILE.pub gets the public key)'));
  const { privateKey, publicKey } = await generateKey(name);
  for (const [file, text, mode] of [
    [out, privateKey, 0o600],
    [`${out}.pub`, publicKey, 0o644],
  ] as const) {
    let fd: number;
    try {
      // O_EXCL: never overwrite a key (losing a signing key orphans every checkpoint it signed).
      fd = openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new PcxError(
        'PCX_AUDIT_KEY_EXISTS',
        code === 'EEXIST' ? `${file} already exists; refusing to overwrite a key` : `cannot create ${file}: ${code}`,
      );
    }
    writeSync(fd, text + '\n');
    closeSync(fd);
  }
  io.stdout.write(`${publicKey}\n`);
  io.stderr.write(`wrote ${out} (private, mode 0600) and ${out}.pub\n`);
  return 0;
}

async function verify(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pubkey: { type: 'string' },
      against: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
  const dir = dirArg(io, positionals, undefined);
  const opts: VerifyOptions = {};
  const pk = readPubkey(io, values.pubkey);
  if (pk !== undefined) opts.publicKey = pk;
  opts.against = values.against.map((name) => {
    try {
      return { name, note: readFileSync(path(io, name), 'utf8') };
    } catch (e) {
      throw new PcxError('PCX_USAGE', `cannot read the checkpoint "${name}": ${(e as NodeJS.ErrnoException).code}`, {
        hint: '--against takes a checkpoint file (a copy of DIR/checkpoints/<size>.note kept elsewhere)',
      });
    }
  });
  const r = await verifyLog(dir, opts);
  if (values.json) {
    io.stdout.write(
      JSON.stringify({
        ...r,
        latest: r.latest
          ? { origin: r.latest.origin, size: r.latest.size, root: r.latest.root.toString('base64') }
          : null,
      }) + '\n',
    );
    return r.ok ? 0 : 1;
  }
  for (const w of r.warnings) io.stderr.write(`warning: ${w}\n`);
  for (const p of r.problems)
    io.stdout.write(`FAIL ${p.seq !== undefined ? `seq ${p.seq} ` : ''}(${p.where}): ${p.message}\n`);
  if (r.ok) {
    io.stdout.write(
      `ok: ${r.records} records, ${r.checkpoints} checkpoints ` +
        `verified${r.origin !== undefined ? ` for the log "${r.origin}"` : ''}` +
        `${r.latest ? ` (latest covers ${r.latest.size})` : ''}` +
        `${opts.against.length > 0 ? `, ${r.kept} kept checkpoint(s) match` : ''}; ${r.unsigned} records after ` +
        `the last checkpoint\n`,
    );
    return 0;
  }
  io.stdout.write(`verification FAILED: ${r.problems.length} problem(s)\n`);
  return 1;
}

async function prove(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, seq: { type: 'string' }, pubkey: { type: 'string' } },
  });
  const dir = dirArg(io, positionals, values.dir);
  const seq = intOption(need(values.seq, '--seq N', 'the record to prove'), '--seq', 0)!;
  const { key } = loadVerifierKey(dir, readPubkey(io, values.pubkey));
  const proof = await proveInclusion(dir, seq, key);
  io.stdout.write(JSON.stringify(proof, null, 2) + '\n');
  return 0;
}

async function verifyProof(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { pubkey: { type: 'string' }, origin: { type: 'string' } },
  });
  const pk = readPubkey(io, need(values.pubkey, '--pubkey FILE', 'the verifier key (.pub) of the log'))!;
  const origin = need(
    values.origin,
    '--origin ORIGIN',
    'the origin of the log the proof must come from (DIR/origin; "portcullis audit verify DIR" prints it)',
  );
  const file = positionals[0] ?? '-';
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of io.stdin) chunks.push(Buffer.from(c as Buffer));
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = readFileSync(path(io, file), 'utf8');
    } catch (e) {
      throw new PcxError('PCX_USAGE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PcxError(
      'PCX_AUDIT_BAD_PROOF',
      `${file === '-' ? 'stdin' : file} is not JSON (expected the output of "portcullis audit prove")`,
    );
  }
  const { key } = loadVerifierKey('', pk);
  const bad = await checkInclusionProof(doc, key, origin);
  if (bad !== null) {
    io.stdout.write(`FAIL: ${bad}\n`);
    return 1;
  }
  const d = doc as { seq: number; tree_size: number };
  io.stdout.write(
    `ok: record ${d.seq} is included in the log "${origin}" of ${d.tree_size} records signed by ${key.name}\n`,
  );
  return 0;
}

async function tail(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { n: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f', default: false } },
  });
  const dir = dirArg(io, positionals, undefined);
  const n = intOption(values.n, '-n', 0) ?? 10;
  const segments = listSegments(dir);
  // Walk back from the last segment until n complete lines are gathered.
  const out: string[] = [];
  for (let i = segments.length - 1; i >= 0 && out.length < n; i--) {
    const text = readFileSync(join(dir, SEGMENTS, segmentName(segments[i]!)), 'utf8');
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n');
    lines.pop();
    out.unshift(...lines.slice(Math.max(0, lines.length - (n - out.length))));
  }
  for (const l of out) io.stdout.write(l + '\n');
  if (!values.follow) return 0;
  let segment = segments.at(-1) ?? 1;
  let offset = (() => {
    const f = join(dir, SEGMENTS, segmentName(segment));
    if (!existsSync(f)) return 0;
    const b = readFileSync(f);
    return b.lastIndexOf(0x0a) + 1;
  })();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      for (;;) {
        const f = join(dir, SEGMENTS, segmentName(segment));
        if (existsSync(f)) {
          const b = readFileSync(f);
          const end = b.lastIndexOf(0x0a) + 1;
          if (end > offset) io.stdout.write(b.subarray(offset, end));
          offset = Math.max(offset, end);
        }
        if (!existsSync(join(dir, SEGMENTS, segmentName(segment + 1)))) break;
        segment++;
        offset = 0;
      }
    }, 200);
    const stop = (): void => {
      clearInterval(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

async function query(argv: string[], io: AuditCommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      principal: { type: 'string' },
      action: { type: 'string' },
      decision: { type: 'string' },
      source: { type: 'string' },
      limit: { type: 'string' },
      rebuild: { type: 'boolean', default: false },
    },
  });
  const dir = dirArg(io, positionals, undefined);
  for (const k of ['since', 'until'] as const) {
    if (values[k] !== undefined && Number.isNaN(Date.parse(values[k]!)))
      throw new PcxError('PCX_USAGE', `--${k} "${values[k]}" is not a date-time`, {
        hint: 'use RFC 3339, e.g. 2026-01-31T12:00:00Z',
      });
  }
  if (values.decision !== undefined && !['allow', 'deny', 'ask'].includes(values.decision))
    throw new PcxError('PCX_USAGE', `--decision must be allow, deny or ask, not "${values.decision}"`);
  const filter: Parameters<typeof queryIndex>[1] = {};
  for (const k of ['since', 'until', 'principal', 'action', 'decision', 'source'] as const)
    if (values[k] !== undefined) filter[k] = values[k];
  const limit = intOption(values.limit, '--limit', 1);
  if (limit !== undefined) filter.limit = limit;
  const { db, update } = openIndex(dir, { rebuild: values.rebuild });
  try {
    if (update.rebuilt) io.stderr.write('note: the index did not match the log and was rebuilt\n');
    for (const line of queryIndex(db, filter)) io.stdout.write(line + '\n');
  } finally {
    db.close();
  }
  return 0;
}
