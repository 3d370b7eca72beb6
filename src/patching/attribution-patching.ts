/**
 * Attribution patching (AtP), AtP* and relevance patching (RelP): one generic gradient sweep.
 *
 *   score(c) = Σ_batch Σ_d (a_src(c) − a_base(c)) · ∂m/∂a(c) |_base
 *
 * AtP uses the ordinary gradient, RelP the LRP-modified one (a rule set), and only that changes
 * between them. The source (clean) cache is computed once and shared by every method.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import { disposeCache } from '../hooks/activation-cache.ts';
import { stopGradient } from '../rules/ops.ts';
import { resolveRules, type RuleSet, type Rules } from '../rules/rules.ts';
import { componentSpec, parseComponents, type ComponentName, type ComponentSpec } from './components.ts';
import { restrictVocabulary, type PatchingData } from './data.ts';
import { aggregate, checkNormaliser, resolveMetric, type Metric, type MetricBaselines } from './metrics.ts';
import { cleanBaseline, disposeContext, lastLogits, measureBaselines, metricContext, type Baselines } from './baselines.ts';
import type { Direction, activationPatch } from './activation-patching.ts';
import { nest, type MethodScores } from './score-grid.ts';
import { silentProgress, type Progress } from './progress.ts';

/** One gradient-based method: a name and how its backward pass differs from the plain gradient. */
export interface AttributionMethod {
  /** Name in results (`atp`, `atp*`, `relp`, or your own). */
  name: string;
  /** LRP rules for the backward pass (RelP); none means the plain gradient. */
  rules?: RuleSet;
  /** AtP* QK fix: for q/k patches, recompute the attention softmax exactly, then linearise from ∂m/∂A. */
  qkFix?: boolean;
  /** AtP* GradDrop: L extra backward passes, each dropping one layer's residual gradient; mean |estimate|. */
  gradDrop?: boolean;
}

/** AtP with the plain gradient. */
export const ATP: AttributionMethod = { name: 'atp' };
/** AtP* (Kramár et al. 2024): QK fix and GradDrop. */
export const ATP_STAR: AttributionMethod = { name: 'atp*', qkFix: true, gradDrop: true };
/** RelP with a rule preset or rule set (default preset `relp`: LN + Identity + Half). */
export function relpMethod(rules?: Rules): AttributionMethod {
  return { name: 'relp', rules: resolveRules(rules) };
}

/** Options of {@link attributionPatch}. */
export interface AttributionOptions {
  components: ComponentName[] | string;
  /** Methods to run; default [ATP]. */
  methods?: AttributionMethod[];
  metric?: Metric | string;
  direction?: Direction;
  progress?: Progress;
  /** Extra hooks on every forward (e.g. ablations). */
  hooks?: Hook[];
}

/** Scores per method, with the baselines and each method's wall time. */
export interface AttributionResult {
  scores: Record<string, MethodScores>;
  baselines: { clean: number; corrupt: number };
  /** Seconds per method (the shared clean forward is counted in each). */
  seconds: Record<string, number>;
}

/**
 * Gradient-based patching estimates for several methods over the same components.
 * Each value estimates the metric after patching that cell (base value + first-order change),
 * directly comparable with {@link activationPatch}; GradDrop methods give magnitudes.
 */
