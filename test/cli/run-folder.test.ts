/**
 * Newcomer findings about run folders and output, each reproduced as the README's user met it:
 * - `relp patch … --out runs/ioi-16` (seed 0) then `relp circuit … --out runs/ioi-16` (seed 1)
 *   put two prompt sets into one folder, shown by the viewer as one run. Now the second write is
 *   refused naming what differs (seed 0 → 1), `--force` starts a new run, and the same prompts are accepted.
 * - `circuit --seed 0` was rejected while `patch --seed 0` was accepted; both draw the same pairs now.
 * - `circuit` printed only JSON: now a human summary, JSON with --json.
 * - `--components every` silently meant the default three.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run-cli.ts';
import { readRunFile } from '../../src/contracts/run.ts';
import { readCircuitFile } from '../../src/contracts/circuit.ts';
import { readFaithfulnessFile } from '../../src/contracts/faithfulness.ts';
import { datasetHash } from '../../src/contracts/provenance.ts';
import { COMPONENT_NAMES } from '../../src/patching/names.ts';

describe('one run folder = one set of prompts', () => {
  const base = mkdtempSync(join(tmpdir(), 'relp-folder-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const patch = (out: string, seed: number, extra: string[] = []) => runCli(['patch', '--task', 'ioi', '--n', '4', '--seed', String(seed), '--methods', 'activation,atp', '--components', 'resid_pre', '--out', out, ...extra]);
  const circuit = (out: string, seed: number, extra: string[] = []) =>
    runCli(['circuit', '--task', 'ioi', '--n', '4', '--seed', String(seed), '--method', 'eap', '--edges', '10', '--curve-points', '2', '--reference', 'none', '--no-progress', '--out', out, ...extra]);

  it('refuses a circuit for other prompts in a patch folder, names both, and --force starts a new run', async () => {
    const out = join(base, 'ioi-16');
    const p = await patch(out, 0);
    expect(p.code, p.stderr).toBe(0);
    const run = readRunFile(out);
    // The recorded dataset hash is the hash of the recorded prompts (recomputed here).
    expect(run.provenance).toMatchObject({ task: 'ioi', seed: 0, dataset_sha256: datasetHash(run.dataset.pairs) });
    expect(run.provenance.model_sha256).toMatch(/^[0-9a-f]{64}$/);

    const c = await circuit(out, 1);
    expect(c.code).toBe(1);
    // Only what differs, with both values; one error line and one hint, no hashes.
    expect(c.stderr.split('\n').filter((l) => /^relp: (error|hint):/.test(l))).toEqual([
      `relp: error: --out ${out} holds another run: seed 0 → 1`,
      'relp: hint: pass --force to start a new run there (removes its run.json, circuit.json, faithfulness.json, progress.json), or use another --out',
    ]);
    expect(c.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(out, 'circuit.json'))).toBe(false); // refused before writing anything

    const forced = await circuit(out, 1, ['--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(join(out, 'run.json'))).toBe(false); // the other run's files are gone
    expect(readCircuitFile(out).provenance).toMatchObject({ task: 'ioi', seed: 1 });
  });

  it('accepts circuit --seed 0 next to patch --seed 0: the same prompts, one provenance in every file', async () => {
    const out = join(base, 'same');
    const p = await patch(out, 0);
    expect(p.code, p.stderr).toBe(0);
    const c = await circuit(out, 0);
    expect(c.code, c.stderr).toBe(0);
    const run = readRunFile(out);
    expect(readCircuitFile(out).provenance).toEqual(run.provenance);
    expect(readFaithfulnessFile(out).provenance).toEqual(run.provenance);
    // A human summary on stdout, not JSON.
    expect(c.stdout).toMatch(/^circuit: \d+ of \d+ edges \(the top 10 by \|eap score\|, then \d+ dangling edges dropped\) on 4 prompts \(task ioi, seed 0\); recovers -?\d+\.\d{3} of the metric/);
    expect(c.stdout).toMatch(/\neap\s+-?\d\.\d{3}/);
    expect(() => JSON.parse(c.stdout)).toThrow();
    // Rewriting the same run is fine; a patch for other prompts is refused in turn.
    const again = await patch(out, 1);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`relp: error: --out ${out} holds another run: seed 0 → 1\n`);
  });

  it('circuit --json prints one JSON object with the provenance', async () => {
    const out = join(base, 'json');
    const c = await circuit(out, 0, ['--json']);
    expect(c.code, c.stderr).toBe(0);
    const j = JSON.parse(c.stdout) as { provenance: { seed: number }; methods: Record<string, { auc: number }> };
    expect(j.provenance.seed).toBe(0);
    expect(Object.keys(j.methods)).toEqual(['eap']);
  });

  it('--components every means every component, and says so', async () => {
    const out = join(base, 'every');
    const r = await runCli(['patch', '--task', 'ioi', '--n', '2', '--methods', 'atp', '--components', 'every', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`relp: components ${COMPONENT_NAMES.join(', ')}`);
    expect(Object.keys(readRunFile(out).scores.atp!)).toEqual([...COMPONENT_NAMES]);
    const block = await runCli(['patch', '--task', 'ioi', '--n', '2', '--methods', 'atp', '--components', 'every_block', '--out', join(base, 'block')]);
    expect(block.code, block.stderr).toBe(0);
    expect(Object.keys(readRunFile(join(base, 'block')).scores.atp!)).toEqual(['resid_pre', 'attn_out', 'mlp_out']);
  });
});
