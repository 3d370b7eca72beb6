/**
 * GPT-NeoX / Pythia (`model_type` gpt_neox). Native names (HF Linear [out, in]):
 * - `gpt_neox.embed_in.weight` [V, d], `gpt_neox.final_layer_norm.weight|bias` [d], `embed_out.weight` [V, d]
 * - `gpt_neox.layers.{l}.input_layernorm|post_attention_layernorm.weight|bias` [d]
 * - `gpt_neox.layers.{l}.attention.query_key_value.weight` [3d, d], `.bias` [3d]: rows interleaved
 *   per head, `[head, (q | k | v), d_head]`, i.e. row (h·3 + which)·dh + j
 * - `gpt_neox.layers.{l}.attention.dense.weight` [d, d], `.bias` [d]
 * - `gpt_neox.layers.{l}.mlp.dense_h_to_4h.weight` [m, d], `.bias` [m]; `dense_4h_to_h.weight` [d, m], `.bias` [d]
 * LayerNorm with bias, partial rotary (`rotary_pct` of each head, rotate_half convention),
 * `use_parallel_residual`, untied `embed_out`.
 */
import type { ActivationName, ModelConfig } from '../config.ts';
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

const ACTS: Record<string, ActivationName> = { gelu: 'gelu', gelu_new: 'gelu_new', gelu_fast: 'gelu_new', gelu_pytorch_tanh: 'gelu_tanh', relu: 'relu', silu: 'silu' };

function parseConfig(r: Record<string, unknown>): ModelConfig {
  const nLayers = need(r, ['num_hidden_layers']);
  const nHeads = need(r, ['num_attention_heads']);
  const dModel = need(r, ['hidden_size']);
  mustDivide(nHeads, 'num_attention_heads', dModel, 'hidden_size');
  const dHead = dModel / nHeads;
  const pct = optNum(r, 'rotary_pct', 0.25)!;
  if (!(pct > 0 && pct <= 1)) throw new Error(`config.json: rotary_pct ${pct} must be in (0, 1]`);
  // HF: rotary_ndims = int(head_size * rotary_pct).
  const rotaryDim = Math.floor(dHead * pct);
  if (rotaryDim === 0 || rotaryDim % 2 !== 0) throw new Error(`config.json: rotary_pct ${pct} of head size ${dHead} gives ${rotaryDim} rotary dims; it must be even and positive`);
  refuseRopeScaling(r);
  const actRaw = r.hidden_act ?? 'gelu';
  if (typeof actRaw !== 'string' || !(actRaw in ACTS)) throw new Error(`config.json: hidden_act ${JSON.stringify(actRaw)} is not supported (use one of: ${Object.keys(ACTS).join(', ')})`);
  const bias = optBool(r, 'attention_bias', true);
  const cfg: ModelConfig = {
    modelType: 'gpt_neox',
    nLayers,
    nHeads,
    dModel,
    dHead,
    dMlp: need(r, ['intermediate_size']),
    nCtx: need(r, ['max_position_embeddings']),
    dVocab: need(r, ['vocab_size']),
    eps: optNum(r, 'layer_norm_eps', 1e-5)!,
    act: ACTS[actRaw],
    normType: 'layernorm',
    normBias: true,
    positional: 'rotary',
    rotaryDim,
    ropeTheta: optNum(r, 'rotary_emb_base') ?? optNum(r, 'rope_theta', 10000)!,
    nKvHeads: nHeads,
    mlpKind: 'plain',
    parallelAttnMlp: optBool(r, 'use_parallel_residual', true),
    tiedEmbeddings: optBool(r, 'tie_word_embeddings', false),
    unembedBias: false,
    qkvBias: bias,
    attnOutBias: bias,
    mlpBias: true,
    slidingWindowLayers: [],
    embedScale: 1,
    postNorms: false,
  };
  tokenIds(r, cfg);
  checkConfig(cfg, 'config.json');
  return cfg;
}