export function attributionPatch(model: HookedTransformer, input: PatchingData, opts: AttributionOptions): AttributionResult {
  const cfg = model.cfg;
  const L = cfg.nLayers;
  const metric = resolveMetric(opts.metric);
  const data = restrictVocabulary(input, metric); // only the logits the metric reads
  const direction = opts.direction ?? 'denoising';
  const methods = opts.methods ?? [ATP];
  const specs = parseComponents(opts.components).map(componentSpec);
  const progress = opts.progress ?? silentProgress;
  const baseTokens = direction === 'denoising' ? data.corrupt : data.clean;
  const srcTokens = direction === 'denoising' ? data.clean : data.corrupt;
  const needsQK = methods.some((m) => m.qkFix) && specs.some((s) => s.name === 'q' || s.name === 'k');
  const names = new Set<string>();
  for (const s of specs) for (let l = 0; l < L; l++) names.add(s.hook(l));
  if (needsQK) for (let l = 0; l < L; l++) for (const h of ['hook_q', 'hook_k', 'hook_pattern']) names.add(`blocks.${l}.attn.${h}`);
  const hookNames = [...names];

  const t0 = performance.now();
  const src = model.runWithCache(srcTokens, { names: hookNames, hooks: opts.hooks, lastPositionOnly: true, logitIds: data.logitIds });
  // Baselines without extra forwards when denoising: the clean value comes from the source run and
  // the corrupt value from the first backward pass (whose metric is the raw batch mean; gradients
  // are scaled by the normaliser afterwards).
  let base: Baselines | (MetricBaselines & { cleanLogProbs: tf.Tensor2D });
  try {
    if (direction === 'denoising') {
      const c = cleanBaseline(model, data, metric, opts.hooks, src.logits);
      base = { clean: c.clean, corrupt: NaN, cleanLogProbs: c.cleanLogProbs };
    } else {
      // Noising: the source run is the corrupt run.
      base = measureBaselines(model, data, metric, opts.hooks, { corrupt: src.logits });
    }
  } catch (err) {
    disposeCache(src.cache);
    throw err;
  } finally {
    src.logits.dispose();
  }
  const shared = (performance.now() - t0) / 1000;
  const sweep: GradientSweep = { model, data, metric, base, specs, srcCache: src.cache, hookNames, hooks: opts.hooks, baseTokens };
  const result: AttributionResult = { scores: {}, baselines: { clean: base.clean, corrupt: base.corrupt }, seconds: {} };
  try {
    progress.start(methods.reduce((n, m) => n + (m.gradDrop ? L : 1), 0), 'attribution patching');
    for (const method of methods) {
      const t1 = performance.now();
      const passes: (number | undefined)[] = method.gradDrop ? Array.from({ length: L }, (_, l) => l) : [undefined];
      const acc = new Map<string, tf.Tensor>(); // `${component}:${layer}` → per-layer grid
      try {
        for (const drop of passes) {
          gradientPass(sweep, method, drop, acc);
          progress.increment();
        }
        result.baselines.corrupt = base.corrupt; // measured by the first pass when denoising
        result.scores[method.name] = methodScores(sweep, method, acc, direction);
      } finally {
        for (const t of acc.values()) t.dispose();
      }
      result.seconds[method.name] = shared + (performance.now() - t1) / 1000;
    }
  } finally {
    progress.stop();
    disposeCache(src.cache);
    base.cleanLogProbs.dispose();
  }
  return result;
}

/** What every backward pass of one {@link attributionPatch} call shares. */
interface GradientSweep {
  model: HookedTransformer;
  /** The data with the metric's vocabulary restriction applied. */
  data: PatchingData;
  metric: Metric;
  /** Baselines; `corrupt` is NaN until the first pass measures it (denoising). */
  base: Baselines | (MetricBaselines & { cleanLogProbs: tf.Tensor2D });
  specs: ComponentSpec[];
  /** The source run's cached hooks. */
  srcCache: Cache;
  hookNames: string[];
  hooks?: Hook[];
  /** The run whose gradient is taken (corrupt when denoising). */
  baseTokens: number[][];
}

/**
 * One backward pass of `method` on the base run (with GradDrop, the one that drops layer `drop`'s
 * residual gradient), adding each component's per-layer estimate into `acc`.
 */
