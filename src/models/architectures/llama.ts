/**
 * The Llama family: `llama`, `qwen2`, `mistral` and `gemma2` share one checkpoint layout
 * (HF Linear weights [out, in]):
 * - `model.embed_tokens.weight` [V, d], `model.norm.weight` [d], `lm_head.weight` [V, d] (untied only)
 * - `model.layers.{l}.input_layernorm.weight` [d]
 * - `model.layers.{l}.self_attn.q_proj.weight` [h·dh, d], `k_proj` / `v_proj` [kv·dh, d] (+ `.bias`
 *   for Qwen2, or Llama with `attention_bias`), `o_proj.weight` [d, h·dh]
 * - `model.layers.{l}.post_attention_layernorm.weight` [d]: the MLP's norm for llama/qwen2/mistral,
 *   but Gemma-2's norm *after* attention; Gemma-2 adds `pre_feedforward_layernorm` (the MLP's norm)
 *   and `post_feedforward_layernorm` (after the MLP)
 * - `model.layers.{l}.mlp.gate_proj.weight` / `up_proj.weight` [m, d], `down_proj.weight` [d, m]
 *
 * Differences read from config.json: RMSNorm (Gemma: (1 + w)), SwiGLU (`hidden_act` silu) or
 * GeGLU (Gemma-2 `hidden_activation` gelu_pytorch_tanh), RoPE `rope_theta`, GQA
 * `num_key_value_heads`, `head_dim`, Qwen2's q/k/v biases, tied or untied `lm_head`,
 * Mistral's / Qwen2's sliding window, and Gemma-2's soft-caps, `query_pre_attn_scalar`,
 * √d embedding scale and sliding window on even layers.
 */
import type { ActivationName, ModelConfig, ModelType } from '../config.ts';
import { checkConfig } from '../config.ts';
import type { StateDict } from '../state-dict.ts';
import {
  composeCanonical,
  get,
  headBias,
  headBiasInto,
  headsFromRows,
  headsToRows,
  mustDivide,
  need,
  optBool,
  optNum,
  outFromLinear,
  outToLinear,
  refuseRopeScaling,
  resolveTiedHead,
  tokenIds,
  transpose2d,
  type Architecture,
  type TensorSpec,
} from './common.ts';

const HF_ACT: Record<string, ActivationName> = {
  silu: 'silu',
  swish: 'silu',
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
};

function activation(r: Record<string, unknown>, keys: string[]): ActivationName {
  for (const k of keys) {
    const v = r[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !(v in HF_ACT)) {
      throw new Error(`config.json: ${k} ${JSON.stringify(v)} is not supported (use one of: ${Object.keys(HF_ACT).join(', ')})`);
    }
    return HF_ACT[v];
  }
  return 'silu';
}

/**
 * Which layers use the sliding window.
 * - gemma2: HF Gemma2 sets `sliding_window` on layers with `layer_idx % 2 == 0` (layer 0, 2, ...;
 *   newer configs spell it out in `layer_types`, "sliding_attention" on even indices);
 * - mistral: every layer, when `sliding_window` is a number;
 * - qwen2: layers ≥ `max_window_layers`, only when `use_sliding_window` is true.
 */
function slidingLayers(r: Record<string, unknown>, modelType: ModelType, nLayers: number): { window?: number; layers: number[] } {
  const window = optNum(r, 'sliding_window');
  if (window === undefined) return { layers: [] };
  const all = Array.from({ length: nLayers }, (_, l) => l);
  if (Array.isArray(r.layer_types)) {
    if (r.layer_types.length !== nLayers) throw new Error(`config.json: layer_types has ${r.layer_types.length} entries but num_hidden_layers is ${nLayers}`);
    return { window, layers: all.filter((l) => (r.layer_types as unknown[])[l] === 'sliding_attention') };
  }
  if (modelType === 'gemma2') return { window, layers: all.filter((l) => l % 2 === 0) };
  if (modelType === 'mistral') return { window, layers: all };
  if (modelType === 'qwen2') {
    if (!optBool(r, 'use_sliding_window', false)) return { layers: [] };
    const from = optNum(r, 'max_window_layers', nLayers)!;
    return { window, layers: all.filter((l) => l >= from) };
  }
  return { layers: [] };
}

