export type { Effect, Principal, RequestContext, DecisionRequest, Reason, ErrorInfo, Decision } from './types.js';
export { PcxError, isPcxError } from './errors.js';
