/**
 * The library's `runSweep` is the sharded sweep run in this thread: with no options it runs the
 * CLI's defaults, asks for no dataset record when nothing is written, leaves no tensors behind,
 * and its scores equal direct activation patching and AtP / RelP calls on the same pairs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadModelWithTokenizer, type LoadedModel } from '../../src/hooks/load-model.ts';
import { ioiSameLength } from '../../src/tasks/dataset.ts';
import type { Tokenizer } from '../../src/tokenizer.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { ATP, attributionPatch, relpMethod } from '../../src/patching/attribution-patching.ts';
import type { MethodScores } from '../../src/patching/score-grid.ts';
import { maxDiff } from '../helpers/score-diff.ts';
import { runSweep } from '../../src/sweeps/run-sweep.ts';
import type { RunFile } from '../../src/contracts/run.ts';

/** The run file's grids as score grids (the shape activationPatch returns). */
function asScores(run: RunFile, method: string): MethodScores {
  return run.scores[method] as unknown as MethodScores;
}

describe('runSweep (library)', () => {
  let loaded: LoadedModel & { tokenizer: Tokenizer };
  let pairs: PromptPair[];
  beforeAll(async () => {
    loaded = await loadModelWithTokenizer();
    pairs = ioiSameLength(loaded.tokenizer, 4, 3, 'swap');
  });
  afterAll(() => loaded.model.dispose());

  it('with no options: activation, AtP and RelP over resid_pre, attn_out, mlp_out and z, in this thread, recorded as task "custom"', async () => {
    const before = tf.memory().numTensors;
    const run = await runSweep(loaded, pairs);
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(run.scores).sort()).toEqual(['activation', 'atp', 'relp']);
    for (const m of Object.keys(run.scores)) expect(Object.keys(run.scores[m]!).sort()).toEqual(['attn_out', 'mlp_out', 'resid_pre', 'z']);
    expect(run.stats).toMatchObject({ workers: 1, resumed: 0 });
    expect(run.provenance).toMatchObject({ task: 'custom', seed: null });
    expect(run.dataset.kind).toBe('custom');
    expect(run.rules).toBe('relp');
    expect(run.metric).toMatchObject({ name: 'normalised_logit_diff', direction: 'denoising' });

    // The same numbers as calling activation patching and AtP / RelP directly on these pairs.
    const data = toPatchingData(pairs);
    const act = await activationPatch(loaded.model, data, { components: 'resid_pre,attn_out,mlp_out,z' });
    expect(maxDiff(act.scores, asScores(run, 'activation'))).toBeLessThan(1e-6);
    expect(run.metric.clean).toBeCloseTo(act.baselines.clean, 5);
    expect(run.metric.corrupt).toBeCloseTo(act.baselines.corrupt, 5);
    const grad = attributionPatch(loaded.model, data, { components: 'resid_pre,attn_out,mlp_out,z', methods: [ATP, relpMethod('relp')] });
    for (const m of ['atp', 'relp']) expect(maxDiff(grad.scores[m]!, asScores(run, m)), m).toBeLessThan(1e-5);
  });
});
