/**
 * A temporary runs directory with every case the viewer must handle, built deterministically:
 * - `ioi-small`   4 layers × 4 heads, 15 positions, run + circuit + faithfulness
 * - `gpt2-small`  12 × 12, 15 positions, EAP circuit with 32,491 edges
 * - `pos-circuit` position-resolved circuit (nodes carry ctx_idx)
 * - `circuit-only` only circuit.json
 * - `broken`      truncated run.json (a partial write)
 * - `bad-shape`   valid JSON, one row of scores too short
 * - `escape`      symlink to a run directory outside RUNS_DIR (must be invisible)
 * - `leak`        a run whose run.json is a symlink to a file outside RUNS_DIR
 * Outside RUNS_DIR sits `secret.txt` / `outside-run/run.json` holding {@link SECRET}.
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syntheticRun, writeSyntheticRun } from '../../../src/viz/synthetic-run.ts';
import type { CircuitFile } from '../../../src/contracts/circuit.ts';
import type { RunFile } from '../../../src/contracts/run.ts';

/** A marker that must never appear in any response. */
export const SECRET = 'TOP-SECRET-7f3a9c-do-not-serve';

export interface RunsFixture {
  /** Parent temp dir (holds RUNS_DIR and the files outside it). */
  base: string;
  runsDir: string;
  circuits: Record<string, CircuitFile>;
  runs: Record<string, RunFile>;
  cleanup(): Promise<void>;
}

/** Build the fixture in a fresh temp dir. */
export async function makeRunsFixture(): Promise<RunsFixture> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'relp-viz-'));
  const runsDir = path.join(base, 'runs');
  await fs.mkdir(runsDir);
  const circuits: Record<string, CircuitFile> = {};
  const runs: Record<string, RunFile> = {};
  const add = async (id: string, o: Parameters<typeof writeSyntheticRun>[2]) => {
    const w = await writeSyntheticRun(runsDir, id, o);
    circuits[id] = w.circuit;
    runs[id] = w.run;
  };
  await add('ioi-small', { nLayers: 4, nHeads: 4, nPos: 15, seed: 2, created: '2025-02-01T10:00:00.000Z' });
  await add('gpt2-small', { nLayers: 12, nHeads: 12, nPos: 15, seed: 3, created: '2025-03-01T10:00:00.000Z' });
  await add('pos-circuit', { nLayers: 3, nHeads: 3, nPos: 6, seed: 4, positionResolved: true, created: '2025-01-15T10:00:00.000Z' });
  await add('circuit-only', { nLayers: 2, nHeads: 2, nPos: 5, seed: 5 });
  await fs.rm(path.join(runsDir, 'circuit-only', 'run.json'));
  await fs.rm(path.join(runsDir, 'circuit-only', 'faithfulness.json'));
  delete runs['circuit-only'];

  await fs.mkdir(path.join(runsDir, 'broken'));
  const full = JSON.stringify(syntheticRun({ nLayers: 2, nHeads: 2, nPos: 5, seed: 6 }), null, 1);
  await fs.writeFile(path.join(runsDir, 'broken', 'run.json'), full.slice(0, Math.floor(full.length / 2)));

  await fs.mkdir(path.join(runsDir, 'bad-shape'));
  const bad = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 5, seed: 7 });
  (bad.scores.relp!.resid_pre!.values as number[][])[1]!.pop();
  await fs.writeFile(path.join(runsDir, 'bad-shape', 'run.json'), JSON.stringify(bad));

  // Outside RUNS_DIR.
  await fs.writeFile(path.join(base, 'secret.txt'), SECRET);
  await fs.mkdir(path.join(base, 'outside-run'));
  const outside = syntheticRun({ nLayers: 1, nHeads: 1, nPos: 2, seed: 8 });
  outside.model.path = SECRET;
  await fs.writeFile(path.join(base, 'outside-run', 'run.json'), JSON.stringify(outside));
  await fs.symlink(path.join(base, 'outside-run'), path.join(runsDir, 'escape'), 'dir');
  await fs.mkdir(path.join(runsDir, 'leak'));
  await fs.symlink(path.join(base, 'outside-run', 'run.json'), path.join(runsDir, 'leak', 'run.json'));
  await fs.writeFile(path.join(runsDir, 'leak', 'notes.txt'), 'not a run file');

  return { base, runsDir, circuits, runs, cleanup: () => fs.rm(base, { recursive: true, force: true }) };
}
