/**
 * Edge attribution scores, EAP-IG style. For an edge u → t (t an input of node v):
 *
 *   score(u → t) = Σ_batch Σ_pos Σ_d (a_clean(u) − a_corrupt(u)) · ∂m/∂(input t)
 *
 * with m the (normalised) metric. Methods differ only in the gradient:
 * - `eap`: the plain gradient at the corrupt run (Syed et al. 2023);
 * - `eap-relp`: the LRP-modified gradient (a rule preset, default `relp`) at the corrupt run;
 * - `eap-ig`: the plain gradient averaged over k runs whose input embedding is interpolated between
 *   corrupt and clean, α = (i + ½)/k, i = 0..k−1 (midpoint rule; Hanna et al. 2024);
 * - `exact` ({@link exactEdgeScores}): real edge patching, m(patched) − m(corrupt).
 *
 * Per-input gradients come from zero probes added to each node's own residual stream in
 * {@link graphForwardRaw} (head q/k/v inputs are separate per head), so one backward pass scores
 * every edge.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import { resolveRules, type RuleSet } from '../rules/rules.ts';
import type { PatchingData } from '../patching/data.ts';
import { aggregate, resolveMetric, type Metric } from '../patching/metrics.ts';
import { disposeContext, lastLogits, measureBaselines, metricContext, type Baselines } from '../patching/baselines.ts';
import { silentProgress, type Progress } from '../patching/progress.ts';
import { layerTargets, type CircuitGraph } from './graph.ts';
import { graphForward, graphForwardRaw, type GraphForwardOptions, type GraphProbes } from './graph-forward.ts';

/** Edge-scoring methods. */
export const EDGE_METHODS = ['eap', 'eap-relp', 'eap-ig', 'exact'] as const;
/** An edge-scoring method name. */
export type EdgeMethod = (typeof EDGE_METHODS)[number];

/** Options of {@link attributeEdges}. */
export interface AttributeOptions {
  method: EdgeMethod;
  /** Rule preset or set for `eap-relp` (default `relp`); ignored by the other methods. */
  rules?: string | RuleSet;
  /** Interpolation steps of `eap-ig` (default 5). */
  igSteps?: number;
  /** Metric (default: normalised logit difference). */
  metric?: Metric | string;
  /** Also return per-position scores (gradient methods only). */
  perPosition?: boolean;
  /** Extra model hooks on every forward. */
  hooks?: Hook[];
  /** Hooks on the per-head LN1 scales (see {@link GraphForwardOptions.graphHooks}). */
  graphHooks?: Hook[];
  /** `exact`: edges patched per forward (default: as many as fit in 256 sequences). */
  batch?: number;
  progress?: Progress;
}

/** Edge scores of one method. */
export interface EdgeScores {
  method: EdgeMethod;
  /** One score per edge, in graph edge order [nEdges]. */
  scores: Float32Array;
  /** Per-position scores [nEdges · pos], edge-major (when asked for). */
  perPosition?: Float32Array;
  /** Metric (un-normalised) on the clean and corrupt runs. */
  baselines: { clean: number; corrupt: number };
  seconds: number;
}

/** Validate a method name with a clear error. */
export function parseEdgeMethod(m: string): EdgeMethod {
  if (!(EDGE_METHODS as readonly string[]).includes(m)) throw new Error(`unknown circuit method "${m}" (use one of: ${EDGE_METHODS.join(', ')})`);
  return m as EdgeMethod;
}

/** The (normalised) batch-mean metric of last-position logits as a scalar. */
function scalarMetric(metric: Metric, data: PatchingData, base: Baselines, ctx: ReturnType<typeof metricContext>) {
  return (logits: tf.Tensor3D) => tf.reshape(aggregate(metric.perPrompt(lastLogits(logits), ctx), data.clean.length, metric, base), []) as tf.Scalar;
}

/**
 * Per-position scores of `T` targets from their input gradients: [P, n, T] with
 * [p, u, t] = Σ_b Σ_d delta[u, b, p, d] · grad[b, p, t, d].
 * delta [≥n, B, P, D] (clean − corrupt node outputs), grad [B, P, T, D].
 */
