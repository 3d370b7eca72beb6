/**
 * The whole circuit pipeline on one dataset, EAP-IG's four calls in a row: build the graph,
 * attribute (one or several methods), select + prune, evaluate (faithfulness curve per method, with
 * MIB's CPR and CMD), plus the head-level ROC AUC against a reference head set when one is given.
 */
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { PatchingData } from '../patching/data.ts';
import type { Rules } from '../rules/rules.ts';
import { silentProgress, type Progress } from '../patching/progress.ts';
import { attributeEdges, type EdgeMethod, type EdgeScores } from './attribute.ts';
import { evaluateCircuits, faithfulnessCurve, logSpacedSizes, nodeCircuitFaithfulness, type Ablation, type MeasuredCurve } from './faithfulness.ts';
import { graphFromModel, type CircuitGraph, type GqaConvention } from './graph.ts';
import { countEdges, pruneDangling, selectEdges } from './prune.ts';
import { headRocAuc, type HeadRef } from './reference.ts';

/** Options of {@link runCircuit}. */
export interface CircuitRunOptions {
  /** Methods to score with; the first selects the circuit. */
  methods: EdgeMethod[];
  /** LRP rules of `eap-relp`: a preset name or a rule set (default the `relp` preset). */
  rules?: Rules;
  /** Interpolation steps of `eap-ig` (default 5). */
  igSteps?: number;
  /** Circuit size (top-n / greedy); default 5% of the edges when no threshold is given. */
  edges?: number;
  /** |score| threshold (instead of `edges`). */
  threshold?: number;
  /** Selection for a fixed size (default top-n). */
  selection?: 'topn' | 'greedy';
  ablation?: Ablation;
  /** Number of log-spaced curve sizes (default 10). */
  curvePoints?: number;
  /** Reference heads for the head-level ROC AUC and the node-circuit check. */
  referenceHeads?: HeadRef[];
  progress?: Progress;
  /** GQA convention of the edge graph (default `grouped`; see GqaConvention in graph.ts). */
  gqa?: GqaConvention;
  /** Scores already computed (e.g. exact edges from a sharded run): used instead of scoring again. */
  precomputed?: Partial<Record<EdgeMethod, EdgeScores>>;
}

/** Result of {@link runCircuit}. */
export interface CircuitRun {
  graph: CircuitGraph;
  scores: Partial<Record<EdgeMethod, EdgeScores>>;
  /** The selected circuit (primary method), dangling edges pruned. */
  mask: Uint8Array;
  /** Edges selected before pruning. */
  selected: number;
  curves: MeasuredCurve[];
  /** Faithfulness of the selected circuit. */
  circuitRecovered: number;
  /** Head-level ROC AUC per method (when reference heads are given). */
  headAuc?: Partial<Record<EdgeMethod, number>>;
  /** Faithfulness of the reference head set as a node circuit. */
  referenceRecovered?: number;
  /** Wall seconds per method: scoring, and scoring + curve. */
  seconds: Record<string, { scoring: number; curve: number }>;
}

/** Run the pipeline; see {@link CircuitRunOptions}. */
export function runCircuit(model: HookedTransformer, data: PatchingData, opts: CircuitRunOptions): CircuitRun {
  if (opts.methods.length === 0) throw new Error('runCircuit: give at least one method');
  if (opts.edges !== undefined && opts.threshold !== undefined) throw new Error('give either an edge count or a threshold, not both');
  const graph = graphFromModel(model, { gqa: opts.gqa });
  const progress = opts.progress ?? silentProgress;
  const ablation = opts.ablation ?? 'corrupt';
  const scores: CircuitRun['scores'] = {};
  const curves: MeasuredCurve[] = [];
  const seconds: CircuitRun['seconds'] = {};
  for (const method of opts.methods) {
    const s = opts.precomputed?.[method] ?? attributeEdges(model, graph, data, { method, rules: opts.rules, igSteps: opts.igSteps, progress });
    if (s.scores.length !== graph.nEdges) throw new Error(`precomputed ${method} scores have ${s.scores.length} values but the graph has ${graph.nEdges} edges`);
    scores[method] = s;
    const t0 = performance.now();
    const sizes = opts.curvePoints !== undefined ? logSpacedSizes(graph.nEdges, opts.curvePoints) : undefined;
    // The curve also measures MIB's edge fractions, for CPR / CMD (curve.mib).
    curves.push(faithfulnessCurve(model, graph, data, s.scores, { method, ablation, sizes, selection: opts.selection, mib: true }));
    seconds[method] = { scoring: s.seconds, curve: (performance.now() - t0) / 1000 };
  }
  const primary = scores[opts.methods[0]]!.scores;
  const raw =
    opts.threshold !== undefined
      ? selectEdges(graph, primary, 'threshold', opts.threshold)
      : selectEdges(graph, primary, opts.selection ?? 'topn', opts.edges ?? Math.max(1, Math.round(0.05 * graph.nEdges)));
  const mask = pruneDangling(graph, raw);
  const circuitRecovered = evaluateCircuits(model, graph, data, [mask], { ablation }).recovered[0];
  const out: CircuitRun = { graph, scores, mask, selected: countEdges(raw), curves, circuitRecovered, seconds };
  if (opts.referenceHeads && opts.referenceHeads.length > 0) {
    out.headAuc = {};
    for (const m of opts.methods) {
      try {
        out.headAuc[m] = headRocAuc(graph, scores[m]!.scores, opts.referenceHeads);
      } catch {
        // every head in the reference set (or none): AUC undefined
      }
    }
    out.referenceRecovered = nodeCircuitFaithfulness(model, graph, data, opts.referenceHeads, { ablation }).recovered;
  }
  return out;
}
