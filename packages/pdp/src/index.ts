export { readPolicySources } from './sources.js';
export type { PolicySource } from './sources.js';