function targetScores(delta: tf.Tensor, grad: tf.Tensor, n: number): tf.Tensor3D {
  const [, B, P, D] = delta.shape as number[];
  const T = grad.shape[2] as number;
  const d = tf.reshape(tf.transpose(tf.slice(delta, [0, 0, 0, 0], [n, B, P, D]), [2, 0, 1, 3]), [P, n, B * D]); // [P, n, B·D]
  const g = tf.reshape(tf.transpose(grad, [1, 0, 3, 2]), [P, B * D, T]); // [P, B·D, T]
  return tf.matMul(d, g) as tf.Tensor3D; // [P, n, T]
}

/** The input node's output [B, P, D] from stacked node outputs [N, B, P, D]. */
function first(x: tf.Tensor): tf.Tensor {
  const [, B, P, D] = x.shape as number[];
  return tf.reshape(tf.slice(x, [0, 0, 0, 0], [1, B, P, D]), [B, P, D]);
}

/** Node outputs [nNodes − 1, B, pos, d] of an unpatched run. Caller disposes. */
export function nodeOutputs(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], hooks?: Hook[]): tf.Tensor4D {
  const r = graphForward(model, graph, tokens, { collectOutputs: true, hooks });
  r.logits.dispose();
  return r.outputs!;
}

/** Zero probes on every node input: q [B, P, H, D], k / v [B, P, KV, D] per layer, MLP and logits [B, P, D]. */
function zeroProbes(L: number, B: number, P: number, H: number, KV: number, D: number): GraphProbes {
  return {
    q: Array.from({ length: L }, () => tf.zeros([B, P, H, D])),
    k: Array.from({ length: L }, () => tf.zeros([B, P, KV, D])),
    v: Array.from({ length: L }, () => tf.zeros([B, P, KV, D])),
    mlp: Array.from({ length: L }, () => tf.zeros([B, P, D])),
    logits: tf.zeros([B, P, D]),
  };
}

/** What one gradient pass of {@link attributeEdges} needs. */
interface GradPass {
  model: HookedTransformer;
  graph: CircuitGraph;
  data: PatchingData;
  metric: Metric;
  base: Baselines;
  ctx: ReturnType<typeof metricContext>;
  rules?: RuleSet;
  opts: AttributeOptions;
  /** Node outputs of the corrupt run and clean − corrupt, [N, B, P, D]. */
  corrupt: tf.Tensor;
  delta: tf.Tensor;
}

/**
 * One backward pass (input node interpolated at `alpha` for eap-ig, else the corrupt run): per
 * layer l < L the scores [P, n, H + 2·KV + 1] of its targets over the MLP's upstream prefix n
 * (q per head, k and v per kv head, the MLP), and for l = L the logits' [P, n, 1]. Caller disposes.
 */
function gradientPass(gp: GradPass, alpha: number | undefined): tf.Tensor3D[] {
  const { model, graph, data, opts } = gp;
  const { nLayers: L, nHeads: H, dModel: D } = model.cfg;
  const KV = graph.nKvHeads;
  return tf.tidy(() => {
    const inputOverride = alpha !== undefined ? tf.add(first(gp.corrupt), tf.mul(first(gp.delta), alpha)) : undefined; // [B, P, D]
    const probes = zeroProbes(L, data.clean.length, data.pos, H, KV, D);
    const flat = [...probes.q, ...probes.k, ...probes.v, ...probes.mlp, probes.logits];
    const m = scalarMetric(gp.metric, data, gp.base, gp.ctx);
    const f = (...ds: tf.Tensor[]): tf.Scalar => {
      const pr: GraphProbes = { q: ds.slice(0, L), k: ds.slice(L, 2 * L), v: ds.slice(2 * L, 3 * L), mlp: ds.slice(3 * L, 4 * L), logits: ds[4 * L] };
      const { logits } = graphForwardRaw(model, graph, data.corrupt, { probes: pr, rules: gp.rules, hooks: opts.hooks, graphHooks: opts.graphHooks, inputOverride });
      // Tie every probe to the output: tfjs throws for inputs with no path (e.g. frozen patterns).
      return tf.add(m(logits), tf.mul(tf.addN(ds.map((d) => tf.sum(d))), 0)) as tf.Scalar;
    };
    const { grads } = tf.valueAndGrads(f)(flat);
    const out: tf.Tensor3D[] = [];
    for (let l = 0; l < L; l++) {
      const ts = layerTargets(graph, l);
      // Target order of layerTargets: q (H), k (KV), v (KV), MLP: [B, P, H + 2·KV + 1, D].
      const g = tf.concat([grads[l], grads[L + l], grads[2 * L + l], tf.expandDims(grads[3 * L + l], 2)], 2);
      // Heads read a prefix no longer than the MLP's: score all with the MLP's, drop extras in accumulate.
      out.push(targetScores(gp.delta, g, ts[H + 2 * KV].nUp));
    }
    out.push(targetScores(gp.delta, tf.expandDims(grads[4 * L], 2), layerTargets(graph, L)[0].nUp));
    return out;
  });
}

