/**
 * @portcullis/comms: the message filter. Outgoing messages are scanned for secrets, decided by
 * the PDP as comms.send and audited (the text's hash and findings, never the text).
 */
export { commsCommand } from './command.js';
export type { CommandIO } from './command.js';
export { startCommsServer } from './server.js';
export type { CommsServer, CommsServerOptions } from './server.js';
