/**
 * Deterministic synthetic run directories for the viewer's tests, its load benchmark and demos.
 * Nothing here is a real model output: scores are a planted pattern plus seeded noise, so each
 * method correlates with `activation` to a different, known-ish degree.
 */
import { NODE_METHODS } from '../methods.ts';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mulberry32 } from '../models/state-dict.ts';
import type { CircuitFile, CircuitLink, CircuitNode } from '../contracts/circuit.ts';
import type { FaithfulnessCurve, FaithfulnessFile } from '../contracts/faithfulness.ts';
import { datasetHash, type Provenance } from '../contracts/provenance.ts';
import type { RunFile } from '../contracts/run.ts';
import type { ScoreTensor } from '../contracts/score-tensor.ts';

/** Nested arrays of numbers. */
type NestedNumbers = ScoreTensor['values'];

/** Size and seed of a synthetic run. */
export interface SyntheticOptions {
  nLayers: number;
  nHeads: number;
  /** Number of token positions (labels); at most the 15 of the built-in IOI prompt unless `labels` is given. */
  nPos: number;
  seed?: number;
  labels?: string[];
  /** Methods to emit; default activation, atp, atp*, relp. */
  methods?: string[];
  /** Emit a position-resolved circuit (nodes carry ctx_idx) instead of the EAP layout (ctx_idx null). */
  positionResolved?: boolean;
  /** ISO date for `created`. */
  created?: string;
}

/** The IOI prompt (GPT-2 tokens, with BOS): 15 positions. */
export const IOI_LABELS = ['<|endoftext|>', 'When', ' Mary', ' and', ' John', ' went', ' to', ' the', ' store', ',', ' John', ' gave', ' a', ' drink', ' to'];

/** Noise scale of each method relative to the planted signal (activation is the reference). */
const METHOD_NOISE: Record<string, number> = { activation: 0, atp: 0.6, 'atp*': 0.35, relp: 0.2 };

const round = (x: number) => Number(x.toPrecision(6));

function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/** A nested array of `shape` filled by `f(indices)`. */
function nested(shape: number[], f: (idx: number[]) => number): NestedNumbers {
  const build = (depth: number, idx: number[]): NestedNumbers => {
    const out: unknown[] = [];
    for (let k = 0; k < shape[depth]!; k++) {
      out.push(depth === shape.length - 1 ? round(f([...idx, k])) : build(depth + 1, [...idx, k]));
    }
    return out as NestedNumbers;
  };
  return build(0, []);
}

/** Labels of a synthetic run: the IOI prompt, or `t0..t{n-1}` beyond it. */
function labelsFor(o: SyntheticOptions): string[] {
  if (o.labels) return o.labels;
  return Array.from({ length: o.nPos }, (_, k) => IOI_LABELS[k] ?? ` t${k}`);
}

/** The provenance every file of one synthetic run shares (the model hash is a placeholder). */
export function syntheticProvenance(o: SyntheticOptions): Provenance {
  const labels = labelsFor(o);
  const pairs = [{ clean: labels.join(''), corrupt: labels.join('').replace(' John gave', ' Paul gave'), answer: ' Mary', wrong: ' John' }];
  return { task: 'ioi', seed: o.seed ?? 1, dataset_sha256: datasetHash(pairs), model_sha256: '0'.repeat(64) };
}