function parseConfig(r: Record<string, unknown>, modelType: ModelType): ModelConfig {
  const gemma = modelType === 'gemma2';
  const nLayers = need(r, ['num_hidden_layers']);
  const nHeads = need(r, ['num_attention_heads']);
  const dModel = need(r, ['hidden_size']);
  const nKvHeads = optNum(r, 'num_key_value_heads', nHeads)!;
  mustDivide(nKvHeads, 'num_key_value_heads', nHeads, 'num_attention_heads');
  const headDim = optNum(r, 'head_dim');
  if (headDim === undefined) mustDivide(nHeads, 'num_attention_heads', dModel, 'hidden_size');
  const dHead = headDim ?? dModel / nHeads;
  refuseRopeScaling(r);
  const attentionBias = optBool(r, 'attention_bias', false);
  const sliding = slidingLayers(r, modelType, nLayers);
  const cfg: ModelConfig = {
    modelType,
    nLayers,
    nHeads,
    dModel,
    dHead,
    dMlp: need(r, ['intermediate_size']),
    nCtx: need(r, ['max_position_embeddings']),
    dVocab: need(r, ['vocab_size']),
    eps: optNum(r, 'rms_norm_eps', 1e-6)!,
    act: gemma ? activation(r, ['hidden_activation', 'hidden_act']) : activation(r, ['hidden_act']),
    normType: gemma ? 'gemma-rmsnorm' : 'rmsnorm',
    normBias: false,
    positional: 'rotary',
    rotaryDim: dHead,
    ropeTheta: optNum(r, 'rope_theta', 10000)!,
    nKvHeads,
    mlpKind: 'gated',
    parallelAttnMlp: false,
    tiedEmbeddings: optBool(r, 'tie_word_embeddings', gemma),
    unembedBias: false,
    qkvBias: modelType === 'qwen2' || attentionBias,
    attnOutBias: modelType !== 'qwen2' && attentionBias,
    mlpBias: optBool(r, 'mlp_bias', false),
    slidingWindowLayers: sliding.layers,
    embedScale: gemma ? Math.fround(Math.sqrt(dModel)) : 1,
    postNorms: gemma,
  };
  if (sliding.layers.length) cfg.slidingWindow = sliding.window;
  if (gemma) {
    cfg.queryPreAttnScalar = optNum(r, 'query_pre_attn_scalar', 256);
    const ac = optNum(r, 'attn_logit_softcapping');
    const fc = optNum(r, 'final_logit_softcapping');
    if (ac !== undefined) cfg.attnSoftcap = ac;
    if (fc !== undefined) cfg.finalSoftcap = fc;
  }
  tokenIds(r, cfg);
  checkConfig(cfg, 'config.json');
  return cfg;
}

const HF_ARCH: Record<string, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM', gemma2: 'Gemma2ForCausalLM' };
const HF_ACT_NAME: Record<ActivationName, string> = { silu: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_tanh: 'gelu_pytorch_tanh', relu: 'relu' };

function configToHF(cfg: ModelConfig): Record<string, unknown> {
  const gemma = cfg.modelType === 'gemma2';
  const out: Record<string, unknown> = {
    model_type: cfg.modelType,
    architectures: [HF_ARCH[cfg.modelType]],
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads,
    num_key_value_heads: cfg.nKvHeads,
    hidden_size: cfg.dModel,
    head_dim: cfg.dHead,
    intermediate_size: cfg.dMlp,
    max_position_embeddings: cfg.nCtx,
    vocab_size: cfg.dVocab,
    rms_norm_eps: cfg.eps,
    rope_theta: cfg.ropeTheta,
    tie_word_embeddings: cfg.tiedEmbeddings,
    [gemma ? 'hidden_activation' : 'hidden_act']: HF_ACT_NAME[cfg.act],
    torch_dtype: 'float32',
  };
  if (cfg.modelType === 'llama') {
    out.attention_bias = cfg.qkvBias;
    out.mlp_bias = cfg.mlpBias;
  }
  if (cfg.slidingWindow !== undefined && cfg.slidingWindowLayers.length) {
    out.sliding_window = cfg.slidingWindow;
    if (cfg.modelType === 'qwen2') {
      out.use_sliding_window = true;
      out.max_window_layers = cfg.slidingWindowLayers[0];
    }
  } else if (cfg.modelType === 'mistral' || cfg.modelType === 'gemma2') {
    out.sliding_window = null;
  }
  if (gemma) {
    out.query_pre_attn_scalar = cfg.queryPreAttnScalar ?? cfg.dHead;
    out.attn_logit_softcapping = cfg.attnSoftcap ?? null;
    out.final_logit_softcapping = cfg.finalSoftcap ?? null;
    if (cfg.slidingWindow !== undefined) out.layer_types = Array.from({ length: cfg.nLayers }, (_, l) => (cfg.slidingWindowLayers.includes(l) ? 'sliding_attention' : 'full_attention'));
  }
  if (cfg.bosTokenId !== undefined) out.bos_token_id = cfg.bosTokenId;
  if (cfg.eosTokenId !== undefined) out.eos_token_id = cfg.eosTokenId;
  return out;
}

