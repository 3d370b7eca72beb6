/**
 * An independent, deliberately naive float64 forward pass of Hugging Face's semantics for
 * `gpt2`, `gpt_neox` (Pythia), `llama`, `qwen2`, `mistral` and `gemma2`, in plain JS loops.
 * It reads an HF folder's config.json keys and native tensor names directly (no tfjs, no relp
 * code), so relp's converters and model layer can be judged against it.
 *
 * HF semantics implemented (from the transformers modelling files):
 * - LayerNorm (gpt2, gpt_neox): (x − μ)/sqrt(var + eps)·w + b. RMSNorm (llama family):
 *   w·x/sqrt(mean x² + eps). Gemma: (1 + w)·x/sqrt(mean x² + eps).
 * - Rotary: inv_freq_i = 1/base^(2i/rot), angle p·inv_freq, cos/sin repeated as cat(f, f),
 *   q·cos + rotate_half(q)·sin with rotate_half(x) = cat(−x₂, x₁), on the first `rot` dims of each
 *   head (gpt_neox: rot = floor(d_head·rotary_pct); others: rot = d_head).
 * - gpt_neox `query_key_value` rows are interleaved per head: row = head·3·d_head + {q,k,v}·d_head + i.
 *   `use_parallel_residual`: x + attn(ln1 x) + mlp(ln2 x).
 * - GQA (repeat_kv): query head h reads kv head floor(h / (H / H_kv)).
 * - Attention scale d_head^-0.5, gemma2 query_pre_attn_scalar^-0.5. Gemma2 soft-caps scores
 *   cap·tanh(s/cap) BEFORE the causal mask, and the final logits likewise.
 * - Sliding window: key j visible to query i iff i − window < j ≤ i; gemma2 on layers with
 *   l % 2 == 0, mistral on every layer when `sliding_window` is set.
 * - Gated MLP: down(act(gate x) ⊙ up x). gemma2: embeddings × sqrt(hidden_size), four norms per
 *   block (post-attention / post-feedforward norms apply to the sublayer output before the add).
 *
 * Hook points (TransformerLens names), activations without the batch axis:
 * - `hook_embed` [pos, d] (gemma2: already × sqrt(d)); `hook_pos_embed` [pos, d] (gpt2 only)
 * - `blocks.{l}.hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out` [pos, d]
 *   (`hook_resid_mid` does not exist for parallel blocks; gemma2's hook_attn_out / hook_mlp_out are
 *   the sublayer outputs after their post-norms, i.e. what is added to the residual stream)
 * - `blocks.{l}.ln1|ln2|ln1_post|ln2_post.hook_scale` [pos, 1] and `.hook_normalized` [pos, d];
 *   `ln_final.*` likewise. LayerNorm's hook_normalized is after w, b; RMSNorm's is x/scale before
 *   the weight (as TransformerLens' LayerNorm / RMSNorm do).
 * - `blocks.{l}.attn.hook_q` [pos, H, dh], `hook_k|hook_v` [pos, H_kv, dh], `hook_rot_q|hook_rot_k`
 *   (rotary models), `hook_attn_scores` [H, q, k] (scaled, capped, masked with −Infinity),
 *   `hook_pattern` [H, q, k], `hook_z` [pos, H, dh]
 * - `blocks.{l}.mlp.hook_pre` [pos, d_mlp] (gate pre-activation for gated MLPs),
 *   `mlp.hook_pre_linear` [pos, d_mlp] (up projection, gated only), `mlp.hook_post` [pos, d_mlp]
 * Every downstream computation uses the (possibly replaced) hooked value, so freezing e.g. a
 * norm's hook_scale at another run's value builds the "frozen" model of an LRP rule.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsFolder, type StTensor64 } from './hf-safetensors.ts';

/** Architectures the naive forward runs. */
export type NaiveModelType = 'gpt2' | 'gpt_neox' | 'llama' | 'qwen2' | 'mistral' | 'gemma2';