/** A valid `run.json` object with every component of the viewer's format. */
export function syntheticRun(o: SyntheticOptions): RunFile {
  const rand = mulberry32(o.seed ?? 1);
  const gauss = gaussian(rand);
  const methods = o.methods ?? [...NODE_METHODS];
  const L = o.nLayers;
  const H = o.nHeads;
  const T = o.nPos;
  const labels = labelsFor(o);
  // Planted signal: the residual stream carries the answer at the last position late and at the
  // S2 position early; a few "name mover" heads; the rest is small.
  const residSignal = (l: number, p: number) => (p === T - 1 ? l / Math.max(L - 1, 1) : p === Math.min(4, T - 1) ? 1 - l / Math.max(L - 1, 1) : 0.02 * Math.sin(l + p));
  const headSignal = (l: number, h: number) => ((l * 7 + h * 3) % 11 === 0 ? 0.8 : (l * 5 + h) % 13 === 0 ? -0.5 : 0.03 * Math.cos(l * H + h));
  const components: Record<string, { axes: ScoreTensor['axes']; shape: number[]; signal: (i: number[]) => number }> = {
    resid_pre: { axes: ['layer', 'pos'], shape: [L, T], signal: ([l, p]) => residSignal(l!, p!) },
    resid_mid: { axes: ['layer', 'pos'], shape: [L, T], signal: ([l, p]) => residSignal(l! + 0.5, p!) },
    resid_post: { axes: ['layer', 'pos'], shape: [L, T], signal: ([l, p]) => residSignal(l! + 1, p!) },
    attn_out: { axes: ['layer', 'pos'], shape: [L, T], signal: ([l, p]) => (p === T - 1 ? 0.5 * Math.sin(l! + 1) : 0.01) },
    mlp_out: { axes: ['layer', 'pos'], shape: [L, T], signal: ([l, p]) => (p === Math.min(4, T - 1) && l === 0 ? 0.9 : 0.02 * Math.cos(l! * p!)) },
    z: { axes: ['layer', 'head'], shape: [L, H], signal: ([l, h]) => headSignal(l!, h!) },
    z_pos: { axes: ['layer', 'head', 'pos'], shape: [L, H, T], signal: ([l, h, p]) => (p === T - 1 ? headSignal(l!, h!) : 0.01) },
    q: { axes: ['layer', 'head'], shape: [L, H], signal: ([l, h]) => 0.6 * headSignal(l!, h!) },
    k: { axes: ['layer', 'head'], shape: [L, H], signal: ([l, h]) => 0.3 * headSignal(h!, l!) },
    v: { axes: ['layer', 'head'], shape: [L, H], signal: ([l, h]) => 0.5 * headSignal(l!, h!) },
    pattern: { axes: ['layer', 'head'], shape: [L, H], signal: ([l, h]) => 0.4 * headSignal(l!, h!) },
  };
  const scores: RunFile['scores'] = {};
  for (const m of methods) {
    const noise = METHOD_NOISE[m] ?? 0.4;
    scores[m] = {};
    for (const [name, c] of Object.entries(components)) {
      // Activation patching has no per-q/k/v/pattern scores in this format.
      if (m === 'activation' && ['q', 'k', 'v', 'pattern'].includes(name)) continue;
      const scale = 0.15;
      scores[m]![name] = { axes: c.axes, shape: c.shape, values: nested(c.shape, (i) => c.signal(i) + noise * scale * gauss()) };
    }
  }
  const timings: Record<string, number> = {};
  methods.forEach((m, k) => (timings[m] = round(m === 'activation' ? 12.5 : 0.8 + 0.3 * k)));
  const pairs = [{ clean: labels.join(''), corrupt: labels.join('').replace(' John gave', ' Paul gave'), answer: ' Mary', wrong: ' John', clean_ids: [], corrupt_ids: [], answer_id: 5335, wrong_id: 1757 }];
  return {
    version: 2,
    written_by: 'relp (synthetic run)',
    provenance: syntheticProvenance(o),
    model: { path: 'models/synthetic-gpt2.safetensors', config: { nLayers: L, nHeads: H, name: 'synthetic' }, sha256: '0'.repeat(64) },
    dataset: { kind: 'ioi', seed: o.seed ?? 1, pairs },
    metric: { name: 'logit_diff', clean: 3.21, corrupt: -2.87, direction: 'denoising' },
    scores,
    labels,
    rules: 'relp',
    timings,
    created: o.created ?? '2025-01-01T00:00:00.000Z',
  };
}

