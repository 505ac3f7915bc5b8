/** Where a command reads and writes; tests pass their own to run commands in-process. */
export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  cwd: string;
}

let pipesGuarded = false;

/**
 * The process's own streams. A reader that goes away (`portcullis audit tail DIR | head`) is the
 * reader's choice, not an error: EPIPE on stdout ends the command quietly with exit 0, like a
 * shell tool killed by SIGPIPE but without a stack trace; EPIPE on stderr is ignored (the
 * command's result does not depend on anyone reading its diagnostics).
 */
export function processIO(): CommandIO {
  if (!pipesGuarded) {
    pipesGuarded = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
    process.stderr.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, cwd: process.cwd() };
}