function gradientPass(sweep: GradientSweep, method: AttributionMethod, drop: number | undefined, acc: Map<string, tf.Tensor>): void {
  const { model, data, metric, base, specs } = sweep;
  const B = data.clean.length;
  // Un-normalised metric: the raw batch mean gives the corrupt baseline; gradients are scaled by the normaliser below.
  const raw: Metric = { ...metric, normalise: false };
  const ctx = metricContext(data, base.cleanLogProbs);
  const metricFn = (logits: tf.Tensor3D) => tf.reshape(aggregate(raw.perPrompt(lastLogits(logits), ctx), B, raw, base), []) as tf.Scalar;
  // GradDrop: stop the gradient through layer `drop`'s contributions to the residual stream
  // (after the probes, so those components' own estimates are zero in that pass).
  const postHooks: Hook[] =
    drop === undefined ? [] : [`blocks.${drop}.hook_attn_out`, `blocks.${drop}.hook_mlp_out`].map((name) => ({ name, fn: (x: tf.Tensor) => stopGradient(x) }));
  const r = model.runWithCacheAndGrads(sweep.baseTokens, metricFn, { names: sweep.hookNames, rules: method.rules, postHooks, hooks: sweep.hooks, lastPositionOnly: true, logitIds: data.logitIds });
  try {
    if (Number.isNaN(base.corrupt)) {
      base.corrupt = r.value.dataSync()[0];
      checkNormaliser(metric, base);
    }
    const scale = metric.normalise ? 1 / (base.clean - base.corrupt) : 1;
    for (const spec of specs) {
      for (let l = 0; l < model.cfg.nLayers; l++) {
        const grid = tf.tidy(() => {
          const { e: eRaw, reducer } = elementwise(model, spec, l, sweep.srcCache, r.cache, r.grads, method);
          const e = tf.mul(eRaw, scale);
          const g = method.gradDrop ? tf.sum(tf.abs(reducer.reducePerPrompt(e)), 0) : reducer.reduce(e);
          const prev = acc.get(`${spec.name}:${l}`);
          return prev ? tf.add(prev, g) : g;
        });
        acc.get(`${spec.name}:${l}`)?.dispose();
        acc.set(`${spec.name}:${l}`, grid);
      }
    }
  } finally {
    r.logits.dispose();
    r.value.dispose();
    disposeCache(r.cache, r.grads);
    disposeContext(ctx);
  }
}

/**
 * The scores of `method` from its accumulated per-layer estimates: the base run's value plus the
 * first-order change, or (GradDrop) the mean magnitude over the L − 1 passes that keep each layer.
 */
function methodScores(sweep: GradientSweep, method: AttributionMethod, acc: Map<string, tf.Tensor>, direction: Direction): MethodScores {
  const { metric, base } = sweep;
  const cfg = sweep.model.cfg;
  const L = cfg.nLayers;
  const norm = (v: number) => (metric.normalise ? (v - base.corrupt) / (base.clean - base.corrupt) : v);
  const baseValue = norm(direction === 'denoising' ? base.corrupt : base.clean);
  const scores: MethodScores = {};
  for (const spec of sweep.specs) {
    const flat: number[] = [];
    for (let l = 0; l < L; l++) {
      const v = Array.from(acc.get(`${spec.name}:${l}`)!.dataSync());
      flat.push(...v.map((x) => (method.gradDrop ? x / Math.max(1, L - 1) : baseValue + x)));
    }
    const shape = [L, ...spec.cellShape(cfg, sweep.data.pos)];
    scores[spec.name] = { axes: spec.axes, shape, values: nest(flat, shape) };
  }
  return scores;
}

type Cache = Record<string, tf.Tensor>;

/**
 * The per-element first-order change for one component and layer, and the spec whose
 * reductions apply to it (QK-fixed q/k estimates live on the pattern's axes).
 */
function elementwise(model: HookedTransformer, spec: ComponentSpec, l: number, src: Cache, base: Cache, grads: Cache, m: AttributionMethod): { e: tf.Tensor; reducer: ComponentSpec } {
  if (m.qkFix && (spec.name === 'q' || spec.name === 'k')) {
    const q = `blocks.${l}.attn.hook_q`;
    const k = `blocks.${l}.attn.hook_k`;
    const p = `blocks.${l}.attn.hook_pattern`;
    // The model recomputes the pattern (rotary, scaling, soft-cap, masks, GQA) from q and k.
    const patched = spec.name === 'q' ? model.attentionPattern(l, src[q], base[k]) : model.attentionPattern(l, base[q], src[k]);
    // Exact softmax, linear after it: (A_patched − A) · ∂m/∂A, [b, h, q, k].
    const e = tf.mul(tf.sub(patched, base[p]), grads[p]);
    const g = model.cfg.nHeads / model.cfg.nKvHeads;
    if (spec.name === 'q' || g === 1) return { e, reducer: componentSpec('pattern') };
    // A kv head's patch moves the patterns of its g query heads: sum each group, [b, kv, q, k].
    const [b, h, qp, kp] = e.shape as number[];
    return { e: tf.sum(tf.reshape(e, [b, h / g, g, qp, kp]), 2), reducer: componentSpec('pattern') };
  }
  const h = spec.hook(l);
  return { e: tf.mul(tf.sub(src[h], base[h]), grads[h]), reducer: spec };
}