/** Node ids of the EAP graph layout: `input`, `a{l}.h{h}`, `m{l}`, `logits`. */
export function eapNodeIds(nLayers: number, nHeads: number): string[] {
  const ids = ['input'];
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) ids.push(`a${l}.h${h}`);
    ids.push(`m${l}`);
  }
  ids.push('logits');
  return ids;
}

/**
 * Number of edges of the EAP layout (q/k/v inputs of heads separate). GPT-2 small (12 × 12) has 32,491.
 * Heads of layer l read from input + all earlier heads and MLPs (×3 for q, k, v); m{l} also reads
 * the heads of its own layer; logits read everything.
 */
export function eapEdgeCount(nLayers: number, nHeads: number): number {
  let e = 0;
  for (let l = 0; l < nLayers; l++) {
    const upstream = 1 + l * (nHeads + 1);
    e += nHeads * 3 * upstream + (upstream + nHeads);
  }
  return e + 1 + nLayers * (nHeads + 1);
}

/**
 * A valid `circuit.json` object. The EAP layout (default) has {@link eapEdgeCount} links; the
 * position-resolved layout has per-position nodes and only edges between equal or later positions
 * (a small, dense-enough graph for layout tests).
 */
export function syntheticCircuit(o: SyntheticOptions): CircuitFile {
  const rand = mulberry32((o.seed ?? 1) * 7919 + 13);
  const gauss = gaussian(rand);
  const methods = (o.methods ?? [...NODE_METHODS]).filter((m) => m !== 'activation');
  const L = o.nLayers;
  const H = o.nHeads;
  const nodes: CircuitNode[] = [];
  const links: CircuitLink[] = [];
  const makeScores = (base: number) => {
    const s: Record<string, number> = {};
    for (const m of methods) s[m] = round(base + (METHOD_NOISE[m] ?? 0.4) * 0.3 * Math.abs(base) * gauss() + 1e-4 * gauss());
    return s;
  };
  // Heavy-tailed base scores: most edges tiny, a few large, like real EAP scores.
  const edgeBase = () => {
    const g = gauss();
    return 0.05 * g * g * g;
  };
  const method = methods.includes('relp') ? 'relp' : methods[0]!;
  const addLink = (source: string, target: string, target_input: 'q' | 'k' | 'v' | null) => {
    const scores = makeScores(edgeBase());
    links.push({ source, target, target_input, weight: scores[method]!, scores });
  };
  const node = (n: Omit<CircuitNode, 'scores' | 'influence'>) => {
    const influence = round(Math.abs(0.1 * gauss()));
    nodes.push({ ...n, influence, scores: makeScores(influence) });
  };
  if (!o.positionResolved) {
    node({ node_id: 'input', layer: -1, ctx_idx: null, feature_type: 'embedding' });
    const upstream: string[] = ['input'];
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        node({ node_id: `a${l}.h${h}`, layer: l, ctx_idx: null, feature_type: 'attention', head: h });
        for (const u of upstream) for (const qkv of ['q', 'k', 'v'] as const) addLink(u, `a${l}.h${h}`, qkv);
      }
      node({ node_id: `m${l}`, layer: l, ctx_idx: null, feature_type: 'mlp' });
      for (const u of upstream) addLink(u, `m${l}`, null);
      for (let h = 0; h < H; h++) addLink(`a${l}.h${h}`, `m${l}`, null);
      for (let h = 0; h < H; h++) upstream.push(`a${l}.h${h}`);
      upstream.push(`m${l}`);
    }
    node({ node_id: 'logits', layer: L, ctx_idx: null, feature_type: 'logits' });
    for (const u of upstream) addLink(u, 'logits', null);
  } else {
    const T = o.nPos;
    const at = (id: string, p: number) => `${id}@${p}`;
    for (let p = 0; p < T; p++) node({ node_id: at('input', p), layer: -1, ctx_idx: p, feature_type: 'embedding' });
    const ups: { id: string; p: number }[] = [];
    for (let p = 0; p < T; p++) ups.push({ id: at('input', p), p });
    for (let l = 0; l < L; l++) {
      const layerNodes: { id: string; p: number }[] = [];
      for (let p = 0; p < T; p++) {
        for (let h = 0; h < H; h++) {
          const id = at(`a${l}.h${h}`, p);
          node({ node_id: id, layer: l, ctx_idx: p, feature_type: 'attention', head: h });
          for (const u of ups) if (u.p === p) addLink(u.id, id, 'q');
          for (const u of ups) if (u.p <= p && rand() < 0.5) addLink(u.id, id, rand() < 0.5 ? 'k' : 'v');
          layerNodes.push({ id, p });
        }
      }
      for (let p = 0; p < T; p++) {
        const id = at(`m${l}`, p);
        node({ node_id: id, layer: l, ctx_idx: p, feature_type: 'mlp' });
        for (const u of [...ups, ...layerNodes]) if (u.p === p) addLink(u.id, id, null);
        ups.push({ id, p });
      }
      ups.push(...layerNodes);
    }
    node({ node_id: 'logits', layer: L, ctx_idx: T - 1, feature_type: 'logits' });
    for (const u of ups) if (u.p === T - 1) addLink(u.id, 'logits', null);
  }
  return {
    version: 1,
    written_by: 'relp (synthetic run)',
    provenance: syntheticProvenance(o),
    metadata: { model: 'synthetic-gpt2', task: 'ioi', method, methods, nLayers: L, nHeads: H, prompt_tokens: labelsFor(o) },
    nodes,
    links,
    qParams: { pinnedIds: [], pruningThreshold: null },
  };
}

