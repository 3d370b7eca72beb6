import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod } from '../../src/patching/attribution-patching.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import type { ComponentName } from '../../src/patching/components.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { randomPairs as randomPairsOf } from '../helpers/random-pairs.ts';
import { freezeAtCorrupt } from '../helpers/freeze.ts';

const cfg = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 });

function randomPairs(n: number, pos: number, seed: number): PromptPair[] {
  return randomPairsOf(n, pos, seed, cfg.dVocab);
}

describe('attributionPatch', () => {
  const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 5, std: 0.3 }));
  const data = toPatchingData(randomPairs(3, 6, 17));

  it('equals activation patching exactly on a model made linear (first-order term)', async () => {
    const frozen = freezeAtCorrupt(model, data);
    const comps: ComponentName[] = ['resid_pre', 'resid_mid', 'attn_out', 'mlp_out', 'z', 'v'];
    const act = await activationPatch(model, data, { components: comps, hooks: frozen.hooks });
    const atp = attributionPatch(model, data, { components: comps, hooks: frozen.hooks });
    for (const c of comps) {
      const a = flattenTensor(act.scores[c]!);
      const b = flattenTensor(atp.scores.atp[c]!);
      a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-4));
    }
    frozen.dispose();
  });

  it('differs from activation patching on the real (non-linear) model', async () => {
    const act = await activationPatch(model, data, { components: 'mlp_out' });
    const atp = attributionPatch(model, data, { components: 'mlp_out' });
    const a = flattenTensor(act.scores.mlp_out!);
    const b = flattenTensor(atp.scores.atp.mlp_out!);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
  });

  it('AtP* QK fix is exact for q/k when everything after the softmax is linear', async () => {
    const last = cfg.nLayers - 1;
    const frozen = freezeAtCorrupt(model, data, { patterns: (l) => l !== last });
    const act = await activationPatch(model, data, { components: 'q,k', hooks: frozen.hooks });
    const qk = attributionPatch(model, data, { components: 'q,k', hooks: frozen.hooks, methods: [ATP, { name: 'qk', qkFix: true }] });
    for (const c of ['q', 'k'] as const) {
      const a = (act.scores[c]!.values as number[][])[last];
      const fixed = (qk.scores.qk[c]!.values as number[][])[last];
      const plain = (qk.scores.atp[c]!.values as number[][])[last];
      a.forEach((v, i) => expect(Math.abs(v - fixed[i])).toBeLessThan(1e-4));
      // The plain linearisation through the softmax is not exact here.
      expect(Math.max(...a.map((v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(1e-5);
    }
    frozen.dispose();
  });

  it('GradDrop averages |estimates| over L passes, each dropping one layer', () => {
    const r = attributionPatch(model, data, { components: 'resid_pre', methods: [ATP_STAR] });
    const v = flattenTensor(r.scores['atp*'].resid_pre!);
    expect(v.every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
    // Layer-0 resid_pre at clean==corrupt positions has zero difference, so zero score.
    expect((r.scores['atp*'].resid_pre!.values as number[][])[0][0]).toBe(0);
  });

  it('RelP runs over every component, including per-head z, with one rule set', () => {
    const comps = 'resid_pre,resid_mid,resid_post,attn_out,mlp_out,z,z_pos,q,k,v,pattern';
    const r = attributionPatch(model, data, { components: comps, methods: [ATP, relpMethod('relp'), { ...relpMethod('relp-ah'), name: 'relp-ah' }] });
    for (const m of ['atp', 'relp', 'relp-ah']) for (const c of comps.split(',')) expect(flattenTensor(r.scores[m][c as 'z']!).every(Number.isFinite)).toBe(true);
    expect(r.scores.relp.z!.shape).toEqual([cfg.nLayers, cfg.nHeads]);
    expect(r.scores.relp.z_pos!.shape).toEqual([cfg.nLayers, cfg.nHeads, data.pos]);
    // The rules change the gradient: RelP and AtP differ on MLP outputs.
    const a = flattenTensor(r.scores.atp.resid_pre!);
    const b = flattenTensor(r.scores.relp.resid_pre!);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-6);
  });

  it('refuses to normalise when clean and corrupt agree, and frees everything', () => {
    const same = toPatchingData(randomPairs(2, 5, 2).map((p) => ({ ...p, corruptIds: p.cleanIds })));
    attributionPatch(model, data, { components: 'resid_pre' }); // warm-up
    const before = tf.memory().numTensors;
    expect(() => attributionPatch(model, same, { components: 'resid_pre', methods: [ATP, relpMethod()] })).toThrow(/cannot normalise/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves no tensors behind', () => {
    attributionPatch(model, data, { components: 'every,z', methods: [ATP, relpMethod(), ATP_STAR] });
    const before = tf.memory().numTensors;
    attributionPatch(model, data, { components: 'every,z,q,k', methods: [ATP, relpMethod(), ATP_STAR] });
    expect(tf.memory().numTensors).toBe(before);
  });
});