/** HF names of a block's norms, in canonical order: [canonical, native]. */
function norms(cfg: ModelConfig): [string, string][] {
  return cfg.postNorms
    ? [
        ['ln1', 'input_layernorm'],
        ['ln1_post', 'post_attention_layernorm'],
        ['ln2', 'pre_feedforward_layernorm'],
        ['ln2_post', 'post_feedforward_layernorm'],
      ]
    : [
        ['ln1', 'input_layernorm'],
        ['ln2', 'post_attention_layernorm'],
      ];
}

function hfTensors(cfg: ModelConfig): Map<string, TensorSpec> {
  const { dModel: d, nHeads: h, nKvHeads: kv, dHead: dh, dMlp: m } = cfg;
  const s = new Map<string, TensorSpec>();
  const gain = cfg.normType === 'gemma-rmsnorm' ? 'normGainZero' : 'normGain';
  s.set('model.embed_tokens.weight', { shape: [cfg.dVocab, d], kind: 'matrix' });
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    for (const [, n] of norms(cfg)) s.set(`${p}${n}.weight`, { shape: [d], kind: gain });
    for (const [n, rows] of [['q_proj', h * dh], ['k_proj', kv * dh], ['v_proj', kv * dh]] as const) {
      s.set(`${p}self_attn.${n}.weight`, { shape: [rows, d], kind: 'matrix' });
      if (cfg.qkvBias) s.set(`${p}self_attn.${n}.bias`, { shape: [rows], kind: 'bias' });
    }
    s.set(`${p}self_attn.o_proj.weight`, { shape: [d, h * dh], kind: 'matrix' });
    if (cfg.attnOutBias) s.set(`${p}self_attn.o_proj.bias`, { shape: [d], kind: 'bias' });
    for (const [n, shape] of [['gate_proj', [m, d]], ['up_proj', [m, d]], ['down_proj', [d, m]]] as const) {
      s.set(`${p}mlp.${n}.weight`, { shape: [...shape], kind: 'matrix' });
      if (cfg.mlpBias) s.set(`${p}mlp.${n}.bias`, { shape: [shape[0]], kind: 'bias' });
    }
  }
  s.set('model.norm.weight', { shape: [d], kind: gain });
  if (!cfg.tiedEmbeddings) s.set('lm_head.weight', { shape: [cfg.dVocab, d], kind: 'matrix' });
  return s;
}

function normalizeNames(raw: StateDict, cfg: ModelConfig, source: string): StateDict {
  const out: StateDict = new Map();
  let head;
  for (const [name, t] of raw) {
    if (name.endsWith('.rotary_emb.inv_freq')) continue; // a buffer older checkpoints store
    if (name === 'lm_head.weight' && cfg.tiedEmbeddings) {
      head = t;
      continue;
    }
    // Base-model exports (LlamaModel) have no `model.` prefix.
    const n = name === 'lm_head.weight' || name.startsWith('model.') ? name : `model.${name}`;
    if (out.has(n)) throw new Error(`${source}: tensor "${n}" appears both with and without the "model." prefix`);
    out.set(n, t);
  }
  resolveTiedHead(out, head, 'lm_head.weight', 'model.embed_tokens.weight', source);
  return out;
}

const rowsOf = (dh: number) => (h: number, j: number) => h * dh + j;

