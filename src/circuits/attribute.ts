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
 * Every gradient comes from the model's own `runWithCacheAndGrads` (the path node-level AtP / RelP
 * use, which also runs block by block on streamed models): the input gradient of a target is the
 * gradient at its hook, `attn.hook_q_input` [b, p, head, d] and `hook_k_input` / `hook_v_input`
 * [b, p, kv_head, d] (forward option `splitQkvInput`), `hook_mlp_in`, and the last
 * `hook_resid_post` for the logits. With the `per-head` GQA convention the pass runs g copies of
 * the batch (graph-forward.ts, {@link kvCopies}), and copy r's kv-head gradient is query head
 * j·g + r's. Replacing one of these hooks changes only what that target
 * reads, so one backward pass scores every edge. Node outputs come from `runWithCache`.
 * With post-norms (Gemma-2, post-norm.ts) a node of layer l' scores against J_PN(S)ᵀ ∂m/∂in_t,
 * the post-norm's Jacobian at the pass's live pre-norm sum S (closed form, all targets at once).
 */
import * as tf from '@tensorflow/tfjs';
import type { CacheAndGrads, HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import { disposeCache, type ActivationCache } from '../hooks/activation-cache.ts';
import { resolveRules, type RuleSet, type Rules } from '../rules/rules.ts';
import { EDGE_GRAD_METHODS, EDGE_METHODS, parseMethodName, type EdgeMethod } from '../methods.ts';
import type { PatchingData } from '../patching/data.ts';
import { aggregate, resolveMetric, type Metric } from '../patching/metrics.ts';
import { disposeContext, lastLogits, measureBaselines, metricContext, type Baselines } from '../patching/baselines.ts';
import { silentProgress, type Progress } from '../patching/progress.ts';
import { headNode, layerTargets, mlpNode, type CircuitGraph } from './graph.ts';
import { compileHooks } from '../hooks/hook-point.ts';
import { postNormGain, postNormInputHooks, postNormScaleHook, postNormVjp, scaleHookOf, splitGraphHooks, type PostNormKind } from './post-norm.ts';
import { checkGraph, copiesToHeads, firstCopy, graphForward, kvCopies, mergeCopiesHooks, sumCopies, type GraphForwardOptions } from './graph-forward.ts';

export { EDGE_METHODS, type EdgeMethod };

/** Options of {@link attributeEdges}. */
export interface AttributeOptions {
  method: EdgeMethod;
  /** Rule preset or set for `eap-relp` (default `relp`); ignored by the other methods. */
  rules?: Rules;
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
  return parseMethodName(m, EDGE_METHODS, 'circuit method');
}

/** The (normalised) batch-mean metric of last-position logits as a scalar. */
function scalarMetric(metric: Metric, data: PatchingData, base: Baselines, ctx: ReturnType<typeof metricContext>) {
  return (logits: tf.Tensor3D) => tf.reshape(aggregate(metric.perPrompt(lastLogits(logits), ctx), data.clean.length, metric, base), []) as tf.Scalar;
}

/**
 * Per-position scores of `T` targets from their input gradients: [P, n, T] with
 * [p, u, t] = Σ_b Σ_d delta[start + u, b, p, d] · grad[b, p, t, d].
 * delta [≥n, B, P, D] (clean − corrupt node outputs), grad [B, P, T, D].
 */
function targetScores(delta: tf.Tensor, grad: tf.Tensor, n: number, start = 0): tf.Tensor3D {
  const [, B, P, D] = delta.shape as number[];
  const T = grad.shape[2] as number;
  const d = tf.reshape(tf.transpose(tf.slice(delta, [start, 0, 0, 0], [n, B, P, D]), [2, 0, 1, 3]), [P, n, B * D]); // [P, n, B·D]
  const g = tf.reshape(tf.transpose(grad, [1, 0, 3, 2]), [P, B * D, T]); // [P, B·D, T]
  return tf.matMul(d, g) as tf.Tensor3D; // [P, n, T]
}

/** The input node's output [B, P, D] from stacked node outputs [N, B, P, D]. */
function first(x: tf.Tensor): tf.Tensor {
  const [, B, P, D] = x.shape as number[];
  return tf.reshape(tf.slice(x, [0, 0, 0, 0], [1, B, P, D]), [B, P, D]);
}

/**
 * Hooks holding the node outputs: `input` = blocks.0.hook_resid_pre (embed + pos), head h of
 * layer l = blocks.{l}.attn.hook_result[:, :, h] (z_h·W_O[h], no b_O), MLP l = blocks.{l}.hook_mlp_out
 * (with post-norms the MLP's output before ln2_post instead, captured by {@link captureSums}).
 */
function outputHooks(L: number, post: boolean): string[] {
  const names = ['blocks.0.hook_resid_pre'];
  for (let l = 0; l < L; l++) names.push(`blocks.${l}.attn.hook_result`, ...(post ? [] : [`blocks.${l}.hook_mlp_out`]));
  return names;
}

/** Node outputs [nNodes − 1, B, pos, d] of an unpatched run (forward only, so streamed models work too). Caller disposes. */
export function nodeOutputs(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], hooks?: Hook[]): tf.Tensor4D {
  checkGraph(model, graph);
  const L = model.cfg.nLayers;
  const post = model.cfg.postNorms;
  // Post-norms: the MLP outputs before ln2_post (new tensors, so a hook's own tensor is never cached and freed).
  const sums: tf.Tensor[][] = [[], []];
  const all = [...(hooks ?? []), ...(post ? captureSums(L, sums, [2]) : [])];
  const { logits, cache } = model.runWithCache(tokens, { names: outputHooks(L, post), hooks: all, lastPositionOnly: true });
  try {
    return tf.tidy(() => {
      const parts: tf.Tensor[] = [tf.expandDims(cache['blocks.0.hook_resid_pre'], 0)];
      for (let l = 0; l < L; l++) {
        parts.push(tf.transpose(cache[`blocks.${l}.attn.hook_result`], [2, 0, 1, 3])); // [H, B, P, D]
        parts.push(tf.expandDims(post ? sums[1][l] : cache[`blocks.${l}.hook_mlp_out`], 0));
      }
      return tf.concat(parts, 0) as tf.Tensor4D;
    });
  } finally {
    logits.dispose();
    disposeCache(cache);
    tf.dispose(sums.flat());
  }
}

