import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { componentSpec, gridCells, type ComponentName } from '../../src/patching/components.ts';
import { toPatchingData, type PatchingData } from '../../src/patching/data.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { randomPairs as randomPairsOf } from '../helpers/random-pairs.ts';

const cfg = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 });

function randomPairs(n: number, pos: number, seed: number): PromptPair[] {
  return randomPairsOf(n, pos, seed, cfg.dVocab);
}

/** Naive reference: one full forward per patch, with TransformerLens-style hooks. */
function naivePatch(model: HookedTransformer, data: PatchingData, comp: ComponentName, noising = false): number[] {
  const spec = componentSpec(comp);
  const ld = (tokens: number[][], hooks = [] as Parameters<HookedTransformer['runWithHooks']>[1]) =>
    tf.tidy(() => {
      const lg = model.runWithHooks(tokens, hooks);
      const last = tf.squeeze(tf.slice(lg, [0, data.pos - 1, 0], [-1, 1, -1]), [1]);
      const a = tf.sum(tf.mul(last, tf.oneHot(tf.tensor1d(data.answerIds, 'int32'), cfg.dVocab)), -1);
      const w = tf.sum(tf.mul(last, tf.oneHot(tf.tensor1d(data.wrongIds, 'int32'), cfg.dVocab)), -1);
      return tf.mean(tf.sub(a, w)).dataSync()[0];
    });
  const clean = ld(data.clean);
  const corrupt = ld(data.corrupt);
  const [src, base] = noising ? [data.corrupt, data.clean] : [data.clean, data.corrupt];
  const out: number[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const { cache, logits } = model.runWithCache(src, { names: [spec.hook(l)] });
    logits.dispose();
    const srcAct = cache[spec.hook(l)];
    for (const cell of gridCells(spec.cellShape(cfg, data.pos))) {
      const v = ld(base, [
        {
          name: spec.hook(l),
          fn: (x) => tf.where(tf.broadcastTo(tf.tile(spec.cellMask(cfg, data.pos, cell), [x.shape[0], ...Array(x.rank - 1).fill(1)]), x.shape), srcAct, x),
        },
      ]);
      out.push((v - corrupt) / (clean - corrupt));
    }
    srcAct.dispose();
  }
  return out;
}

describe('activationPatch', () => {
  const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 3, std: 0.3 }));
  const data = toPatchingData(randomPairs(3, 6, 11));

  for (const comp of ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos', 'q', 'k', 'v', 'pattern'] as ComponentName[]) {
    it(`equals naive one-forward-per-patch recomputation for ${comp}`, async () => {
      const res = await activationPatch(model, data, { components: [comp], batch: 7 });
      const got = flattenTensor(res.scores[comp]!);
      const want = naivePatch(model, data, comp);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
    });
  }

  it('supports the noising direction', async () => {
    const res = await activationPatch(model, data, { components: 'resid_pre', direction: 'noising' });
    const want = naivePatch(model, data, 'resid_pre', true);
    flattenTensor(res.scores.resid_pre!).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
  });

  it('gives corrupt = 0 at layer 0 for unpatched positions and 1 when patching everything', async () => {
    const res = await activationPatch(model, data, { components: 'resid_pre,resid_post' });
    const grid = res.scores.resid_pre!.values as number[][];
    // Position 0 holds the same token in clean and corrupt: patching it changes nothing.
    expect(Math.abs(grid[0][0])).toBeLessThan(1e-5);
    // The last layer's resid_post at the last position carries everything the metric reads.
    const post = res.scores.resid_post!.values as number[][];
    expect(Math.abs(post[cfg.nLayers - 1][data.pos - 1] - 1)).toBeLessThan(1e-5);
  });

  it('rejects unequal lengths and equal clean/corrupt with clear errors', async () => {
    const pairs = randomPairs(2, 5, 1);
    pairs[1] = { ...pairs[1], cleanIds: pairs[1].cleanIds.slice(0, 4), corruptIds: pairs[1].corruptIds.slice(0, 4) };
    expect(() => toPatchingData(pairs)).toThrow(/same length/);
    const same = randomPairs(2, 5, 2).map((p) => ({ ...p, corruptIds: p.cleanIds }));
    await expect(activationPatch(model, toPatchingData(same), { components: 'resid_pre' })).rejects.toThrow(/cannot normalise/);
  });

  it('leaves no tensors behind', async () => {
    await activationPatch(model, data, { components: 'every' });
    const before = tf.memory().numTensors;
    await activationPatch(model, data, { components: ['resid_pre', 'z', 'pattern'] });
    expect(tf.memory().numTensors).toBe(before);
  });
});
