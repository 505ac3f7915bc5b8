/** @portcullis/lsp — the policy language server (`portcullis lsp`). */
export type { LspCommandIO } from './command.js';
export { lspCommand } from './command.js';
