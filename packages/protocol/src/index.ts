export type { Effect, Principal, RequestContext, DecisionRequest, Reason, ErrorInfo, Decision } from './types.js';
export { PcxError, isPcxError } from './errors.js';
export { ERROR_CODES, isPcxCode } from './codes.js';
export type { PcxCode } from './codes.js';
export {
  LineDecoder,
  encodeFrame,
  encodeFrameId,
  isFrameId,
  truncateText,
  MAX_FRAME_BYTES,
  MAX_ID_CHARS,
  TRUNCATED_MARK,
} from './framing.js';
export type { FrameId, LineDecoderOptions } from './framing.js';
export { RpcClient } from './rpc.js';
export type { RpcClientOptions, ResponseFrame } from './rpc.js';
export { AuditClient } from './audit-client.js';
export type { AuditClientOptions, AuditAck, AuditHealth } from './audit-client.js';
export { prepareAuditRecord, canonicalize, REDACTED, GENESIS_PREV } from './audit-record.js';
export {
  leaseId,
  parseIdentityHeaders,
  parseProxyAuthorization,
  redactContext,
  resolveIdentity,
} from './identity.js';
export type { ConfiguredIdentity, HeaderMap, IdentityClaim, ResolvedIdentity } from './identity.js';
export type { AuditRecord, AuditRecordInput, AuditOutcome } from './audit-record.js';
export { PdpClient } from './pdp-client.js';
export type { PdpClientOptions, PdpHealth } from './pdp-client.js';
export { closestName } from './suggest.js';
export { listenUnixSocket } from './unix-socket.js';
export type { ListenUnixOptions } from './unix-socket.js';
export { CommsClient } from './comms-client.js';
export type { CommsCheckRequest, CommsCheckResult, CommsClientOptions, CommsFinding } from './comms-client.js';
export { positiveIntOption } from './cli-options.js';
export {
  LEASE_TYP,
  IDENTITY_TYP,
  TOKEN_ALG,
  RULES_CLAIM,
  PROJECT_CLAIM,
  SESSION_CLAIM,
  BLUEPRINT_CLAIM,
  MAX_TOKEN_BYTES,
  MAX_JTI_CHARS,
  MAX_RULES_BYTES,
  MAX_TOKEN_TTL_SEC,
  isTokenName,
  parseSigningKey,
  parseTrustedKeys,
  generateSigningKey,
  issueLease,
  issueIdentityToken,
} from './lease.js';
export type { SigningKey, TrustedKey, IssuedToken, IssueLeaseOptions, IssueIdentityOptions } from './lease.js';
export { createLogger, isListeningLine } from './logger.js';
export type { Logger, LoggerOptions, LogLevel } from './logger.js';
export { formatOptions, HELP_OPTION, toArgv } from './options.js';
export type { OptionSpec, OptionTable } from './options.js';
