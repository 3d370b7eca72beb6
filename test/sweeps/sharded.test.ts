/**
 * Sweeps as shards, without Redis: the merge rule against unsharded computations (independent of
 * the merge code), equal results on 1 and 2 threads, resume from the shards done, result checks,
 * a crashed thread retried, and the memory cap on the number of workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelWithTokenizer, type LoadedModel } from '../../src/hooks/load-model.ts';
import { loadDataset } from '../../src/tasks/dataset.ts';
import type { Tokenizer } from '../../src/tokenizer.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { activationPatch, disposeActivationSetup, prepareActivationPatch } from '../../src/patching/activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod } from '../../src/patching/attribution-patching.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import { maxDiff } from '../helpers/score-diff.ts';
import { attributeEdges, exactEdgeScores } from '../../src/circuits/attribute.ts';
import { buildGraph } from '../../src/circuits/graph.ts';
import { faithfulnessCurve, logSpacedSizes } from '../../src/circuits/faithfulness.ts';
import { mergeShards } from '../../src/sweeps/merge.ts';
import { buildPlan, runPlan } from '../../src/sweeps/sharded-sweep.ts';
import { parseShardKey, planHash, planShards, shardKey } from '../../src/sweeps/plan.ts';
import { checkShardResult } from '../../src/sweeps/merge.ts';
import { releaseShardSetup, runShard } from '../../src/sweeps/run-shard.ts';
import { capWorkers } from '../../src/sweeps/worker-memory.ts';
import { parseQueueUrl, shardJobId } from '../../src/sweeps/queue-url.ts';

const COMPONENTS = 'resid_pre,attn_out,mlp_out,z';

describe('sharded sweeps (local)', () => {
  let loaded: LoadedModel & { tokenizer: Tokenizer };
  let pairs: PromptPair[];
  let dir: string;
  beforeAll(async () => {
    loaded = await loadModelWithTokenizer();
    pairs = loadDataset(loaded.tokenizer, { kind: 'ioi', n: 5, seed: 2, corruption: 'abc' });
    dir = mkdtempSync(join(tmpdir(), 'relp-shards-'));
  });
  afterAll(() => {
    loaded.model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shard keys round-trip, do not depend on the worker count, and the plan hash ignores the model location', () => {
    for (const k of ['act/z/L0-3', 'grad/atp*/P4-7', 'grad/relp/P0-0', 'edge/exact/E64-127', 'edge/eap-ig/P0-7', 'noop/5']) expect(shardKey(parseShardKey(k))).toBe(k);
    expect(() => parseShardKey('act/nope/L0-1')).toThrow(/unknown component|nope/);
    expect(() => parseShardKey('grad/atp/P0')).toThrow(/malformed shard key "grad\/atp\/P0"/);
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation', 'atp'], components: 'resid_pre,z', promptsPerShard: 2, layersPerShard: 3 });
    // 4 layers in shards of 3 → 2 per component; 5 prompts in shards of 2 → 3.
    expect(planShards(plan)).toEqual(['act/resid_pre/L0-2', 'act/resid_pre/L3-3', 'act/z/L0-2', 'act/z/L3-3', 'grad/atp/P0-1', 'grad/atp/P2-3', 'grad/atp/P4-4']);
    expect(planHash({ ...plan, model: { ...plan.model, ref: '/elsewhere' } })).toBe(planHash(plan));
    expect(planHash({ ...plan, metric: 'logit-diff' })).not.toBe(planHash(plan));
    expect(shardJobId(planHash(plan), 'grad/atp*/P0-1')).not.toMatch(/:/);
  });

  it('the weight hash covers every tensor: changing one element of the last tensor changes it', async () => {
    const { HookedTransformer } = await import('../../src/hooks/hooked-transformer.ts');
    const a = loaded.model.weightHash();
    const sd = loaded.model.toStateDict();
    const same = HookedTransformer.fromStateDict(loaded.model.cfg, sd);
    expect(same.weightHash()).toBe(a);
    same.dispose();
    const last = [...sd.keys()].sort().at(-1)!;
    const t = sd.get(last)!;
    const data = t.data.slice();
    data[data.length - 1] += 1e-3;
    sd.set(last, { shape: t.shape, data });
    const changed = HookedTransformer.fromStateDict(loaded.model.cfg, sd);
    expect(changed.weightHash()).not.toBe(a);
    changed.dispose();
  });

  it('merged shards equal the unsharded sweeps (activation 1e-6, AtP/AtP*/RelP 1e-5, exact edges 1e-6)', async () => {
    const before = tf.memory().numTensors;
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation', 'atp', 'atp*', 'relp'], components: COMPONENTS, edges: true, edgeRange: [0, 59], promptsPerShard: 2, edgesPerShard: 25 });
    const r = await runPlan(plan, loaded, { workers: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const data = toPatchingData(pairs);
    const act = await activationPatch(loaded.model, data, { components: COMPONENTS });
    expect(maxDiff(act.scores, r.scores.activation)).toBeLessThan(1e-6);
    expect(r.baselines.clean).toBeCloseTo(act.baselines.clean, 6);
    expect(r.baselines.corrupt).toBeCloseTo(act.baselines.corrupt, 6);
    const grad = attributionPatch(loaded.model, data, { components: COMPONENTS, methods: [ATP, ATP_STAR, relpMethod('relp')] });
    for (const m of ['atp', 'atp*', 'relp']) expect(maxDiff(grad.scores[m], r.scores[m]), m).toBeLessThan(1e-5);
    const graph = buildGraph(loaded.model.cfg.nLayers, loaded.model.cfg.nHeads);
    const range = Array.from({ length: 60 }, (_, i) => i);
    const ex = exactEdgeScores(loaded.model, graph, data, { edges: range });
    expect(r.edges!.length).toBe(graph.nEdges);
    let m = 0;
    range.forEach((i) => (m = Math.max(m, Math.abs(ex.scores[i] - r.edges![i]))));
    expect(m).toBeLessThan(1e-6);
    expect(Number.isNaN(r.edges![60])).toBe(true); // outside the range: not computed
  });

  it('EAP, EAP-RelP and EAP-IG over prompt shards equal the unsharded scores (1e-5)', async () => {
    const before = tf.memory().numTensors;
    const plan = buildPlan(loaded, 'embedded', pairs, { edgeGrad: ['eap', 'eap-relp', 'eap-ig'], igSteps: 2, promptsPerShard: 2 });
    expect(planShards(plan).filter((k) => k.startsWith('edge/eap-ig/'))).toEqual(['edge/eap-ig/P0-1', 'edge/eap-ig/P2-3', 'edge/eap-ig/P4-4']);
    const r = await runPlan(plan, loaded, { workers: 1 });
    expect(tf.memory().numTensors).toBe(before);
    const data = toPatchingData(pairs);
    const graph = buildGraph(loaded.model.cfg.nLayers, loaded.model.cfg.nHeads);
    for (const method of ['eap', 'eap-relp', 'eap-ig'] as const) {
      const full = attributeEdges(loaded.model, graph, data, { method, igSteps: 2 });
      const got = r.edgeGrad![method];
      expect(got.clean).toBeCloseTo(full.baselines.clean, 6);
      expect(got.corrupt).toBeCloseTo(full.baselines.corrupt, 6);
      let m = 0;
      full.scores.forEach((v, i) => (m = Math.max(m, Math.abs(v - got.scores[i]))));
      expect(m, method).toBeLessThan(1e-5);
    }
  });

  it('faithfulness curves as shards (one per method and circuit size) equal the unsharded curves (1e-6)', async () => {
    const before = tf.memory().numTensors;
    const data = toPatchingData(pairs);
    const graph = buildGraph(loaded.model.cfg.nLayers, loaded.model.cfg.nHeads);
    const eap = Array.from(attributeEdges(loaded.model, graph, data, { method: 'eap' }).scores);
    let x = 7;
    const other = Array.from({ length: graph.nEdges }, () => ((x = (x * 48271) % 2147483647) / 2147483647) - 0.5);
    const sizes = logSpacedSizes(graph.nEdges, 4);
    const faith = { curves: [{ method: 'eap', scores: eap }, { method: 'rand', scores: other }], sizes, ablation: 'corrupt' as const, selection: 'topn' as const };
    const plan = buildPlan(loaded, 'embedded', pairs, { metric: 'logit-diff', faith });
    const keys = planShards(plan);
    expect(keys).toEqual([...sizes.filter((n) => n < graph.nEdges).map((n) => `faith/eap/K${n}`), ...sizes.filter((n) => n < graph.nEdges).map((n) => `faith/rand/K${n}`)]);
    const r = await runPlan(plan, loaded, { workers: 1 });
    expect(tf.memory().numTensors).toBe(before);
    // Merge order is the plan's, not arrival order.
    const h = planHash(plan);
    const shuffled: Record<string, Awaited<ReturnType<typeof runShard>>> = {};
    for (const k of [...keys].reverse()) shuffled[k] = await runShard(loaded.model, plan, k, h);
    const again = mergeShards(plan, shuffled);
    for (const [i, c] of faith.curves.entries()) {
      // Independent: all circuits of the curve evaluated together, in one call.
      const want = faithfulnessCurve(loaded.model, graph, data, c.scores, { method: c.method, sizes, metric: 'logit-diff' });
      for (const got of [r.faith![i], again.faith![i]]) {
        expect(got.method).toBe(c.method);
        expect(got.curve.map((p) => p.edges)).toEqual(want.curve.map((p) => p.edges));
        got.curve.forEach((p, j) => expect(Math.abs(p.recovered - want.curve[j].recovered)).toBeLessThan(1e-6));
        expect(Math.abs(got.auc! - want.auc)).toBeLessThan(1e-6);
        expect(Math.abs(got.full! - want.full)).toBeLessThan(1e-6);
        expect(Math.abs(got.empty! - want.empty)).toBeLessThan(1e-6);
        expect(got.edges_for_80).toBe(want.edges_for_80);
      }
    }
    expect(() => planShards({ ...plan, faith: { ...faith, curves: [{ method: 'eap', scores: eap.slice(1) }] } })).toThrow(/faithfulness curve "eap": scores have \d+ values but the graph has \d+ edges/);
    expect(shardKey(parseShardKey('faith/atp*/K12'))).toBe('faith/atp*/K12');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('2 threads give the same numbers as 1 (1e-6); a crashed thread is reported and its shard retried once', async () => {
    // Few shards (the 4-component CLI runs on 2 threads are in distributed.test.ts).
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation', 'atp', 'relp'], components: 'resid_pre,z', edges: true, edgeRange: [400, 439], promptsPerShard: 3, layersPerShard: 2, edgesPerShard: 20 });
    const one = await runPlan(plan, loaded, { workers: 1 });
    const crash = join(dir, 'crashed');
    const notes: string[] = [];
    process.env.RELP_TEST_CRASH_ONCE = crash; // read by the threads at start
    let two;
    try {
      two = await runPlan(plan, undefined, { workers: 2, log: (s) => notes.push(s) });
    } finally {
      delete process.env.RELP_TEST_CRASH_ONCE;
    }
    expect(existsSync(crash)).toBe(true);
    expect(notes.join('\n')).toMatch(/worker failed on shard \S+ .*retrying it once/);
    expect(two.stats.workers).toBe(2);
    for (const k of Object.keys(one.scores)) expect(maxDiff(one.scores[k], two.scores[k]), k).toBeLessThan(1e-6);
    for (let i = 400; i <= 439; i++) expect(Math.abs(one.edges![i] - two.edges![i])).toBeLessThan(1e-6);
  });

  it('resumes from the shards done: a second run recomputes nothing; a foreign progress.json is ignored', async () => {
    const out = join(dir, 'resume');
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation', 'atp'], components: 'resid_pre', promptsPerShard: 3 });
    const a = await runPlan(plan, loaded, { workers: 1, out });
    expect(a.stats.computed).toBe(planShards(plan).length);
    const b = await runPlan(plan, loaded, { workers: 1, out, log: () => {} });
    expect(b.stats).toMatchObject({ computed: 0, resumed: planShards(plan).length });
    expect(maxDiff(a.scores.activation, b.scores.activation)).toBe(0);
    writeFileSync(join(out, 'progress.json'), '{"key": "other", "done": {"act/resid_pre/L0-0": {}}}');
    const c = await runPlan(plan, loaded, { workers: 1, out });
    expect(c.stats.resumed).toBe(0);
    writeFileSync(join(out, 'progress.json'), '{"key": "tor');
    expect((await runPlan(plan, loaded, { workers: 1, out })).stats.resumed).toBe(0);
  });

  it('refuses results of another model, shard, run, shape or with non-finite values', async () => {
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation', 'atp'], components: 'resid_pre', promptsPerShard: 5 });
    const h = planHash(plan);
    const good = await runShard(loaded.model, plan, 'act/resid_pre/L1-1', h);
    expect(checkShardResult(plan, h, good.key, good)).toBeUndefined();
    expect(checkShardResult(plan, h, good.key, { ...good, modelHash: 'f'.repeat(64) })).toMatch(/computed on a different model/);
    expect(checkShardResult(plan, h, 'act/resid_pre/L2-2', good)).toMatch(/the result is for shard "act\/resid_pre\/L1-1"/);
    expect(checkShardResult(plan, 'x'.repeat(64), good.key, good)).toMatch(/another run/);
    const p = good.payload as { values: number[] };
    expect(checkShardResult(plan, h, good.key, { ...good, payload: { ...good.payload, values: p.values.slice(1) } })).toMatch(/has \d+ values, expected \d+/);
    expect(checkShardResult(plan, h, good.key, { ...good, payload: { ...good.payload, values: [null, ...p.values.slice(1)] } })).toMatch(/values\[0\] is not a finite number/);
    const g = await runShard(loaded.model, plan, 'grad/atp/P0-4', h);
    expect(checkShardResult(plan, h, g.key, g)).toBeUndefined();
    expect(checkShardResult(plan, h, g.key, { ...g, payload: { ...g.payload, count: 4 } })).toMatch(/counts 4 prompts, expected 5/);
    releaseShardSetup();
  });

  it("activation shards of one plan share the plan's source/base runs once per thread, freed by releaseShardSetup", async () => {
    const data = toPatchingData(pairs);
    const before = tf.memory().numTensors;
    const plan = buildPlan(loaded, 'embedded', pairs, { methods: ['activation'], components: 'resid_pre,z' });
    const h = planHash(plan);
    await runShard(loaded.model, plan, 'act/resid_pre/L0-0', h);
    const held = tf.memory().numTensors;
    expect(held).toBeGreaterThan(before); // the cached setup
    const z = await runShard(loaded.model, plan, 'act/z/L2-2', h);
    expect(tf.memory().numTensors).toBe(held); // reused, not recomputed
    releaseShardSetup();
    expect(tf.memory().numTensors).toBe(before);
    // Independent: the same layer from a sweep with its own setup.
    const own = await activationPatch(loaded.model, data, { components: 'z', layers: [2] });
    const per = flattenTensor(own.scores.z!).length / loaded.model.cfg.nLayers;
    const want = flattenTensor(own.scores.z!).slice(2 * per, 3 * per);
    (z.payload as { values: number[] }).values.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6));
    // A setup is refused by a call it was not made for.
    const setup = prepareActivationPatch(loaded.model, data, { components: 'resid_pre' });
    await expect(activationPatch(loaded.model, data, { components: 'z', setup })).rejects.toThrow(/opts.setup has no source activations of z/);
    await expect(activationPatch(loaded.model, data, { components: 'resid_pre', direction: 'noising', setup })).rejects.toThrow(/prepared for another model, dataset, metric or direction/);
    disposeActivationSetup(setup);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('lowers the worker count when N model copies do not fit, and says so; parses queue URLs', () => {
    const cfg = loaded.model.cfg;
    expect(capWorkers(4, cfg, 15, undefined, 1e12)).toEqual({ workers: 4 });
    const c = capWorkers(64, cfg, 15, undefined, 2e8);
    expect(c.workers).toBeLessThan(64);
    expect(c.workers).toBeGreaterThanOrEqual(1);
    expect(c.note).toMatch(/--workers 64 lowered to \d+: each worker holds its own model/);
    const q = parseQueueUrl('redis://:s3cret@10.0.0.5:6380/sweeps');
    expect(q).toMatchObject({ name: 'sweeps', connection: { host: '10.0.0.5', port: 6380, password: 's3cret' } });
    expect(q.display).not.toMatch(/s3cret/);
    expect(() => parseQueueUrl('http://x/y')).toThrow(/must start with redis:\/\//);
    expect(() => parseQueueUrl('redis://h:1/a:b')).toThrow(/queue name "a:b"/);
  });
});
