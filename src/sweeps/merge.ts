/**
 * Check shard results and merge them into run scores. The merge visits shards in plan order
 * (never arrival order), so the numbers do not depend on which worker finished first.
 *
 * Merge rules:
 * - activation / exact-edge shards hold final values of their layers / edges: placed as they are
 *   (their baselines are over all prompts and must agree across shards);
 * - gradient shards hold un-normalised subset results: with n_s prompts, subset baselines c_s
 *   (clean), k_s (corrupt) and base b_s (k_s denoising, c_s noising), the contribution
 *   Σ_s n_s·(v_s − b_s) / N is exact because the first-order change is a mean over prompts;
 *   normalised, score = norm(base) + contribution / (clean − corrupt). AtP*'s GradDrop values are
 *   means of per-prompt magnitudes: Σ_s n_s·v_s / N · |1 / (clean − corrupt)|.
 */
import { methodInfo } from '../methods.ts';
import { checkNormaliser, resolveMetric, type Metric } from '../patching/metrics.ts';
import { componentSpec } from '../patching/components.ts';
import { nest, type MethodScores } from '../patching/score-grid.ts';
import { cellsPerLayer, edgeCount, faithSizes, parseShardKey, planShards, type SweepPlan } from './plan.ts';
import { reach80, trapezoid } from '../circuits/faithfulness.ts';
import type { FaithfulnessCurve } from '../contracts/faithfulness.ts';
import type { ShardResult } from './run-shard.ts';

/** Why a shard result must not be merged, or undefined when it is acceptable. */
export function checkShardResult(plan: SweepPlan, hash: string, key: string, r: unknown): string | undefined {
  if (!r || typeof r !== 'object') return `shard ${key}: the result is not an object`;
  const x = r as Partial<ShardResult>;
  if (x.key !== key) return `shard ${key}: the result is for shard "${String(x.key)}"`;
  if (x.planHash !== hash) return `shard ${key}: the result is for another run (plan ${String(x.planHash).slice(0, 12)}…, expected ${hash.slice(0, 12)}…)`;
  if (x.modelHash !== plan.model.hash) {
    return `shard ${key}: computed on a different model (weight hash ${String(x.modelHash).slice(0, 12)}…, the run's model is ${plan.model.hash.slice(0, 12)}…)`;
  }
  const s = parseShardKey(key);
  const p = x.payload;
  if (!p || p.kind !== s.kind) return `shard ${key}: payload kind "${String(p?.kind)}" does not match the key`;
  const cfg = plan.model.config;
  const pos = plan.pairs[0].cleanIds.length;
  const finite = (v: unknown[], n: number, what: string) => {
    if (!Array.isArray(v) || v.length !== n) return `shard ${key}: ${what} has ${Array.isArray(v) ? v.length : 'no'} values, expected ${n}`;
    const bad = v.findIndex((y) => typeof y !== 'number' || !Number.isFinite(y));
    return bad >= 0 ? `shard ${key}: ${what}[${bad}] is not a finite number (${String(v[bad])})` : undefined;
  };
  const base = (q: { clean?: unknown; corrupt?: unknown }) =>
    typeof q.clean === 'number' && typeof q.corrupt === 'number' && Number.isFinite(q.clean) && Number.isFinite(q.corrupt) ? undefined : `shard ${key}: baselines are not finite numbers`;
  if (s.kind === 'act' && p.kind === 'act') return finite(p.values, (s.to - s.from + 1) * cellsPerLayer(cfg, s.component, pos), 'values') ?? base(p);
  if (s.kind === 'edge' && p.kind === 'edge') return finite(p.values, s.to - s.from + 1, 'values') ?? base(p);
  if (s.kind === 'egrad' && p.kind === 'egrad') {
    if (p.count !== s.to - s.from + 1) return `shard ${key}: counts ${String(p.count)} prompts, expected ${s.to - s.from + 1}`;
    return finite(p.values, edgeCount(cfg, plan.gqa), 'values') ?? base(p);
  }
  if (s.kind === 'faith' && p.kind === 'faith') {
    return [p.value, p.full, p.empty].every((v) => typeof v === 'number' && Number.isFinite(v)) ? undefined : `shard ${key}: value, full and empty must be finite numbers`;
  }
  if (s.kind === 'grad' && p.kind === 'grad') {
    if (p.count !== s.to - s.from + 1) return `shard ${key}: counts ${String(p.count)} prompts, expected ${s.to - s.from + 1}`;
    for (const c of plan.gradient!.components) {
      const err = finite(p.values?.[c] ?? [], cfg.nLayers * cellsPerLayer(cfg, c, pos), `values.${c}`);
      if (err) return err;
    }
    return base(p);
  }
  return undefined;
}