/** Faithfulness curves (one per method) shaped like real ones: rising, saturating near 1. */
export function syntheticFaithfulness(o: SyntheticOptions, totalEdges: number): FaithfulnessCurve[] {
  const methods = (o.methods ?? [...NODE_METHODS]).filter((m) => m !== 'activation');
  return methods.map((method, k) => {
    const rate = 60 + 40 * k;
    const sizes = [0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, totalEdges].filter((s, i, a) => s <= totalEdges && a.indexOf(s) === i);
    const curve = sizes.map((edges) => ({ edges, fraction_edges: round(edges / totalEdges), recovered: round(1 - Math.exp(-edges / rate)) }));
    let auc = 0;
    for (let i = 1; i < curve.length; i++) auc += ((curve[i]!.fraction_edges - curve[i - 1]!.fraction_edges) * (curve[i]!.recovered + curve[i - 1]!.recovered)) / 2;
    return { method, ablation: 'corrupt', curve, full: 3.21, empty: -2.87, auc: round(auc) };
  });
}

/**
 * Write a synthetic run directory `<runsDir>/<id>/` with run.json, circuit.json and faithfulness.json.
 * @returns the objects written.
 */
export async function writeSyntheticRun(runsDir: string, id: string, o: SyntheticOptions): Promise<{ run: RunFile; circuit: CircuitFile; faithfulness: FaithfulnessCurve[] }> {
  const file = (curves: FaithfulnessCurve[]): FaithfulnessFile => ({ version: 1, written_by: 'relp (synthetic run)', provenance: syntheticProvenance(o), curves });
  const dir = path.join(runsDir, id);
  await fs.mkdir(dir, { recursive: true });
  const run = syntheticRun(o);
  const circuit = syntheticCircuit(o);
  const faithfulness = syntheticFaithfulness(o, circuit.links.length);
  await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify(run));
  await fs.writeFile(path.join(dir, 'circuit.json'), JSON.stringify(circuit));
  await fs.writeFile(path.join(dir, 'faithfulness.json'), JSON.stringify(file(faithfulness)));
  return { run, circuit, faithfulness };
}
