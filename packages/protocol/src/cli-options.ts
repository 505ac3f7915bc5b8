/**
 * Option values the daemons' command lines share: parsed once, refused with PCX_USAGE naming the
 * flag and the value, so that every command says the same thing about the same mistake.
 */
import { PcxError } from './errors.js';

/** A flag's value as a positive safe integer (digits only: no sign, exponent or fraction). */
export function positiveIntOption(flag: string, text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n <= 0)
    throw new PcxError('PCX_USAGE', `${flag} "${text}" is not a positive whole number`);
  return n;
}
