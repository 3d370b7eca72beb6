/**
 * relp's viewer (`import { startViewer } from 'relp/viz'`): a local, read-only web server for run
 * folders (run.json, circuit.json, faithfulness.json), or its express app to mount elsewhere.
 */
export { startViewer, createViewerApp, type StartViewerOptions, type RunningViewer, type ViewerAppOptions } from './server.ts';
export type { RunSummary } from './types.ts';
