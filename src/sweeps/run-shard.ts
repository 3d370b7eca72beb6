/**
 * Run one shard in this thread: the existing sweeps (activationPatch, attributionPatch,
 * exactEdgeScores) on the shard's subset of layers, prompts or edges.
 */
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import { activationPatch, disposeActivationSetup, prepareActivationPatch, type ActivationSetup } from '../patching/activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod, type AttributionMethod } from '../patching/attribution-patching.ts';
import { toPatchingData } from '../patching/data.ts';
import { resolveMetric } from '../patching/metrics.ts';
import { flattenTensor } from '../contracts/score-tensor.ts';
import { attributeEdges, exactEdgeScores } from '../circuits/attribute.ts';
import { graphFromModel } from '../circuits/graph.ts';
import { evaluateCircuits } from '../circuits/faithfulness.ts';
import { pruneDangling, selectEdges } from '../circuits/prune.ts';
import { parseShardKey, planHash, type GradMethod, type SweepPlan } from './plan.ts';
import type { Rules } from '../rules/rules.ts';

/** Activation shard: values of layers from..to, flat [layers · cells]; baselines over all prompts. */
export interface ActPayload {
  kind: 'act';
  values: number[];
  clean: number;
  corrupt: number;
}

/**
 * Gradient shard on prompts from..to with the UN-normalised metric: `values[component]` is the
 * method's flat grid [L · cells] on that subset; `clean`/`corrupt` are the subset's batch means.
 */
export interface GradPayload {
  kind: 'grad';
  count: number;
  values: Record<string, number[]>;
  clean: number;
  corrupt: number;
}

/** Exact-edge shard: scores of edges from..to (normalised metric, all prompts). */
export interface EdgePayload {
  kind: 'edge';
  values: number[];
  clean: number;
  corrupt: number;
}

/** Gradient edge shard on prompts from..to, un-normalised metric: scores [nEdges] and subset baselines. */
export interface EdgeGradPayload {
  kind: 'egrad';
  count: number;
  values: number[];
  clean: number;
  corrupt: number;
}

/** Faithfulness-curve point: the circuit's metric and the full / empty circuits' (un-normalised, clean prompts). */
export interface FaithPayload {
  kind: 'faith';
  value: number;
  full: number;
  empty: number;
}

/** A no-op shard's payload. */
export interface NoopPayload {
  kind: 'noop';
}

/** What a shard returns; checked by the merger against its key, the plan and the weight hash. */
export interface ShardResult {
  key: string;
  planHash: string;
  /** Weight hash of the model the shard actually ran on. */
  modelHash: string;
  /** Compute seconds of the shard. */
  seconds: number;
  payload: ActPayload | GradPayload | EdgePayload | EdgeGradPayload | FaithPayload | NoopPayload;
}

/** The gradient method object for a name. */
export function gradMethod(name: GradMethod, rules?: Rules): AttributionMethod {
  return name === 'atp' ? ATP : name === 'atp*' ? ATP_STAR : relpMethod(rules);
}

// The activation shards of one plan share its source and base runs and baselines (≈5 s of CPU per
// shard on GPT-2 small): computed once per thread for the plan being run, kept until another plan
// or model comes, or until releaseShardSetup(). Module state is per worker thread.
let cached: { planHash: string; model: HookedTransformer; setup: ActivationSetup } | undefined;

/** Free the cached per-plan setup of this thread (tensors); the next activation shard recomputes it. */
export function releaseShardSetup(): void {
  if (cached) disposeActivationSetup(cached.setup);
  cached = undefined;
}

function planSetup(model: HookedTransformer, plan: SweepPlan, hash: string, data: ReturnType<typeof toPatchingData>): ActivationSetup {
  if (cached && cached.planHash === hash && cached.model === model) return cached.setup;
  releaseShardSetup();
  const setup = prepareActivationPatch(model, data, { components: plan.activation!.components, metric: plan.metric, direction: plan.direction });
  cached = { planHash: hash, model, setup };
  return setup;
}