/** What the forward needs, parsed from config.json. */
export interface NaiveHFConfig {
  modelType: NaiveModelType;
  nLayers: number;
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  dHead: number;
  dMlp: number;
  vocab: number;
  maxPositions: number;
  eps: number;
  act: string;
  norm: 'layer' | 'rms' | 'gemma_rms';
  /** Rotary dims per head (0: learned positions). */
  rotaryDim: number;
  ropeTheta: number;
  parallel: boolean;
  gated: boolean;
  attnScale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** Sliding window per layer (null: full causal). */
  window: (number | null)[];
  embedScale: number;
}

/** A loaded checkpoint: config and float64 tensors by HF name. */
export interface NaiveHFModel {
  config: NaiveHFConfig;
  /** Raw config.json. */
  raw: Record<string, unknown>;
  tensors: Map<string, StTensor64>;
}

/** A float64 activation with its shape (row-major). */
export interface NaiveActivation {
  shape: number[];
  data: Float64Array;
}

/** Called at every hook point; return a same-shape replacement to patch it, or nothing. */
export type NaiveHFHook = (name: string, value: NaiveActivation) => NaiveActivation | void;

/** Options of {@link naiveHF}. */
export interface NaiveHFOptions {
  /** Record activations: `true` for every hook point, or a list of hook names. */
  record?: boolean | string[];
  /** Hook callback, see {@link NaiveHFHook}; runs before `perturb`. */
  hook?: NaiveHFHook;
  /** Added elementwise at the named hook points (same shape as the activation). */
  perturb?: Record<string, Float64Array>;
}

/** Result of {@link naiveHF}. */
export interface NaiveHFResult {
  /** Logits [pos][vocab] (gemma2: after the final soft-cap). */
  logits: number[][];
  /** Recorded activations (copies, after replacement and perturbation). */
  cache: Map<string, NaiveActivation>;
}

const fail = (msg: string): never => {
  throw new Error(`naive-hf: ${msg}`);
};

/** erf to near double precision (positive series, no cancellation; ±1 beyond |x| = 6). */
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

/** The MLP activation named by HF's `hidden_act` / `activation_function`. */
export function activationFn(name: string): (x: number) => number {
  switch (name) {
    case 'gelu_new':
    case 'gelu_fast':
    case 'gelu_pytorch_tanh':
      return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case 'gelu':
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'silu':
    case 'swish':
      return (x) => x / (1 + Math.exp(-x));
    case 'relu':
      return (x) => Math.max(0, x);
    default:
      return fail(`unsupported activation ${JSON.stringify(name)}`);
  }
}

