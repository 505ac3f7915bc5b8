export { startEgressProxy } from './proxy.js';
export type { EgressProxy, EgressProxyOptions, EgressAuditRecord, Decide, Audit, Resolve } from './proxy.js';
export { canonicalHost, parseIp, formatIp, parseCidr, cidrContains, embeddedIPv4, splitHostPort } from './address.js';
export type { Ip, Cidr, CanonicalHost } from './address.js';
export { Floor } from './floor.js';
export { EgressMetrics, serveMetrics } from './metrics.js';
export { dnsResolver } from './resolve.js';
export { egressCommand } from './command.js';
