/**
 * Types of the viewer's own API (`/api/runs`). The files it serves are typed by the contracts
 * (src/contracts: RunFile, CircuitFile, FaithfulnessFile) and the correlation table by
 * src/patching/correlation.ts; the page code imports those types through JSDoc.
 */

/** One row of `/api/runs`. */
export interface RunSummary {
  id: string;
  model: string | null;
  task: string | null;
  /** Task seed from the provenance (null: a dataset file, or not recorded). */
  seed: number | null;
  methods: string[];
  /** ISO date: `created` from run.json, else the newest file's mtime. */
  date: string | null;
  /** Total bytes of the run's files. */
  size: number;
  hasRun: boolean;
  hasCircuit: boolean;
  hasFaithfulness: boolean;
  /** Set when a file of the run could not be read or validated. */
  error: string | null;
}