function num(c: Record<string, unknown>, key: string, dflt?: number): number {
  const v = c[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) fail(`config.json has no ${key}`);
    return dflt as number;
  }
  if (typeof v !== 'number') fail(`config.json ${key} must be a number, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Parse an HF config.json object into {@link NaiveHFConfig}, with HF's defaults. */
export function parseHFConfig(c: Record<string, unknown>, vocabFromWeights?: number): NaiveHFConfig {
  const t = c.model_type as NaiveModelType;
  if (!['gpt2', 'gpt_neox', 'llama', 'qwen2', 'mistral', 'gemma2'].includes(t)) fail(`unsupported model_type ${JSON.stringify(c.model_type)}`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) fail('rope_scaling is not supported');
  if (t === 'gpt2') {
    const d = num(c, 'n_embd'), H = num(c, 'n_head');
    return {
      modelType: t, nLayers: num(c, 'n_layer'), dModel: d, nHeads: H, nKvHeads: H, dHead: d / H,
      dMlp: num(c, 'n_inner', 4 * d), vocab: num(c, 'vocab_size', vocabFromWeights), maxPositions: num(c, 'n_positions'),
      eps: num(c, 'layer_norm_epsilon', 1e-5), act: (c.activation_function as string) ?? 'gelu_new', norm: 'layer',
      rotaryDim: 0, ropeTheta: 0, parallel: false, gated: false, attnScale: (d / H) ** -0.5, attnSoftcap: null,
      finalSoftcap: null, window: Array(num(c, 'n_layer')).fill(null), embedScale: 1,
    };
  }
  const d = num(c, 'hidden_size'), H = num(c, 'num_attention_heads'), L = num(c, 'num_hidden_layers');
  if (t === 'gpt_neox') {
    const dh = d / H;
    return {
      modelType: t, nLayers: L, dModel: d, nHeads: H, nKvHeads: H, dHead: dh, dMlp: num(c, 'intermediate_size'),
      vocab: num(c, 'vocab_size'), maxPositions: num(c, 'max_position_embeddings'), eps: num(c, 'layer_norm_eps', 1e-5),
      act: (c.hidden_act as string) ?? 'gelu', norm: 'layer', rotaryDim: Math.floor(dh * num(c, 'rotary_pct', 0.25)),
      ropeTheta: num(c, 'rotary_emb_base', 10000), parallel: c.use_parallel_residual !== false, gated: false,
      attnScale: dh ** -0.5, attnSoftcap: null, finalSoftcap: null, window: Array(L).fill(null), embedScale: 1,
    };
  }
  const Hkv = num(c, 'num_key_value_heads', H);
  if (H % Hkv !== 0) fail(`num_key_value_heads ${Hkv} does not divide num_attention_heads ${H}`);
  const dh = num(c, 'head_dim', d / H);
  const gemma = t === 'gemma2';
  let window: (number | null)[] = Array(L).fill(null);
  if (gemma && c.sliding_window != null) {
    window = window.map((_, l) => (l % 2 === 0 ? num(c, 'sliding_window') : null));
  }
  if (t === 'mistral' && c.sliding_window != null) window = window.map(() => num(c, 'sliding_window'));
  if (t === 'qwen2' && c.use_sliding_window === true) fail('qwen2 use_sliding_window=true is not supported');
  return {
    modelType: t, nLayers: L, dModel: d, nHeads: H, nKvHeads: Hkv, dHead: dh, dMlp: num(c, 'intermediate_size'),
    vocab: num(c, 'vocab_size'), maxPositions: num(c, 'max_position_embeddings'), eps: num(c, 'rms_norm_eps', 1e-6),
    act: ((gemma ? c.hidden_activation ?? c.hidden_act : c.hidden_act) as string) ?? (gemma ? 'gelu_pytorch_tanh' : 'silu'),
    norm: gemma ? 'gemma_rms' : 'rms', rotaryDim: dh, ropeTheta: num(c, 'rope_theta', 10000), parallel: false, gated: true,
    attnScale: gemma ? num(c, 'query_pre_attn_scalar') ** -0.5 : dh ** -0.5,
    attnSoftcap: gemma ? ((c.attn_logit_softcapping as number | null) ?? null) : null,
    finalSoftcap: gemma ? ((c.final_logit_softcapping as number | null) ?? null) : null,
    window, embedScale: gemma ? Math.sqrt(d) : 1,
  };
}

/** Load an HF folder (config.json + model.safetensors or sharded with an index). */
export function loadNaiveHF(dir: string): NaiveHFModel {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) fail(`${dir}: no config.json`);
  const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const tensors = readSafetensorsFolder(dir);
  // GPT2LMHeadModel saves keys with a `transformer.` prefix; GPT2Model without.
  for (const k of [...tensors.keys()]) {
    if (raw.model_type === 'gpt2' && k.startsWith('transformer.')) {
      tensors.set(k.slice('transformer.'.length), tensors.get(k)!);
      tensors.delete(k);
    }
  }
  return { config: parseHFConfig(raw, tensors.get('wte.weight')?.shape[0]), raw, tensors };
}

/** Weights of one block in canonical [out, in] row-major form (biases zero when absent). */
interface Block {
  ln1: [Float64Array, Float64Array | null];
  ln2: [Float64Array, Float64Array | null];
  ln1Post?: Float64Array;
  ln2Post?: Float64Array;
  Wq: Float64Array; bq: Float64Array; // [H·dh, d]
  Wk: Float64Array; bk: Float64Array; // [H_kv·dh, d]
  Wv: Float64Array; bv: Float64Array;
  Wo: Float64Array; bo: Float64Array; // [d, H·dh]
  Win: Float64Array; bin: Float64Array; // [d_mlp, d] (up, or the only input projection)
  Wgate?: Float64Array; bgate?: Float64Array; // [d_mlp, d]
  Wout: Float64Array; bout: Float64Array; // [d, d_mlp]
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Read the HF-named tensors of every block into canonical form, checking shapes. */
function blocks(m: NaiveHFModel): Block[] {
  const { config: c, tensors } = m;
  const { dModel: d, nHeads: H, nKvHeads: Hkv, dHead: dh, dMlp: M } = c;
  const get = (name: string, shape: number[]): Float64Array => {
    const t = tensors.get(name) ?? fail(`missing tensor ${name}`);
    if (t.shape.join() !== shape.join()) fail(`tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    return t.data;
  };
  const out: Block[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    if (c.modelType === 'gpt2') {
      const h = `h.${l}.`;
      const cattn = get(h + 'attn.c_attn.weight', [d, 3 * d]); // Conv1D [in, out]
      const battn = get(h + 'attn.c_attn.bias', [3 * d]);
      const Wqkv = transpose(cattn, d, 3 * d); // [3d, d]
      out.push({
        ln1: [get(h + 'ln_1.weight', [d]), get(h + 'ln_1.bias', [d])],
        ln2: [get(h + 'ln_2.weight', [d]), get(h + 'ln_2.bias', [d])],
        Wq: Wqkv.slice(0, d * d), Wk: Wqkv.slice(d * d, 2 * d * d), Wv: Wqkv.slice(2 * d * d),
        bq: battn.slice(0, d), bk: battn.slice(d, 2 * d), bv: battn.slice(2 * d),
        Wo: transpose(get(h + 'attn.c_proj.weight', [d, d]), d, d), bo: get(h + 'attn.c_proj.bias', [d]),
        Win: transpose(get(h + 'mlp.c_fc.weight', [d, M]), d, M), bin: get(h + 'mlp.c_fc.bias', [M]),
        Wout: transpose(get(h + 'mlp.c_proj.weight', [M, d]), M, d), bout: get(h + 'mlp.c_proj.bias', [d]),
      });
    } else if (c.modelType === 'gpt_neox') {
      const h = `gpt_neox.layers.${l}.`;
      const W = get(h + 'attention.query_key_value.weight', [3 * d, d]);
      const b = get(h + 'attention.query_key_value.bias', [3 * d]);
      // Rows interleaved per head: [head, q|k|v, d_head].
      const part = (s: number): [Float64Array, Float64Array] => {
        const w = new Float64Array(d * d);
        const bb = new Float64Array(d);
        for (let hd = 0; hd < H; hd++) {
          for (let i = 0; i < dh; i++) {
            const src = hd * 3 * dh + s * dh + i;
            const dst = hd * dh + i;
            bb[dst] = b[src];
            for (let j = 0; j < d; j++) w[dst * d + j] = W[src * d + j];
          }
        }
        return [w, bb];
      };
      const [Wq, bq] = part(0), [Wk, bk] = part(1), [Wv, bv] = part(2);
      out.push({
        ln1: [get(h + 'input_layernorm.weight', [d]), get(h + 'input_layernorm.bias', [d])],
        ln2: [get(h + 'post_attention_layernorm.weight', [d]), get(h + 'post_attention_layernorm.bias', [d])],
        Wq, bq, Wk, bk, Wv, bv,
        Wo: get(h + 'attention.dense.weight', [d, d]), bo: get(h + 'attention.dense.bias', [d]),
        Win: get(h + 'mlp.dense_h_to_4h.weight', [M, d]), bin: get(h + 'mlp.dense_h_to_4h.bias', [M]),
        Wout: get(h + 'mlp.dense_4h_to_h.weight', [d, M]), bout: get(h + 'mlp.dense_4h_to_h.bias', [d]),
      });
    } else {
      const h = `model.layers.${l}.`;
      const qkvBias = c.modelType === 'qwen2' || m.raw.attention_bias === true;
      const oBias = c.modelType !== 'qwen2' && m.raw.attention_bias === true;
      const mlpBias = m.raw.mlp_bias === true;
      const bias = (name: string, n: number, on: boolean) => (on ? get(name, [n]) : new Float64Array(n));
      const blk: Block = {
        ln1: [get(h + 'input_layernorm.weight', [d]), null],
        ln2: [get(h + (c.modelType === 'gemma2' ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight'), [d]), null],
        Wq: get(h + 'self_attn.q_proj.weight', [H * dh, d]), bq: bias(h + 'self_attn.q_proj.bias', H * dh, qkvBias),
        Wk: get(h + 'self_attn.k_proj.weight', [Hkv * dh, d]), bk: bias(h + 'self_attn.k_proj.bias', Hkv * dh, qkvBias),
        Wv: get(h + 'self_attn.v_proj.weight', [Hkv * dh, d]), bv: bias(h + 'self_attn.v_proj.bias', Hkv * dh, qkvBias),
        Wo: get(h + 'self_attn.o_proj.weight', [d, H * dh]), bo: bias(h + 'self_attn.o_proj.bias', d, oBias),
        Wgate: get(h + 'mlp.gate_proj.weight', [M, d]), bgate: bias(h + 'mlp.gate_proj.bias', M, mlpBias),
        Win: get(h + 'mlp.up_proj.weight', [M, d]), bin: bias(h + 'mlp.up_proj.bias', M, mlpBias),
        Wout: get(h + 'mlp.down_proj.weight', [d, M]), bout: bias(h + 'mlp.down_proj.bias', d, mlpBias),
      };
      if (c.modelType === 'gemma2') {
        blk.ln1Post = get(h + 'post_attention_layernorm.weight', [d]);
        blk.ln2Post = get(h + 'post_feedforward_layernorm.weight', [d]);
      }
      out.push(blk);
    }
  }
  return out;
}

/** Names of the embedding, final norm and unembedding tensors. */
function topNames(m: NaiveHFModel): { embed: string; pos?: string; norm: [string, string | null]; unembed: string } {
  const t = m.config.modelType;
  if (t === 'gpt2') return { embed: 'wte.weight', pos: 'wpe.weight', norm: ['ln_f.weight', 'ln_f.bias'], unembed: m.raw.tie_word_embeddings === false ? 'lm_head.weight' : 'wte.weight' };
  if (t === 'gpt_neox') return { embed: 'gpt_neox.embed_in.weight', norm: ['gpt_neox.final_layer_norm.weight', 'gpt_neox.final_layer_norm.bias'], unembed: 'embed_out.weight' };
  // llama family: tie_word_embeddings defaults to false in LlamaConfig / MistralConfig, true in Gemma2Config;
  // Qwen2Config defaults to false as well.
  const tied = t === 'gemma2' ? m.raw.tie_word_embeddings !== false : m.raw.tie_word_embeddings === true;
  return { embed: 'model.embed_tokens.weight', norm: ['model.norm.weight', null], unembed: tied ? 'model.embed_tokens.weight' : 'lm_head.weight' };
}

const cache0 = new WeakMap<NaiveHFModel, Block[]>();

/**
 * Run the model on one token sequence in float64.
 * @param tokens token ids, length ≤ max positions.
 */
export function naiveHF(m: NaiveHFModel, tokens: number[], opts: NaiveHFOptions = {}): NaiveHFResult {
  const c = m.config;
  const { dModel: D, nHeads: H, nKvHeads: Hkv, dHead: Dh, dMlp: M, vocab: V } = c;
  const P = tokens.length;
  if (P === 0) fail('empty token list');
  if (P > c.maxPositions) fail(`${P} tokens exceed max positions ${c.maxPositions}`);
  let blks = cache0.get(m);
  if (!blks) {
    blks = blocks(m);
    cache0.set(m, blks);
  }
  const top = topNames(m);
  const tensor = (n: string, shape: number[]): Float64Array => {
    const t = m.tensors.get(n) ?? fail(`missing tensor ${n}`);
    if (t.shape.join() !== shape.join()) fail(`tensor ${n} has shape [${t.shape}], expected [${shape}]`);
    return t.data;
  };
  const cache = new Map<string, NaiveActivation>();
  const wanted = opts.record === true ? undefined : new Set(opts.record || []);

  /** Pass an activation through hook point `name`: replace, perturb, record. */
  const hp = (name: string, data: Float64Array, shape: number[]): Float64Array => {
    let cur = data;
    if (opts.hook) {
      const rep = opts.hook(name, { shape: [...shape], data: Float64Array.from(data) });
      if (rep) {
        if (rep.shape.join() !== shape.join() || rep.data.length !== data.length) {
          fail(`hook for "${name}" returned shape [${rep.shape}] but [${shape}] is needed`);
        }
        cur = Float64Array.from(rep.data);
      }
    }
    const add = opts.perturb?.[name];
    if (add) {
      if (add.length !== cur.length) fail(`perturbation for "${name}" has ${add.length} values, the activation ${cur.length}`);
      cur = cur.map((v, i) => v + add[i]);
    }
    if (opts.record && (!wanted || wanted.has(name))) cache.set(name, { shape: [...shape], data: Float64Array.from(cur) });
    return cur;
  };

  /** y[p, o] = Σ_i W[o, i] x[p, i] + b[o], W [out, in]. */
  const linear = (x: Float64Array, nIn: number, W: Float64Array, b: Float64Array | undefined, nOut: number): Float64Array => {
    const y = new Float64Array(P * nOut);
    for (let p = 0; p < P; p++) {
      for (let o = 0; o < nOut; o++) {
        let acc = b ? b[o] : 0;
        for (let i = 0; i < nIn; i++) acc += W[o * nIn + i] * x[p * nIn + i];
        y[p * nOut + o] = acc;
      }
    }
    return y;
  };

  const norm = (x: Float64Array, prefix: string, w: Float64Array, b: Float64Array | null): Float64Array => {
    const scale = new Float64Array(P);
    const centred = new Float64Array(P * D);
    for (let p = 0; p < P; p++) {
      let mean = 0;
      if (c.norm === 'layer') {
        for (let i = 0; i < D; i++) mean += x[p * D + i];
        mean /= D;
      }
      let v = 0;
      for (let i = 0; i < D; i++) {
        const u = x[p * D + i] - mean;
        centred[p * D + i] = u;
        v += u * u;
      }
      scale[p] = Math.sqrt(v / D + c.eps);
    }
    const s = hp(`${prefix}.hook_scale`, scale, [P, 1]);
    const out = new Float64Array(P * D);
    if (c.norm === 'layer') {
      for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) out[p * D + i] = (centred[p * D + i] / s[p]) * w[i] + (b ? b[i] : 0);
      return hp(`${prefix}.hook_normalized`, out, [P, D]);
    }
    for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) out[p * D + i] = centred[p * D + i] / s[p];
    const n = hp(`${prefix}.hook_normalized`, out, [P, D]);
    const gain = c.norm === 'gemma_rms' ? w.map((u) => 1 + u) : w;
    return n.map((u, k) => u * gain[k % D]);
  };

  /** Rotary on the first rotaryDim dims of each head of x [pos, nh, dh]. */
  const rotary = (x: Float64Array, nh: number): Float64Array => {
    const R = c.rotaryDim;
    const half = R / 2;
    const out = Float64Array.from(x);
    for (let p = 0; p < P; p++) {
      for (let hd = 0; hd < nh; hd++) {
        const o = (p * nh + hd) * Dh;
        for (let j = 0; j < R; j++) {
          const f = j % half; // cos/sin = cat(freqs, freqs)
          const ang = p * (1 / c.ropeTheta ** ((2 * f) / R));
          const rot = j < half ? -x[o + j + half] : x[o + j - half]; // rotate_half = cat(-x2, x1)
          out[o + j] = x[o + j] * Math.cos(ang) + rot * Math.sin(ang);
        }
      }
    }
    return out;
  };

  const act = activationFn(c.act);
  const E = tensor(top.embed, [V, D]);
  const embed = new Float64Array(P * D);
  tokens.forEach((t, p) => {
    if (!Number.isInteger(t) || t < 0 || t >= V) fail(`token ${t} at position ${p} is outside [0, ${V})`);
    for (let i = 0; i < D; i++) embed[p * D + i] = E[t * D + i] * c.embedScale;
  });
  let resid = hp('hook_embed', embed, [P, D]);
  if (top.pos) {
    const W = tensor(top.pos, [c.maxPositions, D]);
    const pe = hp('hook_pos_embed', W.slice(0, P * D), [P, D]);
    resid = resid.map((v, i) => v + pe[i]);
  }

  const nRep = H / Hkv;
  for (let l = 0; l < c.nLayers; l++) {
    const B = `blocks.${l}`;
    const w = blks[l];
    resid = hp(`${B}.hook_resid_pre`, resid, [P, D]);
    const x1 = norm(resid, `${B}.ln1`, w.ln1[0], w.ln1[1]);
    let q = hp(`${B}.attn.hook_q`, linear(x1, D, w.Wq, w.bq, H * Dh), [P, H, Dh]);
    let k = hp(`${B}.attn.hook_k`, linear(x1, D, w.Wk, w.bk, Hkv * Dh), [P, Hkv, Dh]);
    const v = hp(`${B}.attn.hook_v`, linear(x1, D, w.Wv, w.bv, Hkv * Dh), [P, Hkv, Dh]);
    if (c.rotaryDim > 0) {
      q = hp(`${B}.attn.hook_rot_q`, rotary(q, H), [P, H, Dh]);
      k = hp(`${B}.attn.hook_rot_k`, rotary(k, Hkv), [P, Hkv, Dh]);
    }
    const win = c.window[l];
    const scores = new Float64Array(H * P * P); // [head, q, k]
    for (let hd = 0; hd < H; hd++) {
      const kh = Math.floor(hd / nRep); // repeat_kv
      for (let qi = 0; qi < P; qi++) {
        for (let ki = 0; ki < P; ki++) {
          let s = 0;
          for (let j = 0; j < Dh; j++) s += q[(qi * H + hd) * Dh + j] * k[(ki * Hkv + kh) * Dh + j];
          s *= c.attnScale;
          if (c.attnSoftcap !== null) s = c.attnSoftcap * Math.tanh(s / c.attnSoftcap);
          const visible = ki <= qi && (win === null || ki > qi - win);
          scores[(hd * P + qi) * P + ki] = visible ? s : -Infinity;
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
        const kh = Math.floor(hd / nRep);
        for (let j = 0; j < Dh; j++) {
          let acc = 0;
          for (let ki = 0; ki < P; ki++) acc += pat[(hd * P + qi) * P + ki] * v[(ki * Hkv + kh) * Dh + j];
          zRaw[(qi * H + hd) * Dh + j] = acc;
        }
      }
    }
    const z = hp(`${B}.attn.hook_z`, zRaw, [P, H, Dh]);
    let attn = linear(z, H * Dh, w.Wo, w.bo, D);
    if (w.ln1Post) attn = norm(attn, `${B}.ln1_post`, w.ln1Post, null);
    const attnOut = hp(`${B}.hook_attn_out`, attn, [P, D]);

    let mlpIn: Float64Array;
    let mid: Float64Array | undefined;
    if (c.parallel) {
      mlpIn = resid;
    } else {
      mid = hp(`${B}.hook_resid_mid`, resid.map((u, i) => u + attnOut[i]), [P, D]);
      mlpIn = mid;
    }
    const x2 = norm(mlpIn, `${B}.ln2`, w.ln2[0], w.ln2[1]);
    let post: Float64Array;
    if (c.gated) {
      const pre = hp(`${B}.mlp.hook_pre`, linear(x2, D, w.Wgate!, w.bgate, M), [P, M]);
      const lin = hp(`${B}.mlp.hook_pre_linear`, linear(x2, D, w.Win, w.bin, M), [P, M]);
      post = hp(`${B}.mlp.hook_post`, pre.map((u, i) => act(u) * lin[i]), [P, M]);
    } else {
      const pre = hp(`${B}.mlp.hook_pre`, linear(x2, D, w.Win, w.bin, M), [P, M]);
      post = hp(`${B}.mlp.hook_post`, pre.map(act), [P, M]);
    }
    let mlp = linear(post, M, w.Wout, w.bout, D);
    if (w.ln2Post) mlp = norm(mlp, `${B}.ln2_post`, w.ln2Post, null);
    const mlpOut = hp(`${B}.hook_mlp_out`, mlp, [P, D]);
    const base = mid ?? resid.map((u, i) => u + attnOut[i]); // parallel: x + attn + mlp
    resid = hp(`${B}.hook_resid_post`, base.map((u, i) => u + mlpOut[i]), [P, D]);
  }

  const fin = norm(resid, 'ln_final', tensor(top.norm[0], [D]), top.norm[1] ? tensor(top.norm[1], [D]) : null);
  const U = tensor(top.unembed, [V, D]);
  const logits: number[][] = [];
  for (let p = 0; p < P; p++) {
    const row = new Array<number>(V);
    for (let t = 0; t < V; t++) {
      let acc = 0;
      for (let i = 0; i < D; i++) acc += fin[p * D + i] * U[t * D + i];
      row[t] = c.finalSoftcap !== null ? c.finalSoftcap * Math.tanh(acc / c.finalSoftcap) : acc;
    }
    logits.push(row);
  }
  return { logits, cache };
}

/**
 * Central finite difference of a metric w.r.t. every entry of the activation at hook `name`:
 * (metric(a + h·e_i) − metric(a − h·e_i)) / 2h for each i, in float64.
 * @param metric maps the logits of each sequence of `batch` to one number.
 * @returns the gradient estimate, one Float64Array per sequence, shaped like the activation.
 */
export function finiteDifferenceGradient(
  m: NaiveHFModel,
  batch: number[][],
  name: string,
  metric: (logits: number[][][]) => number,
  h = 1e-5,
): Float64Array[] {
  const sizes = batch.map((tokens) => {
    const a = naiveHF(m, tokens, { record: [name] }).cache.get(name) ?? fail(`no hook point "${name}"`);
    return a.data.length;
  });
  const plain = batch.map((tokens) => naiveHF(m, tokens).logits);
  const run = (b: number, i: number, eps: number) => metric(batch.map((tokens, j) => {
    if (j !== b) return plain[j];
    const e = new Float64Array(sizes[b]);
    e[i] = eps;
    return naiveHF(m, tokens, { perturb: { [name]: e } }).logits;
  }));
  return sizes.map((n, b) => {
    const g = new Float64Array(n);
    for (let i = 0; i < n; i++) g[i] = (run(b, i, h) - run(b, i, -h)) / (2 * h);
    return g;
  });
}
