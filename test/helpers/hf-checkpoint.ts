/**
 * Random Hugging Face checkpoint folders (config.json + safetensors) for every architecture relp
 * supports, with the HF NATIVE tensor names, layouts and config keys of each `model_type`:
 * `gpt2`, `gpt_neox` (Pythia), `llama`, `qwen2`, `mistral`, `gemma2`.
 *
 * Self-contained on purpose (no relp code): the references that read these folders
 * (naive-hf.ts, test/reference/hf_reference.py) must stay independent of the code they judge.
 *
 * Every value is rounded to 8 significant bits (zero below 2^-10), so it is exact in F32, F16
 * and BF16: one seed gives the same model in every dtype. Norm weights are random around 1
 * (around 0 for Gemma's `1 + w`), so a norm applied wrongly shows in the logits. Seeded:
 * the same options always write the same bytes.
 *
 * Layouts written (PyTorch `nn.Linear` is [out, in]; GPT-2's Conv1D is [in, out]):
 * - gpt2: `wte`, `wpe`, `h.{l}.ln_1`, `h.{l}.attn.c_attn` [d, 3d] (q|k|v columns), `attn.c_proj`,
 *   `ln_2`, `mlp.c_fc` [d, d_mlp], `mlp.c_proj`, `ln_f` (+ `lm_head.weight` when untied).
 * - gpt_neox: `gpt_neox.embed_in`, `gpt_neox.layers.{l}.input_layernorm`, `post_attention_layernorm`,
 *   `attention.query_key_value` [3d, d] with rows interleaved per head as [head, q|k|v, d_head],
 *   `attention.dense`, `mlp.dense_h_to_4h`, `mlp.dense_4h_to_h`, `gpt_neox.final_layer_norm`, `embed_out`.
 * - llama / qwen2 / mistral: `model.embed_tokens`, `model.layers.{l}.input_layernorm`,
 *   `self_attn.{q,k,v,o}_proj` (q [H·dh, d], k/v [H_kv·dh, d], o [d, H·dh]; qwen2: q/k/v biases),
 *   `post_attention_layernorm`, `mlp.{gate,up,down}_proj`, `model.norm` (+ `lm_head` when untied).
 * - gemma2: as llama plus `pre_feedforward_layernorm`, `post_feedforward_layernorm`; tied.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensorsFolder, type StDtype, type StTensor } from './hf-safetensors.ts';

/** Architectures (HF `model_type`) this helper writes. */
export type HFModelType = 'gpt2' | 'gpt_neox' | 'llama' | 'qwen2' | 'mistral' | 'gemma2';

/** All model types, for `it.each`. */
export const HF_MODEL_TYPES: readonly HFModelType[] = ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'mistral', 'gemma2'];

/** Shape and options of a random checkpoint; every field has a small per-type default. */
export interface HFCheckpointOptions {
  modelType: HFModelType;
  /** Seed of the weights (default 1). */
  seed?: number;
  nLayers?: number;
  dModel?: number;
  nHeads?: number;
  /** Key/value heads (llama, qwen2, mistral, gemma2); must divide nHeads. */
  nKvHeads?: number;
  /** Head size; written as `head_dim` for gemma2 (always) and llama/mistral (when given). */
  headDim?: number;
  dMlp?: number;
  vocab?: number;
  maxPositions?: number;
  /** Std of the weights (biases use half); default 0.3. */
  std?: number;
  /** Norm epsilon (`layer_norm_epsilon`, `layer_norm_eps` or `rms_norm_eps`). */
  eps?: number;
  /** `hidden_act` / `activation_function` / gemma2 `hidden_activation`. */
  act?: string;
  /** `tie_word_embeddings` (gpt_neox and gemma2 ignore it: always untied / tied). */
  tieWordEmbeddings?: boolean;
  /** `rope_theta` (llama family, gemma2) or `rotary_emb_base` (gpt_neox). */
  ropeTheta?: number;
  /** gpt_neox `rotary_pct` (default 0.5: half of each head rotates). */
  rotaryPct?: number;
  /** gpt_neox `use_parallel_residual` (default true, as Pythia). */
  parallelResidual?: boolean;
  /** gemma2 (default 4) and mistral (default null: no window) `sliding_window`. */
  slidingWindow?: number | null;
  /** gemma2 `attn_logit_softcapping` (default 2, small enough to matter). null: off. */
  attnSoftcap?: number | null;
  /** gemma2 `final_logit_softcapping` (default 3). null: off. */
  finalSoftcap?: number | null;
  /** gemma2 `query_pre_attn_scalar` (default 6, deliberately not head_dim). */
  queryPreAttnScalar?: number;
  /** llama / mistral `attention_bias` (biases on q, k, v and o). */
  attentionBias?: boolean;
  /** Every bias is zero (and LayerNorm biases): for conservation tests. */
  zeroBias?: boolean;
  /** Storage dtype (default F32). */
  dtype?: Exclude<StDtype, 'BOOL'>;
  /** Split over this many shards with `model.safetensors.index.json`. */
  shards?: number;
  /** gpt2: prefix every key with `transformer.` (as GPT2LMHeadModel saves). */
  prefix?: boolean;
  /**
   * Also write the non-parameter buffers that older checkpoints carry and loaders must ignore:
   * gpt2 `h.{l}.attn.bias` / `masked_bias`, gpt_neox `attention.bias` (BOOL), `masked_bias`,
   * `rotary_emb.inv_freq`, llama-family `self_attn.rotary_emb.inv_freq`.
   */
  buffers?: boolean;
}