/** Merged scores of a plan. */
export interface MergedRun {
  /** scores[method][component], as in run.json. */
  scores: Record<string, MethodScores>;
  /** Exact edge scores [nEdges] (plans with edges). */
  edges?: Float32Array;
  /** EAP / EAP-RelP / EAP-IG edge scores [nEdges] per method, with their baselines over all prompts. */
  edgeGrad?: Record<string, { scores: Float32Array; clean: number; corrupt: number }>;
  /** Faithfulness curves (plans with `faith`), the same object faithfulnessCurve returns. */
  faith?: FaithfulnessCurve[];
  /** Metric baselines over all prompts (activation's when present, else the gradient merge's). */
  baselines: { clean: number; corrupt: number };
  /** Sum of shard compute seconds per method. */
  seconds: Record<string, number>;
}

/** Baselines (metric on the clean and corrupt runs) over all prompts. */
type Baselines = { clean: number; corrupt: number };

/** What every part of one merge shares. */
interface MergeContext {
  plan: SweepPlan;
  done: Record<string, ShardResult>;
  /** Every shard key of the plan, in plan order. */
  keys: string[];
  metric: Metric;
  /** Token length of the prompts. */
  pos: number;
  /** Add a shard's compute seconds to a method's total. */
  addSeconds: (method: string, seconds: number) => void;
}

/** Activation patching: each shard's layers placed as they are; every shard's baselines must agree. */
function mergeActivation(m: MergeContext): { scores: MethodScores; baselines?: Baselines } {
  const cfg = m.plan.model.config;
  const L = cfg.nLayers;
  let baselines: Baselines | undefined;
  const act: MethodScores = {};
  for (const c of m.plan.activation!.components) {
    const spec = componentSpec(c);
    const n = cellsPerLayer(cfg, c, m.pos);
    const flat = new Array<number>(L * n).fill(NaN);
    for (const k of m.keys) {
      const s = parseShardKey(k);
      if (s.kind !== 'act' || s.component !== c) continue;
      const r = m.done[k];
      const p = r.payload as { values: number[]; clean: number; corrupt: number };
      if (!baselines) baselines = { clean: p.clean, corrupt: p.corrupt };
      else if (Math.abs(p.clean - baselines.clean) > 1e-6 || Math.abs(p.corrupt - baselines.corrupt) > 1e-6) {
        throw new Error(`shard ${k}: baselines (${p.clean}, ${p.corrupt}) differ from the other shards' (${baselines.clean}, ${baselines.corrupt})`);
      }
      p.values.forEach((v, i) => (flat[s.from * n + i] = v));
      m.addSeconds('activation', r.seconds);
    }
    const shape = [L, ...spec.cellShape(cfg, m.pos)];
    act[c] = { axes: spec.axes, shape, values: nest(flat, shape) };
  }
  return { scores: act, baselines };
}

