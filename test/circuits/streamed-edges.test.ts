/**
 * Edge attribution on streamed models (weights uploaded block by block, block-wise backward):
 * EAP, EAP-RelP and EAP-IG take every gradient from `runWithCacheAndGrads` and every node output
 * from `runWithCache`, and `exact` is forward-only, so all four run on a streamed model and give
 * the scores of the same weights loaded whole. Random GPT-2 and Llama (GQA 4/2, grouped k / v
 * targets) checkpoints; the streamed twin serves the whole model's weights from memory
 * (test/helpers/memory-block-source.ts), with the vocabulary unembedded in chunks of 7 rows.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { buildGraph } from '../../src/circuits/graph.ts';
import { attributeEdges, EDGE_METHODS, type EdgeScores } from '../../src/circuits/attribute.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import type { HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { memoryBlockSource } from '../helpers/memory-block-source.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { cleanupHFModels, hfModel, relDiff } from './hf-models.ts';

afterAll(cleanupHFModels);

const VOCAB = 50;
const data = toPatchingData(randomPairs(3, 6, 17, VOCAB));

describe.each([
  { name: 'gpt2', opts: { modelType: 'gpt2', seed: 61, std: 0.3, vocab: VOCAB } as HFCheckpointOptions },
  { name: 'llama (GQA 4/2)', opts: { modelType: 'llama', seed: 62, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB } as HFCheckpointOptions },
])('edge scores on a streamed model = on the whole model: $name', ({ opts }) => {
  it.each(EDGE_METHODS.map((method) => ({ method })))('$method', async ({ method }) => {
    const { model: whole } = await hfModel(opts);
    const source = memoryBlockSource(whole.cfg, whole.canonicalWeights());
    const streamed = HookedTransformer.fromBlockSource(source, { chunkFloats: 7 * whole.cfg.dModel });
    expect(streamed.execution).toBe('streamed');
    const graph = buildGraph(whole.cfg.nLayers, whole.cfg.nHeads, whole.topology());
    const o = { method, igSteps: 3, perPosition: method !== 'exact' };
    const before = tf.memory().numTensors;
    const a: EdgeScores = attributeEdges(whole, graph, data, o);
    expect(tf.memory().numTensors, 'whole model').toBe(before);
    const read = source.blocksRead;
    const b: EdgeScores = attributeEdges(streamed, graph, data, o);
    expect(tf.memory().numTensors, 'streamed model').toBe(before);
    expect(source.blocksRead, 'the streamed call read blocks').toBeGreaterThan(read);
    expect(Math.max(...a.scores.map(Math.abs)), 'scores are not trivially zero').toBeGreaterThan(1e-3);
    const d = relDiff(b.scores, a.scores);
    console.log(`${opts.modelType} ${method}: ${graph.nEdges} edges, max |streamed − whole| / max |whole| = ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
    if (o.perPosition) expect(relDiff(b.perPosition!, a.perPosition!)).toBeLessThan(1e-5);
    expect(Math.abs(b.baselines.clean - a.baselines.clean)).toBeLessThan(1e-5 * Math.max(1, Math.abs(a.baselines.clean)));
    expect(Math.abs(b.baselines.corrupt - a.baselines.corrupt)).toBeLessThan(1e-5 * Math.max(1, Math.abs(a.baselines.corrupt)));
    whole.dispose();
    streamed.dispose();
  });
});