/** A written checkpoint: its config and the exact tensor values stored. */
export interface HFCheckpoint {
  dir: string;
  config: Record<string, unknown>;
  /** name -> values as stored (exact in every dtype). */
  tensors: Map<string, StTensor>;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Round to 8 significant bits (zero below 2^-10): exact in F32, F16 and BF16 alike. */
function quantize(v: number): number {
  if (Math.abs(v) < 2 ** -10) return 0;
  const step = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 7);
  return Math.round(v / step) * step;
}

type Kind = 'w' | 'b' | 'norm1' | 'norm0' | 'ln_b';

/** Resolved shape of a checkpoint (defaults applied). */
interface Shape {
  L: number; d: number; H: number; Hkv: number; dh: number; M: number; V: number; T: number;
}

function resolveShape(o: HFCheckpointOptions): Shape {
  const t = o.modelType;
  const gated = t === 'llama' || t === 'qwen2' || t === 'mistral' || t === 'gemma2';
  const d = o.dModel ?? 16;
  const H = o.nHeads ?? (t === 'gpt_neox' ? 2 : 4);
  const dh = o.headDim ?? (t === 'gemma2' ? 8 : d / H);
  const Hkv = gated ? (o.nKvHeads ?? 2) : H;
  const shape = { L: o.nLayers ?? 2, d, H, Hkv, dh, M: o.dMlp ?? (gated ? 2 * d : 4 * d), V: o.vocab ?? 50, T: o.maxPositions ?? 32 };
  if (!Number.isInteger(dh)) throw new Error(`hf-checkpoint: dModel ${d} is not a multiple of nHeads ${H}; give headDim`);
  if (!gated && dh * H !== d) throw new Error(`hf-checkpoint: ${t} needs nHeads·headDim = dModel`);
  if (H % Hkv !== 0) throw new Error(`hf-checkpoint: nKvHeads ${Hkv} does not divide nHeads ${H}`);
  return shape;
}

