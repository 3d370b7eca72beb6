/**
 * Faithfulness of circuits: run the clean prompts with every edge outside the circuit ablated,
 * i.e. each node input = biases + Σ_u (u → t in C ? live output of u : ablated output of u), and
 * score (m(C) − m(∅)) / (m(full) − m(∅)). m(full) and m(∅) are measured by running the model
 * (full = no edge ablated = the clean run; ∅ = every edge ablated = the corrupt run under
 * corrupt ablation). "Live" means the node's output in this run, computed from its own
 * (partly ablated) inputs, as in EAP-IG's evaluation.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import type { PatchingData } from '../patching/data.ts';
import { resolveMetric, type Metric } from '../patching/metrics.ts';
import { disposeContext, lastLogits, measureBaselines, metricContext } from '../patching/baselines.ts';
import { headNode, type CircuitGraph } from './graph.ts';
import { checkGraph, graphForward } from './graph-forward.ts';
import { nodeOutputs } from './attribute.ts';
import { pruneDangling, selectEdges, type Selection } from './prune.ts';
import type { FaithfulnessCurve, MibCurveScores } from '../contracts/faithfulness.ts';

/** What an ablated edge carries: the corrupt run's output, its batch mean per position, or zero. */
export type Ablation = 'corrupt' | 'mean' | 'zero';

/** Validate an ablation name with a clear error. */
export function parseAblation(a: string): Ablation {
  if (a !== 'corrupt' && a !== 'mean' && a !== 'zero') throw new Error(`unknown ablation "${a}" (use corrupt, mean or zero)`);
  return a;
}

/** Common options of the faithfulness functions. */
export interface FaithfulnessOptions {
  ablation?: Ablation;
  /** Metric; evaluated un-normalised (default: logit difference, from normalised-logit-diff). */
  metric?: Metric | string;
  /** Circuits evaluated per forward (default: as many as fit in 256 sequences). */
  batch?: number;
  /** Extra model hooks on every forward. */
  hooks?: Hook[];
}

/** Metric of several circuits, with the measured full and empty values. */
export interface CircuitEvaluation {
  /** Batch-mean metric (un-normalised) per circuit. */
  values: number[];
  /** (value − empty) / (full − empty) per circuit. */
  recovered: number[];
  /** Metric with no edge ablated (measured). */
  full: number;
  /** Metric with every edge ablated (measured). */
  empty: number;
}

/**
 * Ablated node outputs [nNodes − 1, B, pos, d_model] (caller disposes): the corrupt run's, their
 * mean over the batch (per position, from the corrupt prompts), or zeros.
 */
export function ablatedOutputs(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, ablation: Ablation, hooks?: Hook[]): tf.Tensor4D {
  const corrupt = nodeOutputs(model, graph, data.corrupt, hooks);
  if (ablation === 'corrupt') return corrupt;
  const out = tf.tidy(() => (ablation === 'zero' ? tf.zerosLike(corrupt) : tf.add(tf.mean(corrupt, 1, true), tf.zerosLike(corrupt))) as tf.Tensor4D);
  corrupt.dispose();
  return out;
}

/**
 * Evaluate circuits (edge masks [nEdges]) on the clean prompts with the other edges ablated.
 * Also measures the full (nothing ablated) and empty (everything ablated) circuits.
 */
export function evaluateCircuits(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, circuits: Uint8Array[], opts: FaithfulnessOptions = {}): CircuitEvaluation {
  const ablation = parseAblation(opts.ablation ?? 'corrupt');
  checkGraph(model, graph); // refusals before any compute
  const base = resolveMetric(opts.metric);
  const metric: Metric = { ...base, normalise: false };
  const E = graph.nEdges;
  for (const [i, c] of circuits.entries()) if (c.length !== E) throw new Error(`circuit ${i} has ${c.length} mask values but the graph has ${E} edges`);
  const B = data.clean.length;
  const per = Math.max(1, opts.batch ?? Math.floor(256 / B));
  const all = [new Uint8Array(E).fill(1), new Uint8Array(E), ...circuits];
  const baselines = measureBaselines(model, data, metric, opts.hooks);
  const src = ablatedOutputs(model, graph, data, ablation, opts.hooks);
  const values: number[] = [];
  try {
    for (let c0 = 0; c0 < all.length; c0 += per) {
      const chunk = all.slice(c0, c0 + per);
      const G = chunk.length;
      const coef = new Float32Array(G * E);
      chunk.forEach((m, g) => {
        for (let e = 0; e < E; e++) coef[g * E + e] = m[e] ? 0 : 1;
      });
      const ctx = metricContext(data, baselines.cleanLogProbs, G);
      const v = tf.tidy(() => {
        const { logits } = graphForward(model, graph, data.clean, { groups: G, patch: { src, coef }, hooks: opts.hooks });
        return tf.mean(tf.reshape(metric.perPrompt(lastLogits(logits), ctx), [G, B]), 1);
      });
      disposeContext(ctx);
      values.push(...v.dataSync());
      v.dispose();
    }
  } finally {
    src.dispose();
    baselines.cleanLogProbs.dispose();
  }
  const [full, empty, ...rest] = values;
  const gap = full - empty;
  return { values: rest, recovered: rest.map((v) => (v - empty) / gap), full, empty };
}

