// Placeholder module: replaced by the policy toolchain work (check, fmt, eval, test).
import type { CommandIO } from './io.js';
import { PcxError } from '@portcullis/protocol';
async function pending(_argv: string[], _io: CommandIO): Promise<number> {
  throw new PcxError('PCX_PENDING', 'this command is being built');
}
export const checkCommand = pending;
export const fmtCommand = pending;
export const evalCommand = pending;
export const testCommand = pending;
