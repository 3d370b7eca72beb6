/**
 * An independent, deliberately naive GPT-2 forward pass in float64 plain JS (loops, no tfjs).
 * It is the reference the tfjs model, the ONNX export and patching code are checked against.
 *
 * Activations are recorded under TransformerLens hook names, without the batch axis:
 * - `hook_embed`, `hook_pos_embed`, `blocks.{l}.hook_resid_pre|mid|post`, `hook_attn_out`,
 *   `hook_mlp_out`, `ln_final.hook_normalized`: [pos, d_model]
 * - `blocks.{l}.ln1|ln2.hook_scale`, `ln_final.hook_scale`: [pos, 1]; `*.hook_normalized`: [pos, d_model]
 * - `blocks.{l}.attn.hook_q|k|v|z`: [pos, head, d_head]
 * - `blocks.{l}.attn.hook_attn_scores` (masked entries -Infinity), `hook_pattern`: [head, q_pos, k_pos]
 * - `blocks.{l}.attn.hook_result`: [pos, head, d_model] (per-head output before the bias)
 * - `blocks.{l}.mlp.hook_pre|hook_post`: [pos, d_mlp]
 * LayerNorm follows TransformerLens: hook_scale = sqrt(var + eps),
 * hook_normalized = (x - mean) / scale * w + b.
 */
import type { BaseConfig } from '../../src/models/config.ts';
import type { StateDict } from '../../src/models/state-dict.ts';

/** A float64 activation with its shape (row-major). */
export interface NaiveActivation {
  shape: number[];
  data: Float64Array;
}

/**
 * Called at every hook point with the current value. Return a replacement of the same shape to
 * patch the activation (the forward continues from it), or nothing to leave it unchanged.
 */
export type NaiveHook = (name: string, value: NaiveActivation) => NaiveActivation | void;

/** Options for {@link naiveGpt2}. */
export interface NaiveOptions {
  /** Record activations: `true` for all hook points, or a list of hook names. */
  record?: boolean | string[];
  /** Hook callback, see {@link NaiveHook}. */
  hook?: NaiveHook;
}

/** Result of {@link naiveGpt2}. */
export interface NaiveResult {
  /** Logits [pos][vocab]. */
  logits: number[][];
  /** Recorded activations (copies, taken after any hook replacement). */
  cache: Map<string, NaiveActivation>;
}

/**
 * erf to near double precision: erf(x) = 2/sqrt(pi) · e^(-x²) · Σ_n 2^n x^(2n+1) / (1·3···(2n+1)).
 * All terms are positive, so the sum has no cancellation; beyond |x| = 6, erf = ±1 in float64.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/** GELU with the tanh approximation (HF `gelu_new`). */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** Exact GELU (HF `gelu`). */