/** One point of a faithfulness curve, and a curve's MIB scores (the contract's types). */
export type { CurvePoint, MibCurveScores } from '../contracts/faithfulness.ts';

/** A measured faithfulness curve: the `faithfulness.json` entry of one method, every field set. */
export interface MeasuredCurve extends FaithfulnessCurve {
  method: string;
  ablation: Ablation;
  metric: string;
  selection: Selection;
  curve: { edges: number; fraction_edges: number; recovered: number }[];
  /** Measured metric of the full model and of the empty circuit (un-normalised). */
  full: number;
  empty: number;
  /** Area under recovered(fraction_edges), trapezoid rule over [0, 1]. */
  auc: number;
  /** The first sampled circuit size reaching 80% recovered ({@link reach80}), or null. */
  edges_for_80: number | null;
  /** MIB's CPR / CMD (when asked for with `mib`). */
  mib?: MibCurveScores;
}

/**
 * Where a measured curve first reaches 80% recovered: `first`, the first sampled size at or above
 * 80%, and `previous`, the sampled size before it (below 80%; 0 is the empty circuit). Sizes
 * between the two were not measured, so the curve crosses 80% somewhere in (previous, first].
 * Null when no sample reaches 80%.
 */
export function reach80(curve: readonly { edges: number; recovered: number }[]): { first: number; previous: number } | null {
  const i = curve.findIndex((p) => p.recovered >= 0.8);
  if (i < 0) return null;
  return { first: curve[i].edges, previous: i > 0 ? curve[i - 1].edges : 0 };
}

/** `count` log-spaced circuit sizes in [1, nEdges], rounded and deduplicated. */
export function logSpacedSizes(nEdges: number, count = 10): number[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`curve size count must be a positive integer, got ${count}`);
  const out = new Set<number>();
  for (let i = 0; i < count; i++) out.add(Math.round(Math.exp((Math.log(nEdges) * i) / Math.max(1, count - 1))));
  return [...out].sort((a, b) => a - b);
}

/** Trapezoid area under (x, y) points sorted by x. */
export function trapezoid(xs: number[], ys: number[]): number {
  let a = 0;
  for (let i = 1; i < xs.length; i++) a += ((xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1])) / 2;
  return a;
}

/**
 * MIB's edge fractions (Mueller et al. 2025, circuit-localization track): faithfulness is measured
 * with the top 0.1%, 0.2%, …, 100% of the edges.
 */
export const MIB_FRACTIONS: readonly number[] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

/**
 * Circuit size at each of {@link MIB_FRACTIONS}: max(1, floor(p · nEdges)). The floor is MIB's own
 * `int(pct * n_edges)` (same IEEE arithmetic, so the same counts); the max keeps small graphs from
 * getting empty circuits (GPT-2 small: 32, 64, 162, 324, 649, 1624, 3249, 6498, 16245, 32491).
 */
export function mibSizes(nEdges: number): number[] {
  return MIB_FRACTIONS.map((p) => Math.max(1, Math.floor(p * nEdges)));
}

/**
 * MIB's two scores of faithfulness values `f` measured at {@link MIB_FRACTIONS} (x = the nominal
 * fraction p, not n/nEdges, as MIB integrates):
 * - **CPR** = ∫ f dp / (1 − 0.001), trapezoid rule over the ten points: higher is better;
 * - **CMD** = ∫ |1 − f| dp / (1 − 0.001): lower is better.
 * MIB's evaluation code sums the same trapezoids without the division (its perfect CPR is 0.999);
 * dividing by the width 0.999 of [0.1%, 100%] makes f ≡ 1 give CPR = 1 and CMD = 0 exactly.
 */
