export { startEgressProxy } from './proxy.js';
export type { EgressProxy, EgressProxyOptions, EgressAuditRecord, Decide, Audit, Resolve } from './proxy.js';
// Addresses and CIDRs themselves: @portcullis/protocol/ip.
export { canonicalHost, parseCidrOption, splitHostPort } from './address.js';
export type { CanonicalHost } from './address.js';
export { Floor } from './floor.js';
export { EgressMetrics, serveMetrics } from './metrics.js';
export { dnsResolver } from './resolve.js';
export { EGRESS_OPTIONS, egressCommand } from './command.js';
