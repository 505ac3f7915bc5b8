export { readPolicySources } from './sources.js';
export type { PolicySource } from './sources.js';
export { startPdp } from './daemon.js';
export { defaultVersionsDir, loadVersion } from './versions.js';
export type { PdpOptions, PdpHandle } from './daemon.js';
export type { Health, ReloadStatus } from './engine.js';
export type { DrainOptions } from './server.js';
export { pdpCommand, DEFAULT_SOCKET, PDP_OPTIONS } from './command.js';
export { leaseCommand } from './lease-command.js';