/** Hook names of the targets' inputs of layer l: q [B, P, H, D], k and v [B, P, KV, D], MLP [B, P, D]; l = L: the logits' [B, P, D]. */
function targetHooks(L: number, l: number): string[] {
  if (l === L) return [`blocks.${L - 1}.hook_resid_post`];
  const a = `blocks.${l}.attn.`;
  return [`${a}hook_q_input`, `${a}hook_k_input`, `${a}hook_v_input`, `blocks.${l}.hook_mlp_in`];
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
  /** Post-norm models: the gains γ, gains[kind − 1][l] (see post-norm.ts). */
  gains?: tf.Tensor1D[][];
}

/**
 * Post-norm models: scores [P, n, T] of T targets (input gradients g [B, P, T, D]) over the first
 * n nodes. The input node scores with g; a node of layer l' with J_{PN}(S)ᵀ g, S the live pre-norm
 * sum of its norm in this pass (sums[kind − 1][l'], [B, P, D]).
 */
function postNormScores(gp: GradPass, g: tf.Tensor, n: number, sums: tf.Tensor[][]): tf.Tensor3D {
  const H = gp.graph.nHeads;
  const own = compileHooks(splitGraphHooks(gp.opts.graphHooks).own);
  const parts: tf.Tensor3D[] = [targetScores(gp.delta, g, 1)];
  for (let l = 0; l < gp.graph.nLayers; l++) {
    for (const [start, cnt, kind] of [[headNode(H, l, 0), H, 1], [mlpNode(H, l), 1, 2]] as [number, number, PostNormKind][]) {
      if (start >= n) return tf.concat(parts, 1) as tf.Tensor3D;
      const hook = scaleHookOf(own, postNormScaleHook(l, kind));
      parts.push(tf.tidy(() => targetScores(gp.delta, postNormVjp(g, sums[kind - 1][l], gp.gains![kind - 1][l], gp.model.cfg.eps, !!gp.rules?.ln, hook), cnt, start)));
    }
  }
  return tf.concat(parts, 1) as tf.Tensor3D;
}

/**
 * Per layer l < L the scores [P, n, T] of its targets over the MLP's upstream prefix n
 * (q per head, k and v per kv head or per head, the MLP), and for l = L the logits' [P, n, 1], from the
 * targets' input gradients. Caller disposes.
 */
