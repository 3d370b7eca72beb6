/**
 * Sweeps on a streamed model (weights uploaded block by block, block-wise backward) give the
 * whole model's numbers: activation patching, AtP, AtP* and RelP, on GPT-2 and Llama-with-GQA
 * layouts. And sweeps whose metric reads only the answer and wrong tokens unembed only those:
 * the same scores as with the whole vocabulary, with no vocabulary chunk read from disk.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF, hfToCanonical } from '../../src/models/architectures/index.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod } from '../../src/patching/attribution-patching.ts';
import { restrictVocabulary, toPatchingData } from '../../src/patching/data.ts';
import { normalisedLogitDiff } from '../../src/patching/metrics.ts';
import type { ComponentName } from '../../src/patching/components.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import type { MethodScores } from '../../src/patching/score-grid.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { memoryBlockSource } from '../helpers/memory-block-source.ts';

const CONFIGS = {
  gpt2: { n_layer: 3, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 41 },
  'llama (GQA 4/2)': { model_type: 'llama', num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, vocab_size: 41, max_position_embeddings: 16, rms_norm_eps: 1e-5, tie_word_embeddings: false },
};

function twins(raw: Record<string, unknown>) {
  const cfg = configFromHF(raw);
  const sd = randomStateDict(cfg, { seed: 9, std: 0.3 });
  const whole = HookedTransformer.fromStateDict(cfg, sd);
  const source = memoryBlockSource(whole.cfg, hfToCanonical(cfg, sd));
  return { whole, streamed: HookedTransformer.fromBlockSource(source, { chunkFloats: 5 * cfg.dModel }), source };
}

/** max |a − b| / max |a| over every component of two score sets. */
function relDiff(a: MethodScores, b: MethodScores): number {
  let err = 0;
  let scale = 0;
  for (const c of Object.keys(a) as ComponentName[]) {
    const x = flattenTensor(a[c]!);
    const y = flattenTensor(b[c]!);
    x.forEach((v, i) => {
      err = Math.max(err, Math.abs(v - y[i]));
      scale = Math.max(scale, Math.abs(v));
    });
  }
  expect(scale).toBeGreaterThan(0);
  return err / scale;
}

describe.each(Object.entries(CONFIGS))('streamed sweeps = whole-model sweeps: %s', (_name, raw) => {
  it('activation patching, AtP, AtP* and RelP', async () => {
    const { whole, streamed } = twins(raw);
    const data = toPatchingData(randomPairs(3, 6, 17, whole.cfg.dVocab));
    const before = tf.memory().numTensors;
    const comps: ComponentName[] = ['resid_pre', 'attn_out', 'mlp_out', 'z', 'q', 'k'];
    const actA = await activationPatch(whole, data, { components: comps });
    const actB = await activationPatch(streamed, data, { components: comps });
    expect(relDiff(actA.scores, actB.scores)).toBeLessThan(1e-5);
    const methods = [ATP, ATP_STAR, relpMethod('relp')];
    const a = attributionPatch(whole, data, { components: comps, methods });
    const b = attributionPatch(streamed, data, { components: comps, methods });
    for (const m of ['atp', 'atp*', 'relp']) expect(relDiff(a.scores[m], b.scores[m]), m).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
    whole.dispose();
    streamed.dispose();
  });

  it('a logit-difference sweep unembeds only the answer and wrong tokens, with unchanged scores', async () => {
    const { whole, streamed } = twins(raw);
    const data = toPatchingData(randomPairs(3, 6, 18, whole.cfg.dVocab).map((p, i) => ({ ...p, answerId: 3 + i, wrongId: 20 - i })));
    expect(restrictVocabulary(data, normalisedLogitDiff).logitIds).toEqual([3, 4, 5, 18, 19, 20]);
    const everything = { ...normalisedLogitDiff, vocabulary: 'all' as const };
    const comps: ComponentName[] = ['resid_pre', 'mlp_out'];
    for (const model of [whole, streamed]) {
      const chunks0 = model.streamStats()?.chunksUploaded ?? 0;
      const few = attributionPatch(model, data, { components: comps, methods: [ATP, relpMethod('relp')] });
      const fewAct = await activationPatch(model, data, { components: comps });
      if (model === streamed) expect(model.streamStats()!.chunksUploaded, 'no vocabulary chunk was read').toBe(chunks0);
      const all = attributionPatch(model, data, { components: comps, methods: [ATP, relpMethod('relp')], metric: everything });
      const allAct = await activationPatch(model, data, { components: comps, metric: everything });
      if (model === streamed) expect(model.streamStats()!.chunksUploaded).toBeGreaterThan(chunks0);
      for (const m of ['atp', 'relp']) expect(relDiff(all.scores[m], few.scores[m]), m).toBeLessThan(1e-5);
      expect(relDiff(allAct.scores, fewAct.scores)).toBeLessThan(1e-5);
      expect(few.baselines.clean).toBeCloseTo(all.baselines.clean, 5);
    }
    whole.dispose();
    streamed.dispose();
  });
});
