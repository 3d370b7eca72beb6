/**
 * Head-level comparison with a reference circuit: node scores from edge scores, ROC AUC, the
 * known GPT-2 small IOI heads, and reference heads from exhaustive activation patching of z.
 */
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { BaseConfig } from '../models/config.ts';
import type { PatchingData } from '../patching/data.ts';
import { activationPatch } from '../patching/activation-patching.ts';
import { headNode, type CircuitGraph } from './graph.ts';

/** A head as [layer, head]. */
export type HeadRef = [number, number];

/**
 * The IOI circuit of GPT-2 small (Wang et al. 2022, as listed in ACDC's `acdc/ioi/utils.py`):
 * name movers, backup and negative name movers, S-inhibition, induction, duplicate-token and
 * previous-token heads.
 */
export const GPT2_SMALL_IOI_HEADS: Record<string, HeadRef[]> = {
  'name mover': [[9, 9], [9, 6], [10, 0]],
  'backup name mover': [[10, 10], [10, 6], [10, 2], [10, 1], [11, 2], [9, 7], [9, 0], [11, 9]],
  'negative name mover': [[10, 7], [11, 10]],
  's-inhibition': [[7, 3], [7, 9], [8, 6], [8, 10]],
  induction: [[5, 5], [5, 8], [5, 9], [6, 9]],
  'duplicate token': [[0, 1], [0, 10], [3, 0]],
  'previous token': [[2, 2], [4, 11]],
};

/** All GPT-2 small IOI heads, deduplicated. */
export function gpt2SmallIoiHeads(): HeadRef[] {
  const seen = new Set<string>();
  const out: HeadRef[] = [];
  for (const hs of Object.values(GPT2_SMALL_IOI_HEADS)) {
    for (const h of hs) {
      const k = h.join('.');
      if (!seen.has(k)) {
        seen.add(k);
        out.push(h);
      }
    }
  }
  return out;
}

/** True for the GPT-2 small shape (12 layers × 12 heads, d_model 768, vocab 50257). */
export function isGpt2SmallShape(cfg: BaseConfig): boolean {
  return cfg.nLayers === 12 && cfg.nHeads === 12 && cfg.dModel === 768 && cfg.dVocab === 50257;
}

/**
 * Head importance from edge scores: Σ |score| over the head's incoming (q, k, v) and outgoing
 * edges. Returns [layer][head].
 */
export function headScores(graph: CircuitGraph, scores: ArrayLike<number>): number[][] {
  if (scores.length !== graph.nEdges) throw new Error(`scores have ${scores.length} values but the graph has ${graph.nEdges} edges`);
  const node = new Float64Array(graph.nodes.length);
  for (const t of graph.targets) {
    for (let u = 0; u < t.nUp; u++) {
      const s = Math.abs(scores[t.edgeOffset + u]);
      node[u] += s;
      node[t.node] += s;
    }
  }
  return Array.from({ length: graph.nLayers }, (_, l) => Array.from({ length: graph.nHeads }, (_, h) => node[headNode(graph.nHeads, l, h)]));
}

/**
 * ROC AUC of `scores` for binary `labels` (Mann–Whitney U with average ranks for ties): the
 * probability that a random positive outscores a random negative. Throws when a class is empty.
 */
export function rocAuc(scores: number[], labels: boolean[]): number {
  if (scores.length !== labels.length) throw new Error(`rocAuc: ${scores.length} scores but ${labels.length} labels`);
  const nPos = labels.filter(Boolean).length;
  const nNeg = labels.length - nPos;
  if (nPos === 0 || nNeg === 0) throw new Error(`rocAuc needs both classes (got ${nPos} positives, ${nNeg} negatives)`);
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const rank = new Float64Array(scores.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    for (let k = i; k <= j; k++) rank[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let sumPos = 0;
  labels.forEach((y, i) => y && (sumPos += rank[i]));
  return (sumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Head-level ROC AUC of edge scores against a reference head set. */
export function headRocAuc(graph: CircuitGraph, scores: ArrayLike<number>, reference: HeadRef[]): number {
  const hs = headScores(graph, scores);
  const ref = new Set(reference.map(([l, h]) => `${l}.${h}`));
  const flat: number[] = [];
  const labels: boolean[] = [];
  hs.forEach((row, l) => row.forEach((s, h) => {
    flat.push(s);
    labels.push(ref.has(`${l}.${h}`));
  }));
  return rocAuc(flat, labels);
}

/** Options of {@link patchingReferenceHeads}. */
export interface PatchingReferenceOptions {
  /** Keep the top k heads by |score| (default: heads with |score| ≥ `fraction` · max). */
  topK?: number;
  /** Relative cut-off when `topK` is not given (default 0.1). */
  fraction?: number;
}

/**
 * Reference heads from exhaustive activation patching of each head's z (clean into corrupt,
 * normalised logit difference): the heads with the largest |effect|.
 */
export async function patchingReferenceHeads(model: HookedTransformer, data: PatchingData, opts: PatchingReferenceOptions = {}): Promise<{ heads: HeadRef[]; scores: number[][] }> {
  const r = await activationPatch(model, data, { components: 'z' });
  const grid = r.scores.z!.values as number[][]; // [layer][head]
  const cells = grid.flatMap((row, l) => row.map((v, h) => ({ l, h, a: Math.abs(v) }))).sort((x, y) => y.a - x.a);
  let keep: typeof cells;
  if (opts.topK !== undefined) {
    if (!Number.isInteger(opts.topK) || opts.topK < 1) throw new Error(`topK must be a positive integer, got ${opts.topK}`);
    keep = cells.slice(0, opts.topK);
  } else {
    const frac = opts.fraction ?? 0.1;
    keep = cells.filter((c) => c.a >= frac * cells[0].a && c.a > 0);
  }
  return { heads: keep.map((c) => [c.l, c.h] as HeadRef), scores: grid };
}
