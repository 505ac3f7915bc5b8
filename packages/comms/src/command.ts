/**
 * `portcullis comms`: the message filter daemon. Thin: parse options, load the fingerprint file
 * (and a rules file), wire the PDP and audit clients into the server, log, stop cleanly on
 * SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AuditClient, PcxError, PdpClient, positiveIntOption, type RequestContext } from '@portcullis/protocol';
import { createScanner, parseFingerprints, parseRules } from '@portcullis/scan';
import { startCommsServer } from './server.js';

/** What a command reads and writes (the CLI's CommandIO, structurally). */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `usage: portcullis comms --socket PATH --pdp SOCK --audit SOCK --fingerprints FILE
                        --principal ID [options]

The message filter: POST /v1/messages/check {"channel", "to", "text"} on a Unix socket answers
the decision, the findings and the redacted text. Each check is decided as comms.send with
resource.channel, resource.to, resource.size (bytes) and resource.secrets (the number of findings),
and audited with the text's SHA-256 and the findings (never the text).

options:
  --socket PATH           where to serve (created 0660)
  --pdp SOCK              the PDP's Unix socket
  --audit SOCK            the audit sink's Unix socket
  --fingerprints FILE     the workspace's fingerprint file (portcullis vault fingerprints)
  --rules FILE            a rules file adding to or replacing built-in pattern rules
  --principal ID          the agent this sidecar belongs to
  --role ROLE             a role of the principal (repeatable)
  --project P --blueprint B --session S
                          the request context
  --max-body-bytes N      largest request body (default 1048576)
  --pdp-timeout MS        PDP deadline per decision (default 250)
`;

function readText(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new PcxError('PCX_COMMS_FILE', `cannot read ${flag} "${path}": ${(e as NodeJS.ErrnoException).code}`, {
      hint: flag === '--fingerprints' ? 'write one with portcullis vault fingerprints --out FILE' : 'check the path',
    });
  }
}

export async function commsCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      pdp: { type: 'string' },
      audit: { type: 'string' },
      fingerprints: { type: 'string' },
      rules: { type: 'string' },
      principal: { type: 'string' },
      role: { type: 'string', multiple: true, default: [] },
      project: { type: 'string' },
      blueprint: { type: 'string' },
      session: { type: 'string' },
      'max-body-bytes': { type: 'string', default: '1048576' },
      'pdp-timeout': { type: 'string', default: '250' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  for (const required of ['socket', 'pdp', 'audit', 'fingerprints', 'principal'] as const) {
    if (!values[required])
      throw new PcxError('PCX_USAGE', `missing --${required}`, { hint: 'see portcullis comms --help' });
  }
  const maxBodyBytes = positiveIntOption('--max-body-bytes', values['max-body-bytes']);
  const pdpTimeout = positiveIntOption('--pdp-timeout', values['pdp-timeout']);
  // Both files are read and validated before anything listens: a filter that started without its
  // fingerprints would let every known secret through.
  const fingerprints = parseFingerprints(readText('--fingerprints', values.fingerprints!), values.fingerprints!);
  const rules = values.rules ? parseRules(readText('--rules', values.rules), values.rules) : undefined;
  const scanner = createScanner({ fingerprints, ...(rules ? { rules } : {}) });
  const context: RequestContext = {};
  if (values.project) context.project = values.project;
  if (values.blueprint) context.blueprint = values.blueprint;
  if (values.session) context.session = values.session;

  const say = (line: string): void => void io.stderr.write(`portcullis comms: ${line}\n`);
  const pdp = new PdpClient({ socketPath: values.pdp!, timeoutMs: pdpTimeout });
  const audit = new AuditClient({ socketPath: values.audit! });
  let onSignal: (s: NodeJS.Signals) => void = () => {};
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const server = await startCommsServer({
      socketPath: values.socket!,
      scanner,
      decide: (r) => pdp.decide(r),
      audit: (record) => audit.append(record),
      principal: { id: values.principal!, roles: values.role },
      ...(Object.keys(context).length > 0 ? { context } : {}),
      maxBodyBytes,
      log: (e) => say(JSON.stringify(e)),
    });
    say(
      `listening on ${values.socket}; PDP ${values.pdp}, audit sink ${values.audit}; ` +
        `${fingerprints.secrets.length} known secrets (workspace "${fingerprints.workspace}"), ` +
        `${(rules ?? []).length || 'built-in'} pattern rules`,
    );
    const health = await pdp.health({ timeoutMs: 1000 });
    if (health.status !== 'ok') say(`warning: the PDP is ${health.status}; every message is denied until it answers`);
    const signal = await signalled;
    say(`${signal}: stopping`);
    await server.close();
    say('stopped');
    return 0;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    pdp.close();
    audit.close();
  }
}