export function geluExact(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

function param(sd: StateDict, name: string): Float64Array {
  const t = sd.get(name);
  if (!t) throw new Error(`naive-gpt2: state dict has no tensor "${name}"`);
  return Float64Array.from(t.data);
}

/**
 * Run a GPT-2 on one token sequence.
 * @param tokens token ids, length <= cfg.nCtx.
 */
export function naiveGpt2(cfg: BaseConfig, sd: StateDict, tokens: number[], opts: NaiveOptions = {}): NaiveResult {
  const { dModel: D, nHeads: H, dHead: Dh, dMlp: M, dVocab: V } = cfg;
  const P = tokens.length;
  if (P > cfg.nCtx) throw new Error(`naive-gpt2: ${P} tokens exceed nCtx ${cfg.nCtx}`);
  const cache = new Map<string, NaiveActivation>();
  const wanted = opts.record === true ? undefined : new Set(opts.record || []);

  /** Pass an activation through the hook point `name` (patch, then record). */
  const hp = (name: string, data: Float64Array, shape: number[]): Float64Array => {
    let cur: NaiveActivation = { shape, data };
    if (opts.hook) {
      const rep = opts.hook(name, { shape: [...shape], data: Float64Array.from(data) });
      if (rep) {
        const n = shape.reduce((a, b) => a * b, 1);
        if (rep.data.length !== n || rep.shape.join() !== shape.join()) {
          throw new Error(`naive-gpt2: hook for "${name}" returned shape [${rep.shape}] but [${shape}] is needed`);
        }
        cur = { shape, data: Float64Array.from(rep.data) };
      }
    }
    if (opts.record && (!wanted || wanted.has(name))) cache.set(name, { shape: [...shape], data: Float64Array.from(cur.data) });
    return cur.data;
  };

  const layerNorm = (x: Float64Array, prefix: string, w: Float64Array, b: Float64Array): Float64Array => {
    const scale = new Float64Array(P);
    const centred = new Float64Array(P * D);
    for (let p = 0; p < P; p++) {
      let mean = 0;
      for (let i = 0; i < D; i++) mean += x[p * D + i];
      mean /= D;
      let v = 0;
      for (let i = 0; i < D; i++) {
        const c = x[p * D + i] - mean;
        centred[p * D + i] = c;
        v += c * c;
      }
      scale[p] = Math.sqrt(v / D + cfg.eps);
    }
    const s = hp(`${prefix}.hook_scale`, scale, [P, 1]);
    const out = new Float64Array(P * D);
    for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) out[p * D + i] = (centred[p * D + i] / s[p]) * w[i] + b[i];
    return hp(`${prefix}.hook_normalized`, out, [P, D]);
  };

  /** y[p, o] = Σ_i x[p, i] W[i, o] + b[o] with W [in, out] (Conv1D layout). */
  const linear = (x: Float64Array, nIn: number, W: Float64Array, b: Float64Array, nOut: number): Float64Array => {
    const y = new Float64Array(P * nOut);
    for (let p = 0; p < P; p++) {
      for (let o = 0; o < nOut; o++) {
        let acc = b[o];
        for (let i = 0; i < nIn; i++) acc += x[p * nIn + i] * W[i * nOut + o];
        y[p * nOut + o] = acc;
      }
    }
    return y;
  };

  const wte = param(sd, 'wte.weight');
  const wpe = param(sd, 'wpe.weight');
  const embed = new Float64Array(P * D);
  const posEmbed = new Float64Array(P * D);
  tokens.forEach((t, p) => {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`naive-gpt2: token ${t} at position ${p} is out of range`);
    for (let i = 0; i < D; i++) {
      embed[p * D + i] = wte[t * D + i];
      posEmbed[p * D + i] = wpe[p * D + i];
    }
  });
  const e = hp('hook_embed', embed, [P, D]);
  const pe = hp('hook_pos_embed', posEmbed, [P, D]);
  let resid: Float64Array = new Float64Array(P * D);
  for (let i = 0; i < P * D; i++) resid[i] = e[i] + pe[i];

  for (let l = 0; l < cfg.nLayers; l++) {
    const B = `blocks.${l}`;
    const h = `h.${l}`;
    resid = hp(`${B}.hook_resid_pre`, resid, [P, D]);
    const x1 = layerNorm(resid, `${B}.ln1`, param(sd, `${h}.ln_1.weight`), param(sd, `${h}.ln_1.bias`));
    const qkv = linear(x1, D, param(sd, `${h}.attn.c_attn.weight`), param(sd, `${h}.attn.c_attn.bias`), 3 * D);
    const split = (part: number): Float64Array => {
      // [pos, head, d_head] from columns part*D .. part*D + D
      const out = new Float64Array(P * D);
      for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) out[p * D + i] = qkv[p * 3 * D + part * D + i];
      return out;
    };
    const q = hp(`${B}.attn.hook_q`, split(0), [P, H, Dh]);
    const k = hp(`${B}.attn.hook_k`, split(1), [P, H, Dh]);
    const v = hp(`${B}.attn.hook_v`, split(2), [P, H, Dh]);
    const scores = new Float64Array(H * P * P); // [head, q, k]
    for (let hd = 0; hd < H; hd++) {
      for (let qi = 0; qi < P; qi++) {
        for (let ki = 0; ki < P; ki++) {
          let s = -Infinity;
          if (ki <= qi) {
            s = 0;
            for (let j = 0; j < Dh; j++) s += q[(qi * H + hd) * Dh + j] * k[(ki * H + hd) * Dh + j];
            s /= Math.sqrt(Dh);
          }
          scores[(hd * P + qi) * P + ki] = s;
        }
      }
    }
    const sc = hp(`${B}.attn.hook_attn_scores`, scores, [H, P, P]);
    const pattern = new Float64Array(H * P * P);
    for (let r = 0; r < H * P; r++) {
      let mx = -Infinity;
      for (let ki = 0; ki < P; ki++) mx = Math.max(mx, sc[r * P + ki]);
      let sum = 0;
      for (let ki = 0; ki < P; ki++) {
        const ex = Math.exp(sc[r * P + ki] - mx);
        pattern[r * P + ki] = ex;
        sum += ex;
      }
      for (let ki = 0; ki < P; ki++) pattern[r * P + ki] /= sum;
    }
    const pat = hp(`${B}.attn.hook_pattern`, pattern, [H, P, P]);
    const zRaw = new Float64Array(P * H * Dh);
    for (let qi = 0; qi < P; qi++) {
      for (let hd = 0; hd < H; hd++) {
        for (let j = 0; j < Dh; j++) {
          let acc = 0;
          for (let ki = 0; ki < P; ki++) acc += pat[(hd * P + qi) * P + ki] * v[(ki * H + hd) * Dh + j];
          zRaw[(qi * H + hd) * Dh + j] = acc;
        }
      }
    }
    const z = hp(`${B}.attn.hook_z`, zRaw, [P, H, Dh]);
    const WO = param(sd, `${h}.attn.c_proj.weight`); // [d (= head*d_head), d]
    const bO = param(sd, `${h}.attn.c_proj.bias`);
    const resultRaw = new Float64Array(P * H * D); // [pos, head, d_model]
    for (let p = 0; p < P; p++) {
      for (let hd = 0; hd < H; hd++) {
        for (let o = 0; o < D; o++) {
          let acc = 0;
          for (let j = 0; j < Dh; j++) acc += z[(p * H + hd) * Dh + j] * WO[(hd * Dh + j) * D + o];
          resultRaw[(p * H + hd) * D + o] = acc;
        }
      }
    }
    const result = hp(`${B}.attn.hook_result`, resultRaw, [P, H, D]);
    const attnRaw = new Float64Array(P * D);
    for (let p = 0; p < P; p++) {
      for (let o = 0; o < D; o++) {
        let acc = bO[o];
        for (let hd = 0; hd < H; hd++) acc += result[(p * H + hd) * D + o];
        attnRaw[p * D + o] = acc;
      }
    }
    const attnOut = hp(`${B}.hook_attn_out`, attnRaw, [P, D]);
    const midRaw = new Float64Array(P * D);
    for (let i = 0; i < P * D; i++) midRaw[i] = resid[i] + attnOut[i];
    const mid = hp(`${B}.hook_resid_mid`, midRaw, [P, D]);

    // hook_mlp_in: the residual the MLP's norm reads (a copy: replacing it leaves resid_mid alone).
    const mlpIn = hp(`${B}.hook_mlp_in`, Float64Array.from(mid), [P, D]);
    const x2 = layerNorm(mlpIn, `${B}.ln2`, param(sd, `${h}.ln_2.weight`), param(sd, `${h}.ln_2.bias`));
    const pre = hp(`${B}.mlp.hook_pre`, linear(x2, D, param(sd, `${h}.mlp.c_fc.weight`), param(sd, `${h}.mlp.c_fc.bias`), M), [P, M]);
    const act = cfg.act === 'gelu' ? geluExact : geluNew;
    const post = hp(`${B}.mlp.hook_post`, pre.map(act), [P, M]);
    const mlpOut = hp(`${B}.hook_mlp_out`, linear(post, M, param(sd, `${h}.mlp.c_proj.weight`), param(sd, `${h}.mlp.c_proj.bias`), D), [P, D]);
    const postRaw = new Float64Array(P * D);
    for (let i = 0; i < P * D; i++) postRaw[i] = mid[i] + mlpOut[i];
    resid = hp(`${B}.hook_resid_post`, postRaw, [P, D]);
  }

  const fin = layerNorm(resid, 'ln_final', param(sd, 'ln_f.weight'), param(sd, 'ln_f.bias'));
  const logits: number[][] = [];
  for (let p = 0; p < P; p++) {
    const row = new Array<number>(V);
    for (let t = 0; t < V; t++) {
      let acc = 0;
      for (let i = 0; i < D; i++) acc += fin[p * D + i] * wte[t * D + i];
      row[t] = acc;
    }
    logits.push(row);
  }
  return { logits, cache };
}

/** {@link naiveGpt2} over a batch of sequences: logits [batch][pos][vocab]. */
export function naiveGpt2Batch(cfg: BaseConfig, sd: StateDict, batch: number[][]): number[][][] {
  return batch.map((tokens) => naiveGpt2(cfg, sd, tokens).logits);
}