/**
 * Add one pass's per-layer scores into the edge-major per-position array [E · P]. `vals` of
 * layer l is [P, n, T] over the last target's prefix n; the head targets (all but the last of a
 * layer) keep only u < their own nUp. Disposes `layerVals`.
 */
function accumulate(perPos: Float32Array, graph: CircuitGraph, layerVals: tf.Tensor3D[], P: number): void {
  try {
    for (let l = 0; l <= graph.nLayers; l++) {
      const ts = layerTargets(graph, l);
      const T = ts.length;
      const n = ts[T - 1].nUp;
      const [p0, n0, t0] = layerVals[l].shape;
      if (p0 !== P || n0 !== n || t0 !== T) throw new Error(`internal: layer ${l} scores are [${p0}, ${n0}, ${t0}], expected [${P}, ${n}, ${T}]`);
      const vals = layerVals[l].dataSync() as Float32Array;
      for (let t = 0; t < T; t++) {
        const nUp = ts[t].nUp;
        const off = ts[t].edgeOffset;
        for (let p = 0; p < P; p++) {
          for (let u = 0; u < nUp; u++) perPos[(off + u) * P + p] += vals[(p * n + u) * T + t];
        }
      }
    }
  } finally {
    tf.dispose(layerVals);
  }
}

/**
 * Score every edge of `graph` with one method on `data` (denoising: clean into corrupt).
 * Gradient methods cost 2 forwards + k backwards; `exact` one forward per edge (batched).
 */
