/**
 * `portcullis lsp`: the language server on stdin/stdout (the only transport editors need for a
 * local binary). Nothing else may write to stdout while it runs: it carries the protocol.
 */
import { parseArgs } from 'node:util';
import { PcxError } from '@portcullis/protocol';
import type { Readable, Writable } from 'node:stream';
import { createConnection } from 'vscode-languageserver/node.js';
import { serveLanguage } from './server.js';

/** The streams the command uses (the CLI's CommandIO, structurally). */
export interface LspCommandIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `usage: portcullis lsp [--stdio]

Runs the Portcullis policy language server over stdin/stdout (editors start it; see editors/vscode).
Diagnostics, hover, go to definition, references, completion, formatting and quick fixes for .pol files.
A file's policy set is its directory and everything below it, or the policy root holding it when the
editor passes initializationOptions.policyRoots (absolute directories).`;

export async function lspCommand(argv: string[], io: LspCommandIO): Promise<number> {
  let values: { help?: boolean };
  try {
    // --stdio is what VS Code's client passes for the stdio transport; it is the only one.
    ({ values } = parseArgs({ args: argv, options: { stdio: { type: 'boolean' }, help: { type: 'boolean' } } }));
  } catch (e) {
    throw new PcxError('PCX_USAGE', (e as Error).message, { hint: 'run `portcullis lsp --help`' });
  }
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Given the raw streams, vscode-languageserver ends the process as the protocol says: exit code 0
  // after shutdown + exit, 1 when the editor goes away without them (stdin closed or its pid gone).
  const connection = createConnection(
    io.stdin as NodeJS.ReadableStream & Readable,
    io.stdout as NodeJS.WritableStream & Writable,
  );
  serveLanguage(connection);
  connection.listen();
  return new Promise<number>(() => {});
}