function blockToCanonical(cfg: ModelConfig, sd: StateDict, l: number): StateDict {
  const { nHeads: H, nKvHeads: KV, dHead: dh } = cfg;
  const w: StateDict = new Map();
  const p = `model.layers.${l}.`;
  const c = `blocks.${l}.`;
  for (const [cn, n] of norms(cfg)) w.set(`${c}${cn}.w`, get(sd, `${p}${n}.weight`));
  for (const [cn, n, nh] of [['Q', 'q_proj', H], ['K', 'k_proj', KV], ['V', 'v_proj', KV]] as const) {
    w.set(`${c}attn.W_${cn}`, headsFromRows(get(sd, `${p}self_attn.${n}.weight`), nh, dh, rowsOf(dh)));
    if (cfg.qkvBias) w.set(`${c}attn.b_${cn}`, headBias(get(sd, `${p}self_attn.${n}.bias`), nh, dh, rowsOf(dh)));
  }
  w.set(`${c}attn.W_O`, outFromLinear(get(sd, `${p}self_attn.o_proj.weight`), H, dh));
  if (cfg.attnOutBias) w.set(`${c}attn.b_O`, get(sd, `${p}self_attn.o_proj.bias`));
  w.set(`${c}mlp.W_gate`, transpose2d(get(sd, `${p}mlp.gate_proj.weight`)));
  w.set(`${c}mlp.W_in`, transpose2d(get(sd, `${p}mlp.up_proj.weight`)));
  w.set(`${c}mlp.W_out`, transpose2d(get(sd, `${p}mlp.down_proj.weight`)));
  if (cfg.mlpBias) {
    w.set(`${c}mlp.b_gate`, get(sd, `${p}mlp.gate_proj.bias`));
    w.set(`${c}mlp.b_in`, get(sd, `${p}mlp.up_proj.bias`));
    w.set(`${c}mlp.b_out`, get(sd, `${p}mlp.down_proj.bias`));
  }
  return w;
}

function globalsToCanonical(_cfg: ModelConfig, sd: StateDict): StateDict {
  return new Map([['ln_final.w', get(sd, 'model.norm.weight')]]);
}

function fromCanonical(cfg: ModelConfig, w: StateDict): StateDict {
  const { dModel: d, dHead: dh } = cfg;
  const sd: StateDict = new Map();
  sd.set('model.embed_tokens.weight', get(w, 'embed.W_E'));
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const c = `blocks.${l}.`;
    for (const [cn, n] of norms(cfg)) sd.set(`${p}${n}.weight`, get(w, `${c}${cn}.w`));
    for (const [cn, n] of [['Q', 'q_proj'], ['K', 'k_proj'], ['V', 'v_proj']] as const) {
      const heads = get(w, `${c}attn.W_${cn}`);
      const rows = heads.shape[0] * dh;
      const W = new Float32Array(rows * d);
      headsToRows(heads, W, rowsOf(dh));
      sd.set(`${p}self_attn.${n}.weight`, { shape: [rows, d], data: W });
      if (cfg.qkvBias) {
        const b = new Float32Array(rows);
        headBiasInto(get(w, `${c}attn.b_${cn}`), b, rowsOf(dh));
        sd.set(`${p}self_attn.${n}.bias`, { shape: [rows], data: b });
      }
    }
    sd.set(`${p}self_attn.o_proj.weight`, outToLinear(get(w, `${c}attn.W_O`)));
    if (cfg.attnOutBias) sd.set(`${p}self_attn.o_proj.bias`, get(w, `${c}attn.b_O`));
    sd.set(`${p}mlp.gate_proj.weight`, transpose2d(get(w, `${c}mlp.W_gate`)));
    sd.set(`${p}mlp.up_proj.weight`, transpose2d(get(w, `${c}mlp.W_in`)));
    sd.set(`${p}mlp.down_proj.weight`, transpose2d(get(w, `${c}mlp.W_out`)));
    if (cfg.mlpBias) {
      sd.set(`${p}mlp.gate_proj.bias`, get(w, `${c}mlp.b_gate`));
      sd.set(`${p}mlp.up_proj.bias`, get(w, `${c}mlp.b_in`));
      sd.set(`${p}mlp.down_proj.bias`, get(w, `${c}mlp.b_out`));
    }
  }
  sd.set('model.norm.weight', get(w, 'ln_final.w'));
  if (!cfg.tiedEmbeddings) sd.set('lm_head.weight', transpose2d(get(w, 'unembed.W_U')));
  return sd;
}

/** The Llama-family converter (llama, qwen2, mistral, gemma2). */
export const LLAMA: Architecture = {
  modelTypes: ['llama', 'qwen2', 'mistral', 'gemma2'],
  parseConfig,
  configToHF,
  hfTensors,
  normalizeNames,
  toCanonical: (cfg, sd) => composeCanonical(LLAMA, cfg, sd),
  embedName: 'model.embed_tokens.weight',
  headName: 'lm_head.weight',
  blockPrefix: (l) => `model.layers.${l}.`,
  blockToCanonical,
  globalsToCanonical,
  fromCanonical,
};