/** Run shard `key` of `plan` on `model` (synchronous compute; call from a worker thread to keep an event loop free). */
export async function runShard(model: HookedTransformer, plan: SweepPlan, key: string, hash = planHash(plan)): Promise<ShardResult> {
  const t0 = performance.now();
  const s = parseShardKey(key);
  const base = { key, planHash: hash, modelHash: model.weightHash() };
  const done = (payload: ShardResult['payload']): ShardResult => ({ ...base, seconds: (performance.now() - t0) / 1000, payload });
  if (s.kind === 'noop') return done({ kind: 'noop' });
  const data = toPatchingData(plan.pairs);
  if (s.kind === 'act') {
    const layers = Array.from({ length: s.to - s.from + 1 }, (_, i) => s.from + i);
    if (!plan.activation?.components.includes(s.component)) throw new Error(`shard ${key}: the plan does not patch ${s.component}`);
    const setup = planSetup(model, plan, hash, data);
    const r = await activationPatch(model, data, { components: [s.component], metric: plan.metric, direction: plan.direction, batch: plan.batch, layers, setup });
    const flat = flattenTensor(r.scores[s.component]!);
    const per = flat.length / model.cfg.nLayers;
    return done({ kind: 'act', values: flat.slice(s.from * per, (s.to + 1) * per), ...r.baselines });
  }
  if (s.kind === 'grad') {
    const g = plan.gradient;
    if (!g) throw new Error(`shard ${key}: the plan has no gradient methods`);
    if (s.to >= plan.pairs.length) throw new Error(`shard ${key}: the plan has only ${plan.pairs.length} prompt pairs`);
    const sub = toPatchingData(plan.pairs.slice(s.from, s.to + 1));
    // Un-normalised on the subset: the merger normalises with the baselines of all prompts.
    const metric = { ...resolveMetric(plan.metric), normalise: false };
    const m = gradMethod(s.method, plan.rules);
    const r = attributionPatch(model, sub, { components: g.components, methods: [m], metric, direction: plan.direction });
    const values: Record<string, number[]> = {};
    for (const c of g.components) values[c] = flattenTensor(r.scores[m.name][c]!);
    return done({ kind: 'grad', count: sub.clean.length, values, ...r.baselines });
  }
  const graph = graphFromModel(model, { gqa: plan.gqa });
  if (s.kind === 'faith') {
    const f = plan.faith;
    const curve = f?.curves.find((c) => c.method === s.method);
    if (!f || !curve) throw new Error(`shard ${key}: the plan has no faithfulness curve "${s.method}"`);
    // The same circuit faithfulnessCurve builds for this size.
    const circuit = pruneDangling(graph, selectEdges(graph, curve.scores, f.selection, s.size));
    const ev = evaluateCircuits(model, graph, data, [circuit], { ablation: f.ablation, metric: plan.metric });
    return done({ kind: 'faith', value: ev.values[0], full: ev.full, empty: ev.empty });
  }
  if (s.kind === 'egrad') {
    if (!plan.edgeGrad) throw new Error(`shard ${key}: the plan has no gradient edge methods`);
    if (s.to >= plan.pairs.length) throw new Error(`shard ${key}: the plan has only ${plan.pairs.length} prompt pairs`);
    const sub = toPatchingData(plan.pairs.slice(s.from, s.to + 1));
    const metric = { ...resolveMetric(plan.metric), normalise: false }; // normalised in the merge
    const r = attributeEdges(model, graph, sub, { method: s.method, rules: plan.rules, igSteps: plan.edgeGrad.igSteps, metric });
    return done({ kind: 'egrad', count: sub.clean.length, values: Array.from(r.scores), ...r.baselines });
  }
  const edges = Array.from({ length: s.to - s.from + 1 }, (_, i) => s.from + i);
  if (plan.direction !== 'denoising') throw new Error(`shard ${key}: exact edge patching is denoising only`);
  // plan.batch counts sequences; exactEdgeScores batches edges (each B sequences).
  const batch = plan.batch ? Math.max(1, Math.floor(plan.batch / data.clean.length)) : undefined;
  const r = exactEdgeScores(model, graph, data, { edges, metric: plan.metric, batch });
  return done({ kind: 'edge', values: edges.map((e) => r.scores[e]), ...r.baselines });
}