/** Gradient methods over prompt subsets: Σ n_s·(v_s − b_s) / N, normalised with all prompts' baselines (module doc). */
function mergeGradients(m: MergeContext): { scores: Record<string, MethodScores>; baselines?: Baselines } {
  const g = m.plan.gradient!;
  const cfg = m.plan.model.config;
  const L = cfg.nLayers;
  const N = m.plan.pairs.length;
  const scores: Record<string, MethodScores> = {};
  let baselines: Baselines | undefined;
  for (const method of g.methods) {
    const parts = m.keys.filter((k) => k.startsWith(`grad/${method}/`)).map((k) => m.done[k]);
    let clean = 0;
    let corrupt = 0;
    for (const r of parts) {
      const p = r.payload as { count: number; clean: number; corrupt: number };
      clean += p.count * p.clean;
      corrupt += p.count * p.corrupt;
      m.addSeconds(method, r.seconds);
    }
    const b = { clean: clean / N, corrupt: corrupt / N };
    checkNormaliser(m.metric, b);
    const scale = m.metric.normalise ? 1 / (b.clean - b.corrupt) : 1;
    const denoising = m.plan.direction === 'denoising';
    const baseAll = denoising ? b.corrupt : b.clean;
    const baseValue = m.metric.normalise ? (denoising ? 0 : 1) : baseAll;
    const gradDrop = methodInfo(method)?.magnitude === true;
    const out: MethodScores = {};
    for (const c of g.components) {
      const spec = componentSpec(c);
      const n = L * cellsPerLayer(cfg, c, m.pos);
      const acc = new Float64Array(n);
      for (const r of parts) {
        const p = r.payload as { count: number; clean: number; corrupt: number; values: Record<string, number[]> };
        const b0 = gradDrop ? 0 : denoising ? p.corrupt : p.clean;
        const v = p.values[c];
        for (let i = 0; i < n; i++) acc[i] += p.count * (v[i] - b0);
      }
      const flat = Array.from(acc, (x) => (gradDrop ? (x / N) * Math.abs(scale) : baseValue + (x / N) * scale));
      const shape = [L, ...spec.cellShape(cfg, m.pos)];
      out[c] = { axes: spec.axes, shape, values: nest(flat, shape) };
    }
    scores[method] = out;
    baselines ??= b;
  }
  return { scores, baselines };
}

/** Exact edge patching: each shard's edges placed as they are. */
function mergeExactEdges(m: MergeContext): { edges: Float32Array; baselines?: Baselines } {
  const edges = new Float32Array(edgeCount(m.plan.model.config, m.plan.gqa)).fill(NaN);
  let baselines: Baselines | undefined;
  for (const k of m.keys) {
    const s = parseShardKey(k);
    if (s.kind !== 'edge') continue;
    const p = m.done[k].payload as { values: number[]; clean: number; corrupt: number };
    p.values.forEach((v, i) => (edges[s.from + i] = v));
    baselines ??= { clean: p.clean, corrupt: p.corrupt };
    m.addSeconds('exact', m.done[k].seconds);
  }
  return { edges, baselines };
}

/** EAP / EAP-RelP / EAP-IG over prompt subsets, by the gradient sweeps' rule. */
function mergeEdgeGradients(m: MergeContext): { edgeGrad: NonNullable<MergedRun['edgeGrad']>; baselines?: Baselines } {
  const edgeGrad: NonNullable<MergedRun['edgeGrad']> = {};
  const E = edgeCount(m.plan.model.config, m.plan.gqa);
  const N = m.plan.pairs.length;
  let baselines: Baselines | undefined;
  for (const method of m.plan.edgeGrad!.methods) {
    // Same rule as the gradient sweeps: Σ n_s·v_s / N, normalised with all prompts' baselines.
    const parts = m.keys.filter((k) => k.startsWith(`edge/${method}/`)).map((k) => m.done[k]);
    let clean = 0;
    let corrupt = 0;
    const acc = new Float64Array(E);
    for (const r of parts) {
      const p = r.payload as { count: number; clean: number; corrupt: number; values: number[] };
      clean += p.count * p.clean;
      corrupt += p.count * p.corrupt;
      for (let e = 0; e < E; e++) acc[e] += p.count * p.values[e];
      m.addSeconds(method, r.seconds);
    }
    const b = { clean: clean / N, corrupt: corrupt / N };
    checkNormaliser(m.metric, b);
    const scale = m.metric.normalise ? 1 / (b.clean - b.corrupt) : 1;
    edgeGrad[method] = { scores: Float32Array.from(acc, (x) => (x / N) * scale), ...b };
    baselines ??= b;
  }
  return { edgeGrad, baselines };
}