export function mibAreas(f: readonly number[]): { cpr: number; cmd: number } {
  if (f.length !== MIB_FRACTIONS.length) throw new Error(`MIB scores need ${MIB_FRACTIONS.length} faithfulness values (one per fraction), got ${f.length}`);
  const xs = [...MIB_FRACTIONS];
  const width = xs[xs.length - 1] - xs[0];
  return { cpr: trapezoid(xs, [...f]) / width, cmd: trapezoid(xs, f.map((v) => Math.abs(1 - v))) / width };
}

/** {@link MibCurveScores} read off a measured curve that includes every size of {@link mibSizes}. */
export function mibScoresOfCurve(curve: readonly { edges: number; recovered: number }[], nEdges: number): MibCurveScores {
  const at = new Map(curve.map((p) => [p.edges, p.recovered]));
  const edges = mibSizes(nEdges);
  const recovered = edges.map((n) => {
    const f = at.get(n);
    if (f === undefined) throw new Error(`the curve has no point at ${n} edges (a MIB fraction of ${nEdges})`);
    return f;
  });
  return { fractions: [...MIB_FRACTIONS], edges, recovered, ...mibAreas(recovered) };
}

/** Options of {@link faithfulnessCurve}. */
export interface CurveOptions extends FaithfulnessOptions {
  /** Circuit sizes (default: 10 log-spaced sizes in [1, nEdges]). */
  sizes?: number[];
  /** How circuits of each size are chosen (default top-n). */
  selection?: Exclude<Selection, 'threshold'>;
  /** Method name written in the curve. */
  method?: string;
  /** Also evaluate MIB's sizes ({@link mibSizes}) and add CPR / CMD as `mib` (default false). */
  mib?: boolean;
}

/**
 * Faithfulness against circuit size for one method's scores: for each size n, the top-n (or
 * greedy) circuit with dangling edges pruned. The curve includes the measured endpoints
 * (0 edges: recovered 0; all edges: 1 by definition of the normalisation).
 */
export function faithfulnessCurve(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, scores: ArrayLike<number>, opts: CurveOptions = {}): MeasuredCurve {
  const E = graph.nEdges;
  const selection = opts.selection ?? 'topn';
  const asked = opts.sizes ?? logSpacedSizes(E);
  for (const n of asked) if (!Number.isInteger(n)) throw new Error(`curve sizes must be integers, got ${n}`);
  const sizes = [...new Set([...asked, ...(opts.mib ? mibSizes(E) : [])])].filter((n) => n > 0 && n < E).sort((a, b) => a - b);
  const circuits = sizes.map((n) => pruneDangling(graph, selectEdges(graph, scores, selection, n)));
  const ev = evaluateCircuits(model, graph, data, circuits, opts);
  const curve: MeasuredCurve['curve'] = [
    { edges: 0, fraction_edges: 0, recovered: 0 },
    ...sizes.map((n, i) => ({ edges: n, fraction_edges: n / E, recovered: ev.recovered[i] })),
    { edges: E, fraction_edges: 1, recovered: 1 },
  ];
  return {
    method: opts.method ?? 'scores',
    ablation: opts.ablation ?? 'corrupt',
    metric: resolveMetric(opts.metric).name,
    selection,
    curve,
    full: ev.full,
    empty: ev.empty,
    auc: trapezoid(curve.map((p) => p.fraction_edges), curve.map((p) => p.recovered)),
    edges_for_80: reach80(curve)?.first ?? null,
    ...(opts.mib ? { mib: mibScoresOfCurve(curve, E) } : {}),
  };
}

/** Node-level check: ablate every outgoing edge of the heads outside `heads` ([layer, head] pairs). */
export function nodeCircuitFaithfulness(model: HookedTransformer, graph: CircuitGraph, data: PatchingData, heads: [number, number][], opts: FaithfulnessOptions = {}): { recovered: number; value: number; full: number; empty: number } {
  const keep = new Set(heads.map(([l, h]) => {
    if (!Number.isInteger(l) || l < 0 || l >= graph.nLayers || !Number.isInteger(h) || h < 0 || h >= graph.nHeads) {
      throw new Error(`head ${l}.${h} is not in the model (${graph.nLayers} layers × ${graph.nHeads} heads)`);
    }
    return headNode(graph.nHeads, l, h);
  }));
  const mask = new Uint8Array(graph.nEdges).fill(1);
  for (const t of graph.targets) {
    for (let u = 0; u < t.nUp; u++) if (graph.nodes[u].kind === 'attention' && !keep.has(u)) mask[t.edgeOffset + u] = 0;
  }
  const ev = evaluateCircuits(model, graph, data, [mask], opts);
  return { recovered: ev.recovered[0], value: ev.values[0], full: ev.full, empty: ev.empty };
}
