/**
 * @portcullis/policy — parse → check → compile to decision trees → evaluate/explain; format.
 * Pure: no I/O. This is the whole public surface; others code against exactly this.
 */
export type { Severity, Diagnostic } from './diagnostics.js';
export { renderDiagnostic } from './diagnostics.js';
export type {
  SourceFile,
  CompileOptions,
  CompileResult,
  CompiledPolicy,
  LeaseGrant,
  LeaseBound,
  LeaseCeiling,
  CeilingIgnoreReason,
  IgnoredGrant,
  GrantResult,
  EvaluateOptions,
  SkippedEntry,
} from './policy.js';
export { compile, policyVersion } from './policy.js';
export { format } from './format.js';
export type { SymbolKind, SymbolSpan, SymbolOccurrence, PolicySymbols } from './symbols.js';
export { policySymbols } from './symbols.js';