/** Merge every shard of `plan` (all must be present in `done`). */
export function mergeShards(plan: SweepPlan, done: Record<string, ShardResult>): MergedRun {
  const cfg = plan.model.config;
  const pos = plan.pairs[0].cleanIds.length;
  const metric = resolveMetric(plan.metric);
  const keys = planShards(plan);
  const missing = keys.filter((k) => !done[k]);
  if (missing.length) throw new Error(`cannot merge: ${missing.length} shard(s) missing (first: ${missing[0]})`);
  const scores: Record<string, MethodScores> = {};
  const seconds: Record<string, number> = {};
  const addSeconds = (m: string, s: number) => (seconds[m] = (seconds[m] ?? 0) + s);
  const ctx: MergeContext = { plan, done, keys, metric, pos, addSeconds };
  // Baselines: activation's when present, else the first gradient method's, exact edges', EAP's.
  const act = plan.activation ? mergeActivation(ctx) : undefined;
  if (act) scores.activation = act.scores;
  const grad = plan.gradient ? mergeGradients(ctx) : undefined;
  Object.assign(scores, grad?.scores);
  const exact = plan.edges ? mergeExactEdges(ctx) : undefined;
  const eg = plan.edgeGrad ? mergeEdgeGradients(ctx) : undefined;
  const edges = exact?.edges;
  const edgeGrad = eg?.edgeGrad;
  const baselines = act?.baselines ?? grad?.baselines ?? exact?.baselines ?? eg?.baselines;
  let faith: FaithfulnessCurve[] | undefined;
  if (plan.faith) {
    const f = plan.faith;
    const E = edgeCount(cfg, plan.gqa);
    const sizes = faithSizes(plan);
    faith = f.curves.map(({ method }) => {
      const pts = sizes.map((n) => {
        const r = done[`faith/${method}/K${n}`];
        addSeconds(`faith/${method}`, r.seconds);
        return { n, p: r.payload as { value: number; full: number; empty: number } };
      });
      // full and empty are re-measured by every shard; normalise with the first in plan order.
      const full = pts[0]?.p.full ?? NaN;
      const empty = pts[0]?.p.empty ?? NaN;
      for (const { n, p } of pts) {
        if (Math.abs(p.full - full) > 1e-4 * Math.max(1, Math.abs(full)) || Math.abs(p.empty - empty) > 1e-4 * Math.max(1, Math.abs(empty))) {
          throw new Error(`shard faith/${method}/K${n}: full/empty (${p.full}, ${p.empty}) differ from the other shards' (${full}, ${empty})`);
        }
      }
      const curve = [
        { edges: 0, fraction_edges: 0, recovered: 0 },
        ...pts.map(({ n, p }) => ({ edges: n, fraction_edges: n / E, recovered: (p.value - empty) / (full - empty) })),
        { edges: E, fraction_edges: 1, recovered: 1 },
      ];
      return {
        method,
        ablation: f.ablation,
        metric: metric.name,
        selection: f.selection,
        curve,
        full,
        empty,
        auc: trapezoid(curve.map((q) => q.fraction_edges), curve.map((q) => q.recovered)),
        edges_for_80: reach80(curve)?.first ?? null,
      };
    });
  }
  return { scores, edges, edgeGrad, faith, baselines: baselines ?? { clean: NaN, corrupt: NaN }, seconds };
}
