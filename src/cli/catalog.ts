/**
 * The contract as the CLI uses it at run time: the kinds (paths, nouns, JSON Schemas of bodies)
 * and the job states. Every CLI module reads the contract through this file only, because the
 * bundle (scripts/build.mjs, `dist/cli/`) replaces it with the same data serialized at build time:
 * the CLI then starts without evaluating TypeBox and the contract modules (DESIGN: the CLI imports
 * `contract`, never the server). Unbundled (tests, dist/src) it is the contract itself.
 */
export { JOB_STATES } from '../contract/common.js';
export { KINDS, type KindContract } from '../contract/kinds.js';
