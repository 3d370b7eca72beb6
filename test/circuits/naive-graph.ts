/**
 * An independent float64 reference for circuit runs: nodes are evaluated one by one in plain JS
 * loops, and every node input is built edge by edge:
 *   input(t) = Σ_{u upstream of t} (keep(u → t) ? live(u) : ablated(u)) + Σ (attention b_O so far).
 * Head h of layer l: LN1 → its own W_Q/W_K/W_V columns → causal softmax attention → z_h @ W_O[h].
 * It shares no code with src/circuits (only the state dict and the edge numbering of the graph).
 */
import type { BaseConfig } from '../../src/models/config.ts';
import type { StateDict } from '../../src/models/state-dict.ts';
import type { CircuitGraph } from '../../src/circuits/graph.ts';
import { geluExact, geluNew } from '../helpers/naive-gpt2.ts';

/** Result of one prompt: node outputs (flat [pos·d], node order without logits) and last-position logits. */
export interface NaiveGraphRun {
  outputs: Float64Array[];
  lastLogits: Float64Array;
}

/**
 * Run one prompt. `keep(e)` says whether edge e carries the live value; `ablated[u]` ([pos·d]) is
 * what a dropped edge from node u carries (needed only when some edge is dropped).
 */
export function naiveGraphRun(cfg: BaseConfig, sd: StateDict, graph: CircuitGraph, tokens: number[], keep: (e: number) => boolean, ablated?: Float64Array[]): NaiveGraphRun {
  const { dModel: D, nHeads: H, dHead: Dh, dMlp: M, dVocab: V, nLayers: L } = cfg;
  const P = tokens.length;
  const w = (n: string) => Float64Array.from(sd.get(n)!.data);
  const outputs: Float64Array[] = [];
  const inp = new Float64Array(P * D);
  const wte = w('wte.weight');
  const wpe = w('wpe.weight');
  for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) inp[p * D + i] = wte[tokens[p] * D + i] + wpe[p * D + i];
  outputs.push(inp);
  const bO = Array.from({ length: L }, (_, l) => w(`h.${l}.attn.c_proj.bias`));

  /** Input of a target: edge-by-edge sum plus the attention biases of layers < upToLayer. */
  const targetInput = (ti: number, biasLayers: number): Float64Array => {
    const t = graph.targets[ti];
    const r = new Float64Array(P * D);
    for (let u = 0; u < t.nUp; u++) {
      const src = keep(t.edgeOffset + u) ? outputs[u] : ablated![u];
      for (let i = 0; i < P * D; i++) r[i] += src[i];
    }
    for (let l = 0; l < biasLayers; l++) for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) r[p * D + i] += bO[l][i];
    return r;
  };
  const ln = (x: Float64Array, g: Float64Array, b: Float64Array): Float64Array => {
    const y = new Float64Array(P * D);
    for (let p = 0; p < P; p++) {
      let mu = 0;
      for (let i = 0; i < D; i++) mu += x[p * D + i] / D;
      let v = 0;
      for (let i = 0; i < D; i++) v += (x[p * D + i] - mu) ** 2 / D;
      const s = Math.sqrt(v + cfg.eps);
      for (let i = 0; i < D; i++) y[p * D + i] = ((x[p * D + i] - mu) / s) * g[i] + b[i];
    }
    return y;
  };
  /** Columns [col0, col0+n) of x @ W + b, W [D, cols]. */
  const proj = (x: Float64Array, W: Float64Array, b: Float64Array, cols: number, col0: number, n: number): Float64Array => {
    const y = new Float64Array(P * n);
    for (let p = 0; p < P; p++) for (let o = 0; o < n; o++) {
      let acc = b[col0 + o];
      for (let i = 0; i < D; i++) acc += x[p * D + i] * W[i * cols + col0 + o];
      y[p * n + o] = acc;
    }
    return y;
  };

  const perLayer = 3 * H + 1;
  for (let l = 0; l < L; l++) {
    const g1 = w(`h.${l}.ln_1.weight`), b1 = w(`h.${l}.ln_1.bias`);
    const Wa = w(`h.${l}.attn.c_attn.weight`), ba = w(`h.${l}.attn.c_attn.bias`);
    const Wo = w(`h.${l}.attn.c_proj.weight`);
    for (let h = 0; h < H; h++) {
      const [q, k, v] = [0, 1, 2].map((which) => proj(ln(targetInput(l * perLayer + which * H + h, l), g1, b1), Wa, ba, 3 * D, which * D + h * Dh, Dh));
      const z = new Float64Array(P * Dh);
      for (let i = 0; i < P; i++) {
        const s: number[] = [];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < Dh; c++) dot += q[i * Dh + c] * k[j * Dh + c];
          s.push(dot / Math.sqrt(Dh));
        }
        const mx = Math.max(...s);
        const ex = s.map((x) => Math.exp(x - mx));
        const sum = ex.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++) for (let c = 0; c < Dh; c++) z[i * Dh + c] += (ex[j] / sum) * v[j * Dh + c];
      }
      const out = new Float64Array(P * D);
      for (let p = 0; p < P; p++) for (let o = 0; o < D; o++) {
        let acc = 0;
        for (let c = 0; c < Dh; c++) acc += z[p * Dh + c] * Wo[(h * Dh + c) * D + o];
        out[p * D + o] = acc;
      }
      outputs.push(out);
    }
    const x2 = ln(targetInput(l * perLayer + 3 * H, l + 1), w(`h.${l}.ln_2.weight`), w(`h.${l}.ln_2.bias`));
    const pre = new Float64Array(P * M);
    const Wf = w(`h.${l}.mlp.c_fc.weight`), bf = w(`h.${l}.mlp.c_fc.bias`);
    for (let p = 0; p < P; p++) for (let o = 0; o < M; o++) {
      let acc = bf[o];
      for (let i = 0; i < D; i++) acc += x2[p * D + i] * Wf[i * M + o];
      pre[p * M + o] = cfg.act === 'gelu' ? geluExact(acc) : geluNew(acc);
    }
    const Wp = w(`h.${l}.mlp.c_proj.weight`), bp = w(`h.${l}.mlp.c_proj.bias`);
    const out = new Float64Array(P * D);
    for (let p = 0; p < P; p++) for (let o = 0; o < D; o++) {
      let acc = bp[o];
      for (let i = 0; i < M; i++) acc += pre[p * M + i] * Wp[i * D + o];
      out[p * D + o] = acc;
    }
    outputs.push(out);
  }
  const xf = ln(targetInput(graph.targets.length - 1, L), w('ln_f.weight'), w('ln_f.bias'));
  const lastLogits = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let acc = 0;
    for (let i = 0; i < D; i++) acc += xf[(P - 1) * D + i] * wte[v * D + i];
    lastLogits[v] = acc;
  }
  return { outputs, lastLogits };
}
