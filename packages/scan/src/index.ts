/**
 * @portcullis/scan: the one secret scanner every enforcement point that sees text uses. Known
 * secrets are found through the vault's keyed fingerprints (no plaintext outside the vault), common
 * credentials through pattern rules; findings carry kind, rule and byte span, and a redacted copy
 * replaces each one.
 */
export {
  buildFingerprints,
  serializeFingerprints,
  parseFingerprints,
  FINGERPRINT_FORMAT,
  FINGERPRINT_VERSION,
  MIN_SECRET_BYTES,
  MAX_SECRET_BYTES,
} from './fingerprints.js';
export type {
  BuildFingerprintsOptions,
  FingerprintFile,
  FingerprintForm,
  FingerprintSecret,
  OmittedSecret,
  SecretInput,
} from './fingerprints.js';
export { ENCODINGS } from './encodings.js';
export type { Encoding } from './encodings.js';
export { createScanner } from './scanner.js';
export type { Finding, ScanResult, Scanner, ScannerOptions, ScanStream } from './scanner.js';
export { BUILTIN_RULES, MAX_PATTERN_SPAN } from './rules.js';
export { parseRules, RULES_FORMAT, RULES_VERSION } from './rules-file.js';
export type { PatternRule } from './rules.js';