function scoresFromGrads(gp: GradPass, grads: ActivationCache, sums?: tf.Tensor[][]): tf.Tensor3D[] {
  const L = gp.graph.nLayers;
  // Per-head GQA runs g copies of the batch: k / v gradients of copy r at kv head j are query head
  // j·g + r's; every other input is shared by the copies, so its gradient is their sum.
  const c = kvCopies(gp.graph);
  return tf.tidy(() => {
    // Post-norm sums of the first copy (every copy computes the same residual stream).
    const S = sums?.map((k) => k.map((x) => firstCopy(x, c)));
    const score = (g: tf.Tensor, n: number) => (S ? postNormScores(gp, g, n, S) : targetScores(gp.delta, g, n));
    const out: tf.Tensor3D[] = [];
    for (let l = 0; l < L; l++) {
      const [q0, k0, v0, mlp0] = targetHooks(L, l).map((n) => grads[n]);
      const [q, k, v, mlp] = [sumCopies(q0, c), copiesToHeads(k0, c), copiesToHeads(v0, c), sumCopies(mlp0, c)];
      // Target order of layerTargets: q (H), k, v (KV or, per-head, H each), MLP: [B, P, T, D].
      const g = tf.concat([q, k, v, tf.expandDims(mlp, 2)], 2);
      // Heads read a prefix no longer than the MLP's: score all with the MLP's, drop extras in accumulate.
      const ts = layerTargets(gp.graph, l);
      out.push(score(g, ts[ts.length - 1].nUp));
    }
    out.push(score(tf.expandDims(sumCopies(grads[targetHooks(L, L)[0]], c), 2), layerTargets(gp.graph, L)[0].nUp));
    return out;
  });
}

/** Hooks keeping each post-norm's input (hook_normalized · hook_scale) in sums[kind − 1][l]; the caller disposes them. */
function captureSums(L: number, sums: tf.Tensor[][], kinds: readonly PostNormKind[] = [1, 2]): Hook[] {
  const hooks: Hook[] = [];
  for (let l = 0; l < L; l++) {
    for (const kind of kinds) {
      const [scaleName, normName] = postNormInputHooks(l, kind);
      let scale: tf.Tensor | undefined;
      hooks.push({ name: scaleName, fn: (x) => void (scale = x) });
      hooks.push({ name: normName, fn: (x) => void (sums[kind - 1][l] = tf.keep(tf.mul(x, scale!))) });
    }
  }
  return hooks;
}

/**
 * One backward pass on the corrupt prompts (with the input node's output set to corrupt + α·Δ for
 * eap-ig), by the model's own `runWithCacheAndGrads` (so streamed models work too): the targets'
 * input gradients are those at the split q/k/v inputs, the MLP inputs and the last residual.
 * Returns {@link scoresFromGrads}. Caller disposes.
 */
function gradientPass(gp: GradPass, alpha: number | undefined): tf.Tensor3D[] {
  const { model, data, opts } = gp;
  const L = model.cfg.nLayers;
  const g = kvCopies(gp.graph);
  const hooks: Hook[] = [...(opts.hooks ?? []), ...splitGraphHooks(opts.graphHooks).model, ...mergeCopiesHooks(L, g)];
  // Post-norm models: the live pre-norm sums of this pass, for the norms' Jacobians.
  const sums: tf.Tensor[][] | undefined = gp.gains ? [[], []] : undefined;
  if (sums) hooks.push(...captureSums(L, sums));
  const input = alpha === undefined ? undefined : tf.tidy(() => tf.add(first(gp.corrupt), tf.mul(first(gp.delta), alpha))); // [B, P, D]
  // x·0 keeps the embedding on the tape (a streamed block's backward differentiates w.r.t. its input).
  if (input) hooks.push({ name: 'blocks.0.hook_resid_pre', fn: (x) => tf.add(g === 1 ? input : tf.tile(input, [g, 1, 1]), tf.mul(x, 0)) });
  const names = Array.from({ length: L + 1 }, (_, l) => targetHooks(L, l)).flat();
  const metric = scalarMetric(gp.metric, data, gp.base, gp.ctx);
  const tokens = Array.from({ length: g }, () => data.corrupt).flat();
  let r: CacheAndGrads | undefined;
  try {
    // Per-head GQA: the metric reads the first copy (all copies compute the same logits).
    r = model.runWithCacheAndGrads(tokens, (logits) => metric(firstCopy(logits, g) as tf.Tensor3D), { names, hooks, rules: gp.rules, splitQkvInput: true, lastPositionOnly: true });
    return scoresFromGrads(gp, r.grads, sums);
  } finally {
    input?.dispose();
    if (sums) tf.dispose(sums.flat());
    if (r) {
      tf.dispose([r.logits, r.value]);
      disposeCache(r.cache, r.grads);
    }
  }
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
  checkGraph(model, graph); // refusals before any compute
  if (method === 'exact') {
    if (opts.perPosition) throw new Error(`perPosition scores are only available for the gradient methods (${EDGE_GRAD_METHODS.join(', ')})`);
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
  const gains = model.cfg.postNorms ? tf.tidy(() => ([1, 2] as const).map((k) => Array.from({ length: graph.nLayers }, (_, l) => tf.keep(tf.clone(postNormGain(model, l, k)))))) : undefined;
  const gp: GradPass = { model, graph, data, metric, base, ctx, rules, opts, corrupt, delta, gains };
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
    tf.dispose([clean, corrupt, delta, ...(gains?.flat() ?? [])]);
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
  checkGraph(model, graph);
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
