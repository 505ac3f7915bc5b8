// Runs the real `portcullis` command table (main from bin.ts) in-process with captured output:
// the same dispatch, option parsing and error handling as the bin, minus the process spawn.
import { PassThrough } from 'node:stream';
import { main } from '../src/bin.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(argv: string[], options: { cwd?: string; stdin?: string } = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  if (options.stdin !== undefined) stdin.end(options.stdin);
  const code = await main(argv, { stdout, stderr, stdin, cwd: options.cwd ?? process.cwd() });
  return { code, out, err };
}
