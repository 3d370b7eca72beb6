/**
 * Run files moved to the contracts (src/contracts/run.ts): this module re-exports the one
 * reader and writer, so existing imports keep working.
 */
export { RUN_VERSION, readRunFile, runFileOf, runPairs, writeRunFile, type RunFile, type RunFileContent, type RunPair } from '../contracts/run.ts';