export function attributeEdges(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, opts: AttributeOptions): EdgeScores {
  const method = parseEdgeMethod(opts.method);
  if (method === 'exact') {
    if (opts.perPosition) throw new Error('perPosition scores are only available for the gradient methods (eap, eap-relp, eap-ig)');
    return exactEdgeScores(model, graph, data, opts);
  }
  const t0 = performance.now();
  const metric = resolveMetric(opts.metric);
  const rules: RuleSet | undefined = method === 'eap-relp' ? resolveRules(opts.rules) : undefined;
  const steps = method === 'eap-ig' ? (opts.igSteps ?? 5) : 1;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`igSteps must be a positive integer, got ${opts.igSteps}`);
  const P = data.pos;
  const E = graph.nEdges;
  const progress = opts.progress ?? silentProgress;
  const base = measureBaselines(model, data, metric, opts.hooks);
  const ctx = metricContext(data, base.cleanLogProbs);
  const perPos = new Float32Array(E * P);
  const clean = nodeOutputs(model, graph, data.clean, opts.hooks);
  const corrupt = nodeOutputs(model, graph, data.corrupt, opts.hooks);
  const delta = tf.sub(clean, corrupt); // [N, B, P, D]
  const gp: GradPass = { model, graph, data, metric, base, ctx, rules, opts, corrupt, delta };
  try {
    progress.start(steps, method);
    for (let i = 0; i < steps; i++) {
      accumulate(perPos, graph, gradientPass(gp, method === 'eap-ig' ? (i + 0.5) / steps : undefined), P);
      progress.increment();
    }
  } finally {
    progress.stop();
    disposeContext(ctx);
    base.cleanLogProbs.dispose();
    tf.dispose([clean, corrupt, delta]);
  }
  const scores = new Float32Array(E);
  for (let e = 0; e < E; e++) {
    let s = 0;
    for (let p = 0; p < P; p++) {
      perPos[e * P + p] /= steps;
      s += perPos[e * P + p];
    }
    scores[e] = s;
  }
  return {
    method,
    scores,
    ...(opts.perPosition ? { perPosition: perPos } : {}),
    baselines: { clean: base.clean, corrupt: base.corrupt },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Options of {@link exactEdgeScores}. */
export interface ExactOptions extends Omit<AttributeOptions, 'method' | 'rules' | 'igSteps' | 'perPosition'> {
  /** Only these edges (default: all); the others score 0. */
  edges?: number[];
  /**
   * Patch a fraction α of the difference, (m(corrupt + α·Δ) − m(corrupt))/α: α → 0 is the
   * gradient estimate, so this doubles as a finite-difference check. Default 1 (real patching).
   */
  alpha?: number;
}

/**
 * Real edge patching: for each edge u → t, run the corrupt prompts with only the input t
 * receiving a_clean(u) instead of a_corrupt(u) (everything downstream of t recomputed), and score
 * m(patched) − m(corrupt) with the (normalised) metric. Edges are batched G per forward.
 */
export function exactEdgeScores(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, opts: ExactOptions = {}): EdgeScores {
  const t0 = performance.now();
  const metric = resolveMetric(opts.metric);
  const alpha = opts.alpha ?? 1;
  if (!(alpha !== 0 && Number.isFinite(alpha))) throw new Error(`alpha must be a finite non-zero number, got ${alpha}`);
  const E = graph.nEdges;
  const B = data.clean.length;
  const edges = opts.edges ?? Array.from({ length: E }, (_, e) => e);
  for (const e of edges) if (!Number.isInteger(e) || e < 0 || e >= E) throw new Error(`edge index ${e} is out of range [0, ${E})`);
  const per = Math.max(1, opts.batch ?? Math.floor(256 / B));
  const progress = opts.progress ?? silentProgress;
  const base = measureBaselines(model, data, metric, opts.hooks);
  const src = nodeOutputs(model, graph, data.clean, opts.hooks);
  const scores = new Float32Array(E);
  try {
    // m(corrupt) through the same graph forward, so float differences cancel.
    const ctx1 = metricContext(data, base.cleanLogProbs);
    const m0 = tf.tidy(() => aggregate(metric.perPrompt(lastLogits(graphForward(model, graph, data.corrupt, { hooks: opts.hooks, graphHooks: opts.graphHooks }).logits), ctx1), B, metric, base).dataSync()[0]);
    disposeContext(ctx1);
    progress.start(edges.length, 'exact edge patching');
    for (let c0 = 0; c0 < edges.length; c0 += per) {
      const chunk = edges.slice(c0, c0 + per);
      const G = chunk.length;
      const coef = new Float32Array(G * E);
      chunk.forEach((e, g) => (coef[g * E + e] = alpha));
      const ctx = metricContext(data, base.cleanLogProbs, G);
      const vals = tf.tidy(() => {
        const { logits } = graphForward(model, graph, data.corrupt, { groups: G, patch: { src, coef }, hooks: opts.hooks, graphHooks: opts.graphHooks });
        return aggregate(metric.perPrompt(lastLogits(logits), ctx), B, metric, base);
      });
      disposeContext(ctx);
      const v = vals.dataSync();
      vals.dispose();
      chunk.forEach((e, g) => (scores[e] = (v[g] - m0) / alpha));
      progress.increment(G);
    }
  } finally {
    progress.stop();
    src.dispose();
    base.cleanLogProbs.dispose();
  }
  return { method: 'exact', scores, baselines: { clean: base.clean, corrupt: base.corrupt }, seconds: (performance.now() - t0) / 1000 };
}
