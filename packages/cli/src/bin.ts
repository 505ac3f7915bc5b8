/**
 * The one `portcullis` command. Thin: it parses the subcommand and dispatches to the package
 * that owns it. Subcommand modules are imported lazily so that `portcullis check` does not pay
 * for loading SQLite or the proxy.
 *
 * A user mistake never prints a stack trace: a PcxError (or a usage error) prints its message
 * and exits 2; only an unexpected internal error prints a stack, and says so.
 */
import { readFileSync } from 'node:fs';
import { closestName, isPcxError } from '@portcullis/protocol';
import type { CommandIO } from './io.js';
import { processIO } from './io.js';

type Command = (argv: string[], io: CommandIO) => Promise<number>;

interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
}

const commands: Record<string, CommandEntry> = {
  audit: {
    summary: 'audit log: serve, keygen, verify, prove, verify-proof, tail, query, replay',
    load: async () => (await import('./audit-replay.js')).auditCommand,
  },
  check: {
    summary: 'check policy files; print every diagnostic',
    load: async () => (await import('./policy-commands.js')).checkCommand,
  },
  fmt: {
    summary: 'format policy files canonically (--check, --write)',
    load: async () => (await import('./policy-commands.js')).fmtCommand,
  },
  eval: {
    summary: 'evaluate requests against a policy set',
    load: async () => (await import('./policy-commands.js')).evalCommand,
  },
  test: {
    summary: 'run policy tests kept next to the policies',
    load: async () => (await import('./policy-test.js')).testCommand,
  },
  pdp: {
    summary: 'serve policy decisions on a Unix socket (the PDP daemon)',
    load: async () => (await import('@portcullis/pdp')).pdpCommand,
  },
  lease: {
    summary: 'capability leases: keygen, issue',
    load: async () => (await import('@portcullis/pdp')).leaseCommand,
  },
  egress: {
    summary: 'run the deny-by-default HTTP/HTTPS forward proxy (the egress PEP)',
    load: async () => (await import('@portcullis/egress')).egressCommand,
  },
  comms: {
    summary: 'run the message filter: secrets kept out of outgoing messages (comms.send)',
    load: async () => (await import('@portcullis/comms')).commsCommand,
  },
  vault: {
    summary: 'secrets: init, agent, unlock, lock, put, get, list, versions, delete, rotate-kek, exec, fingerprints',
    load: async () => (await import('@portcullis/vault')).vaultCommand,
  },
  lsp: {
    summary: 'the policy language server for editors (LSP over stdio)',
    load: async () => (await import('@portcullis/lsp')).lspCommand,
  },
  up: {
    summary: 'run the PDP, the audit sink and the egress proxy together (local demo)',
    load: async () => (await import('./up.js')).upCommand,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return (
    `usage: portcullis <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "portcullis <command> ` +
    `--help" for a command's options; "portcullis --version" prints the version.\n`
  );
}

/** The CLI package's version (src/ and dist/ both sit next to package.json). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], io: CommandIO = processIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    io.stdout.write(`portcullis ${version()}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  // An own entry only: "constructor" or "__proto__" must not find Object.prototype's members.
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    const guess = closestName(name, Object.keys(commands));
    io.stderr.write(`portcullis: unknown command "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    const command = await entry.load();
    return await command(rest, io);
  } catch (e) {
    if (isPcxError(e)) {
      io.stderr.write(`portcullis ${name}: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}\n`);
      return 2;
    }
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // node's parseArgs messages name the bad option but not the fix; point at the option list.
      io.stderr.write(`portcullis ${name}: ${e.message}\n  hint: run "portcullis ${name} --help" for its options\n`);
      return 2;
    }
    io.stderr.write(
      `portcullis ${name}: internal error (this is a bug, please report it):\n${(e as Error)?.stack ?? String(e)}\n`,
    );
    return 70;
  }
}
