/** @portcullis/scan: secret detection. So far: the fingerprint file (fingerprints.ts). */
export {
  buildFingerprints,
  serializeFingerprints,
  parseFingerprints,
  fingerprint,
  encodedForms,
  FINGERPRINT_FORMAT,
  MIN_FORM_BYTES,
} from './fingerprints.js';
export type {
  BuildFingerprintsOptions,
  FingerprintEntry,
  FingerprintFile,
  FingerprintEncoding,
  SecretInput,
} from './fingerprints.js';