/** The config.json an HF checkpoint of this type and shape carries. */
export function hfConfig(o: HFCheckpointOptions): Record<string, unknown> {
  const { L, d, H, Hkv, dh, M, V, T } = resolveShape(o);
  const common = { vocab_size: V, transformers_version: '4.44.0', torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[o.dtype ?? 'F32'] };
  switch (o.modelType) {
    case 'gpt2':
      return {
        model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: L, n_head: H, n_embd: d, n_inner: M,
        n_positions: T, n_ctx: T, layer_norm_epsilon: o.eps ?? 1e-5, activation_function: o.act ?? 'gelu_new',
        tie_word_embeddings: o.tieWordEmbeddings ?? true, scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false,
        reorder_and_upcast_attn: false, attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0, initializer_range: 0.02,
        bos_token_id: V - 1, eos_token_id: V - 1, ...common,
      };
    case 'gpt_neox':
      return {
        model_type: 'gpt_neox', architectures: ['GPTNeoXForCausalLM'], num_hidden_layers: L, num_attention_heads: H,
        hidden_size: d, intermediate_size: M, max_position_embeddings: T, rotary_pct: o.rotaryPct ?? 0.5,
        rotary_emb_base: o.ropeTheta ?? 10000, layer_norm_eps: o.eps ?? 1e-5, hidden_act: o.act ?? 'gelu',
        use_parallel_residual: o.parallelResidual ?? true, tie_word_embeddings: false, attention_bias: true,
        attention_dropout: 0, hidden_dropout: 0, initializer_range: 0.02, use_cache: true, bos_token_id: 0, eos_token_id: 0, ...common,
      };
    case 'llama':
    case 'mistral':
    case 'qwen2': {
      const base: Record<string, unknown> = {
        model_type: o.modelType,
        architectures: [{ llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[o.modelType]],
        num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: Hkv, hidden_size: d, intermediate_size: M,
        max_position_embeddings: T, rms_norm_eps: o.eps ?? (o.modelType === 'qwen2' ? 1e-6 : 1e-5),
        rope_theta: o.ropeTheta ?? 10000, hidden_act: o.act ?? 'silu',
        tie_word_embeddings: o.tieWordEmbeddings ?? (o.modelType === 'qwen2'), attention_dropout: 0, initializer_range: 0.02,
        use_cache: true, bos_token_id: 1, eos_token_id: 2, ...common,
      };
      if (o.modelType === 'llama') Object.assign(base, { attention_bias: o.attentionBias ?? false, mlp_bias: false, rope_scaling: null, pretraining_tp: 1 });
      if (o.modelType === 'mistral') Object.assign(base, { sliding_window: o.slidingWindow ?? null });
      if (o.modelType === 'qwen2') Object.assign(base, { use_sliding_window: false, sliding_window: T, max_window_layers: L, rope_scaling: null });
      if (o.headDim !== undefined && o.modelType !== 'qwen2') base.head_dim = dh;
      return base;
    }
    case 'gemma2':
      return {
        model_type: 'gemma2', architectures: ['Gemma2ForCausalLM'], num_hidden_layers: L, num_attention_heads: H,
        num_key_value_heads: Hkv, head_dim: dh, hidden_size: d, intermediate_size: M, max_position_embeddings: T,
        rms_norm_eps: o.eps ?? 1e-6, rope_theta: o.ropeTheta ?? 10000, hidden_act: o.act ?? 'gelu_pytorch_tanh',
        hidden_activation: o.act ?? 'gelu_pytorch_tanh', query_pre_attn_scalar: o.queryPreAttnScalar ?? 6,
        attn_logit_softcapping: o.attnSoftcap === undefined ? 2 : o.attnSoftcap,
        final_logit_softcapping: o.finalSoftcap === undefined ? 3 : o.finalSoftcap,
        sliding_window: o.slidingWindow === undefined ? 4 : o.slidingWindow, cache_implementation: 'hybrid',
        tie_word_embeddings: true, attention_bias: false, attention_dropout: 0, initializer_range: 0.02,
        bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, ...common,
      };
  }
}

/** The random tensors (HF names, HF layouts) of a checkpoint, in a fixed order. */
export function hfTensors(o: HFCheckpointOptions): Map<string, StTensor> {
  const { L, d, H, Hkv, dh, M, V, T } = resolveShape(o);
  const std = o.std ?? 0.3;
  const r = rng(o.seed ?? 1);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const sd = new Map<string, StTensor>();
  const put = (name: string, shape: number[], kind: Kind) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const g = gauss(); // always drawn, so zeroBias does not shift the other weights
      let v = kind === 'w' ? std * g : kind === 'norm1' ? 1 + 0.2 * g : kind === 'norm0' ? 0.2 * g : 0.5 * std * g;
      if (o.zeroBias && (kind === 'b' || kind === 'ln_b')) v = 0;
      data[i] = quantize(v);
    }
    sd.set(name, { shape, data });
  };
  const buffer = (name: string, shape: number[], values: number[], dtype: StDtype) =>
    sd.set(name, { shape, data: Float32Array.from(values), dtype });
  const causal = (n: number) => Array.from({ length: n * n }, (_, i) => (i % n <= Math.floor(i / n) ? 1 : 0));
  const t = o.modelType;

  if (t === 'gpt2') {
    const p = o.prefix ? 'transformer.' : '';
    put(`${p}wte.weight`, [V, d], 'w');
    put(`${p}wpe.weight`, [T, d], 'w');
    for (let l = 0; l < L; l++) {
      const h = `${p}h.${l}.`;
      put(h + 'ln_1.weight', [d], 'norm1');
      put(h + 'ln_1.bias', [d], 'ln_b');
      put(h + 'attn.c_attn.weight', [d, 3 * d], 'w');
      put(h + 'attn.c_attn.bias', [3 * d], 'b');
      put(h + 'attn.c_proj.weight', [d, d], 'w');
      put(h + 'attn.c_proj.bias', [d], 'b');
      put(h + 'ln_2.weight', [d], 'norm1');
      put(h + 'ln_2.bias', [d], 'ln_b');
      put(h + 'mlp.c_fc.weight', [d, M], 'w');
      put(h + 'mlp.c_fc.bias', [M], 'b');
      put(h + 'mlp.c_proj.weight', [M, d], 'w');
      put(h + 'mlp.c_proj.bias', [d], 'b');
      if (o.buffers) {
        buffer(h + 'attn.bias', [1, 1, T, T], causal(T), 'F32');
        buffer(h + 'attn.masked_bias', [], [-1e4], 'F32');
      }
    }
    put(`${p}ln_f.weight`, [d], 'norm1');
    put(`${p}ln_f.bias`, [d], 'ln_b');
    if (o.tieWordEmbeddings === false) put('lm_head.weight', [V, d], 'w');
    return sd;
  }

  if (t === 'gpt_neox') {
    const rot = Math.floor(dh * (o.rotaryPct ?? 0.5));
    const base = o.ropeTheta ?? 10000;
    put('gpt_neox.embed_in.weight', [V, d], 'w');
    for (let l = 0; l < L; l++) {
      const h = `gpt_neox.layers.${l}.`;
      put(h + 'input_layernorm.weight', [d], 'norm1');
      put(h + 'input_layernorm.bias', [d], 'ln_b');
      put(h + 'post_attention_layernorm.weight', [d], 'norm1');
      put(h + 'post_attention_layernorm.bias', [d], 'ln_b');
      put(h + 'attention.query_key_value.weight', [3 * d, d], 'w'); // rows [head, q|k|v, d_head]
      put(h + 'attention.query_key_value.bias', [3 * d], 'b');
      put(h + 'attention.dense.weight', [d, d], 'w');
      put(h + 'attention.dense.bias', [d], 'b');
      put(h + 'mlp.dense_h_to_4h.weight', [M, d], 'w');
      put(h + 'mlp.dense_h_to_4h.bias', [M], 'b');
      put(h + 'mlp.dense_4h_to_h.weight', [d, M], 'w');
      put(h + 'mlp.dense_4h_to_h.bias', [d], 'b');
      if (o.buffers) {
        buffer(h + 'attention.bias', [1, 1, T, T], causal(T), 'BOOL');
        buffer(h + 'attention.masked_bias', [], [-1e9], 'F32');
        buffer(h + 'attention.rotary_emb.inv_freq', [rot / 2], Array.from({ length: rot / 2 }, (_, i) => 1 / base ** ((2 * i) / rot)), 'F32');
      }
    }
    put('gpt_neox.final_layer_norm.weight', [d], 'norm1');
    put('gpt_neox.final_layer_norm.bias', [d], 'ln_b');
    put('embed_out.weight', [V, d], 'w');
    return sd;
  }

  // llama, qwen2, mistral, gemma2
  const gemma = t === 'gemma2';
  const normKind: Kind = gemma ? 'norm0' : 'norm1';
  const qkvBias = t === 'qwen2' || (o.attentionBias === true && (t === 'llama' || t === 'mistral'));
  const oBias = o.attentionBias === true && (t === 'llama' || t === 'mistral');
  const theta = o.ropeTheta ?? 10000;
  put('model.embed_tokens.weight', [V, d], 'w');
  for (let l = 0; l < L; l++) {
    const h = `model.layers.${l}.`;
    put(h + 'input_layernorm.weight', [d], normKind);
    put(h + 'self_attn.q_proj.weight', [H * dh, d], 'w');
    put(h + 'self_attn.k_proj.weight', [Hkv * dh, d], 'w');
    put(h + 'self_attn.v_proj.weight', [Hkv * dh, d], 'w');
    if (qkvBias) {
      put(h + 'self_attn.q_proj.bias', [H * dh], 'b');
      put(h + 'self_attn.k_proj.bias', [Hkv * dh], 'b');
      put(h + 'self_attn.v_proj.bias', [Hkv * dh], 'b');
    }
    put(h + 'self_attn.o_proj.weight', [d, H * dh], 'w');
    if (oBias) put(h + 'self_attn.o_proj.bias', [d], 'b');
    put(h + 'post_attention_layernorm.weight', [d], normKind);
    if (gemma) {
      put(h + 'pre_feedforward_layernorm.weight', [d], normKind);
      put(h + 'post_feedforward_layernorm.weight', [d], normKind);
    }
    put(h + 'mlp.gate_proj.weight', [M, d], 'w');
    put(h + 'mlp.up_proj.weight', [M, d], 'w');
    put(h + 'mlp.down_proj.weight', [d, M], 'w');
    if (o.buffers) {
      buffer(h + 'self_attn.rotary_emb.inv_freq', [dh / 2], Array.from({ length: dh / 2 }, (_, i) => 1 / theta ** ((2 * i) / dh)), 'F32');
    }
  }
  put('model.norm.weight', [d], normKind);
  const tied = gemma ? true : (o.tieWordEmbeddings ?? (t === 'qwen2'));
  if (!tied) put('lm_head.weight', [V, d], 'w');
  return sd;
}

/**
 * Write a random HF checkpoint of `o.modelType` into `dir` (created if needed).
 * @returns the config and the exact stored tensor values.
 */
export function writeHFCheckpoint(dir: string, o: HFCheckpointOptions): HFCheckpoint {
  const config = hfConfig(o);
  const tensors = hfTensors(o);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensorsFolder(dir, [...tensors], o.dtype ?? 'F32', o.shards ?? 1);
  return { dir, config, tensors };
}