function configToHF(cfg: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    model_type: 'gpt_neox',
    architectures: ['GPTNeoXForCausalLM'],
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads,
    hidden_size: cfg.dModel,
    intermediate_size: cfg.dMlp,
    max_position_embeddings: cfg.nCtx,
    vocab_size: cfg.dVocab,
    layer_norm_eps: cfg.eps,
    rotary_pct: cfg.rotaryDim / cfg.dHead,
    rotary_emb_base: cfg.ropeTheta,
    hidden_act: cfg.act === 'gelu_tanh' ? 'gelu_pytorch_tanh' : cfg.act,
    use_parallel_residual: cfg.parallelAttnMlp,
    tie_word_embeddings: cfg.tiedEmbeddings,
    attention_bias: cfg.qkvBias,
    torch_dtype: 'float32',
  };
  if (cfg.bosTokenId !== undefined) out.bos_token_id = cfg.bosTokenId;
  if (cfg.eosTokenId !== undefined) out.eos_token_id = cfg.eosTokenId;
  return out;
}

const P = 'gpt_neox.';

function hfTensors(cfg: ModelConfig): Map<string, TensorSpec> {
  const { dModel: d, dMlp: m } = cfg;
  const s = new Map<string, TensorSpec>();
  const w = (n: string, shape: number[]) => s.set(n, { shape, kind: 'matrix' });
  const b = (n: string, shape: number[]) => s.set(n, { shape, kind: 'bias' });
  const g = (n: string, shape: number[]) => s.set(n, { shape, kind: 'normGain' });
  w(P + 'embed_in.weight', [cfg.dVocab, d]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `${P}layers.${l}.`;
    g(p + 'input_layernorm.weight', [d]);
    b(p + 'input_layernorm.bias', [d]);
    g(p + 'post_attention_layernorm.weight', [d]);
    b(p + 'post_attention_layernorm.bias', [d]);
    w(p + 'attention.query_key_value.weight', [3 * d, d]);
    if (cfg.qkvBias) b(p + 'attention.query_key_value.bias', [3 * d]);
    w(p + 'attention.dense.weight', [d, d]);
    if (cfg.attnOutBias) b(p + 'attention.dense.bias', [d]);
    w(p + 'mlp.dense_h_to_4h.weight', [m, d]);
    b(p + 'mlp.dense_h_to_4h.bias', [m]);
    w(p + 'mlp.dense_4h_to_h.weight', [d, m]);
    b(p + 'mlp.dense_4h_to_h.bias', [d]);
  }
  g(P + 'final_layer_norm.weight', [d]);
  b(P + 'final_layer_norm.bias', [d]);
  if (!cfg.tiedEmbeddings) w('embed_out.weight', [cfg.dVocab, d]);
  return s;
}

/** Buffers NeoX checkpoints may store (causal mask, masked bias, rotary inverse frequencies). */
const BUFFER_RE = /\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/;

function normalizeNames(raw: StateDict, cfg: ModelConfig, source: string): StateDict {
  const out: StateDict = new Map();
  let head;
  for (const [name, t] of raw) {
    if (BUFFER_RE.test(name)) continue;
    if (name === 'embed_out.weight' && cfg.tiedEmbeddings) {
      head = t;
      continue;
    }
    const n = name === 'embed_out.weight' || name.startsWith(P) ? name : P + name;
    if (out.has(n)) throw new Error(`${source}: tensor "${n}" appears both with and without the "${P}" prefix`);
    out.set(n, t);
  }
  resolveTiedHead(out, head, 'embed_out.weight', P + 'embed_in.weight', source);
  return out;
}

/** Row of head h, dim j of q (0), k (1) or v (2) in the interleaved fused weight. */
const qkvRow = (dh: number, which: number) => (h: number, j: number) => (h * 3 + which) * dh + j;

