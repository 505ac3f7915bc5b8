export type { Effect, Principal, RequestContext, DecisionRequest, Reason, ErrorInfo, Decision } from './types.js';
export { PcxError, isPcxError } from './errors.js';
export { LineDecoder, encodeFrame, MAX_FRAME_BYTES } from './framing.js';
export type { LineDecoderOptions } from './framing.js';
export { RpcClient } from './rpc.js';
export type { RpcClientOptions, ResponseFrame } from './rpc.js';
