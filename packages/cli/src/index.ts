export { main, usage } from './bin.js';
export type { CommandIO } from './io.js';