function blockToCanonical(cfg: ModelConfig, sd: StateDict, l: number): StateDict {
  const { nHeads: H, dHead: dh } = cfg;
  const w: StateDict = new Map();
  const p = `${P}layers.${l}.`;
  const c = `blocks.${l}.`;
  w.set(c + 'ln1.w', get(sd, p + 'input_layernorm.weight'));
  w.set(c + 'ln1.b', get(sd, p + 'input_layernorm.bias'));
  const qkv = get(sd, p + 'attention.query_key_value.weight');
  (['Q', 'K', 'V'] as const).forEach((n, which) => {
    w.set(`${c}attn.W_${n}`, headsFromRows(qkv, H, dh, qkvRow(dh, which)));
    if (cfg.qkvBias) w.set(`${c}attn.b_${n}`, headBias(get(sd, p + 'attention.query_key_value.bias'), H, dh, qkvRow(dh, which)));
  });
  w.set(c + 'attn.W_O', outFromLinear(get(sd, p + 'attention.dense.weight'), H, dh));
  if (cfg.attnOutBias) w.set(c + 'attn.b_O', get(sd, p + 'attention.dense.bias'));
  w.set(c + 'ln2.w', get(sd, p + 'post_attention_layernorm.weight'));
  w.set(c + 'ln2.b', get(sd, p + 'post_attention_layernorm.bias'));
  w.set(c + 'mlp.W_in', transpose2d(get(sd, p + 'mlp.dense_h_to_4h.weight')));
  w.set(c + 'mlp.b_in', get(sd, p + 'mlp.dense_h_to_4h.bias'));
  w.set(c + 'mlp.W_out', transpose2d(get(sd, p + 'mlp.dense_4h_to_h.weight')));
  w.set(c + 'mlp.b_out', get(sd, p + 'mlp.dense_4h_to_h.bias'));
  return w;
}

function globalsToCanonical(_cfg: ModelConfig, sd: StateDict): StateDict {
  return new Map([
    ['ln_final.w', get(sd, P + 'final_layer_norm.weight')],
    ['ln_final.b', get(sd, P + 'final_layer_norm.bias')],
  ]);
}

function fromCanonical(cfg: ModelConfig, w: StateDict): StateDict {
  const { dModel: d, dHead: dh } = cfg;
  const sd: StateDict = new Map();
  sd.set(P + 'embed_in.weight', get(w, 'embed.W_E'));
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `${P}layers.${l}.`;
    const c = `blocks.${l}.`;
    sd.set(p + 'input_layernorm.weight', get(w, c + 'ln1.w'));
    sd.set(p + 'input_layernorm.bias', get(w, c + 'ln1.b'));
    const W = new Float32Array(3 * d * d);
    const B = new Float32Array(3 * d);
    (['Q', 'K', 'V'] as const).forEach((n, which) => {
      headsToRows(get(w, `${c}attn.W_${n}`), W, qkvRow(dh, which));
      if (cfg.qkvBias) headBiasInto(get(w, `${c}attn.b_${n}`), B, qkvRow(dh, which));
    });
    sd.set(p + 'attention.query_key_value.weight', { shape: [3 * d, d], data: W });
    if (cfg.qkvBias) sd.set(p + 'attention.query_key_value.bias', { shape: [3 * d], data: B });
    sd.set(p + 'attention.dense.weight', outToLinear(get(w, c + 'attn.W_O')));
    if (cfg.attnOutBias) sd.set(p + 'attention.dense.bias', get(w, c + 'attn.b_O'));
    sd.set(p + 'post_attention_layernorm.weight', get(w, c + 'ln2.w'));
    sd.set(p + 'post_attention_layernorm.bias', get(w, c + 'ln2.b'));
    sd.set(p + 'mlp.dense_h_to_4h.weight', transpose2d(get(w, c + 'mlp.W_in')));
    sd.set(p + 'mlp.dense_h_to_4h.bias', get(w, c + 'mlp.b_in'));
    sd.set(p + 'mlp.dense_4h_to_h.weight', transpose2d(get(w, c + 'mlp.W_out')));
    sd.set(p + 'mlp.dense_4h_to_h.bias', get(w, c + 'mlp.b_out'));
  }
  sd.set(P + 'final_layer_norm.weight', get(w, 'ln_final.w'));
  sd.set(P + 'final_layer_norm.bias', get(w, 'ln_final.b'));
  if (!cfg.tiedEmbeddings) sd.set('embed_out.weight', transpose2d(get(w, 'unembed.W_U')));
  return sd;
}

/** The GPT-NeoX converter. */
export const NEOX: Architecture = {
  modelTypes: ['gpt_neox'],
  parseConfig: (r) => parseConfig(r),
  configToHF,
  hfTensors,
  normalizeNames,
  toCanonical: (cfg, sd) => composeCanonical(NEOX, cfg, sd),
  embedName: P + 'embed_in.weight',
  headName: 'embed_out.weight',
  blockPrefix: (l) => `${P}layers.${l}.`,
  blockToCanonical,
  globalsToCanonical,
  fromCanonical,
};
