/**
 * GPT-2 (`model_type` gpt2). Native names (a `transformer.` prefix is stripped), Conv1D weights
 * stored [in, out]:
 * - `wte.weight` [V, d], `wpe.weight` [nCtx, d], `ln_f.weight|bias` [d]
 * - `h.{l}.ln_1|ln_2.weight|bias` [d]
 * - `h.{l}.attn.c_attn.weight` [d, 3d] (columns q | k | v, head-major inside each), `.bias` [3d]
 * - `h.{l}.attn.c_proj.weight` [d, d], `.bias` [d]
 * - `h.{l}.mlp.c_fc.weight` [d, m], `.bias` [m]; `h.{l}.mlp.c_proj.weight` [m, d], `.bias` [d]
 * The unembedding is tied to `wte.weight` (an `lm_head.weight` equal to it is accepted), unless
 * config.json says `tie_word_embeddings: false`: then `lm_head.weight` [V, d] is its own tensor.
 */
import { gpt2Defaults, type ActivationName, type ModelConfig } from '../config.ts';
import type { StateDict } from '../state-dict.ts';
import { composeCanonical, get, headBias, headBiasInto, need, optBool, resolveTiedHead, tokenIds, transpose2d, type Architecture, type TensorSpec } from './common.ts';

/** Buffers some GPT-2 checkpoints store beside the weights (causal mask, masked fill value). */
const BUFFER_RE = /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/;

/** Whether a raw GPT-2 tensor name is a buffer that is skipped (before decoding it). */
export function isGpt2Buffer(name: string): boolean {
  return BUFFER_RE.test(name);
}

function parseConfig(r: Record<string, unknown>): ModelConfig {
  const nLayers = need(r, ['n_layer', 'num_hidden_layers']);
  const nHeads = need(r, ['n_head', 'num_attention_heads']);
  const dModel = need(r, ['n_embd', 'hidden_size']);
  const nCtx = need(r, ['n_positions', 'n_ctx', 'max_position_embeddings']);
  const dVocab = need(r, ['vocab_size']);
  const eps = typeof r.layer_norm_epsilon === 'number' ? r.layer_norm_epsilon : 1e-5;
  const dMlp = typeof r.n_inner === 'number' ? r.n_inner : 4 * dModel;
  const actRaw = typeof r.activation_function === 'string' ? r.activation_function : 'gelu_new';
  if (actRaw !== 'gelu_new' && actRaw !== 'gelu') {
    throw new Error(`config.json: activation_function "${actRaw}" is not supported (use "gelu_new" or "gelu")`);
  }
  if (dModel % nHeads !== 0) throw new Error(`config.json: n_embd (${dModel}) is not divisible by n_head (${nHeads})`);
  const cfg = gpt2Defaults({ nLayers, nHeads, dModel, dHead: dModel / nHeads, dMlp, nCtx, dVocab, eps, act: actRaw as ActivationName });
  cfg.tiedEmbeddings = optBool(r, 'tie_word_embeddings', true);
  tokenIds(r, cfg);
  return cfg;
}

function configToHF(cfg: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.nLayers,
    n_head: cfg.nHeads,
    n_embd: cfg.dModel,
    n_inner: cfg.dMlp,
    n_positions: cfg.nCtx,
    n_ctx: cfg.nCtx,
    vocab_size: cfg.dVocab,
    layer_norm_epsilon: cfg.eps,
    activation_function: cfg.act,
    tie_word_embeddings: cfg.tiedEmbeddings,
  };
  if (cfg.bosTokenId !== undefined) out.bos_token_id = cfg.bosTokenId;
  if (cfg.eosTokenId !== undefined) out.eos_token_id = cfg.eosTokenId;
  return out;
}

function hfTensors(cfg: ModelConfig): Map<string, TensorSpec> {
  const d = cfg.dModel;
  const m = new Map<string, TensorSpec>();
  const w = (n: string, shape: number[]) => m.set(n, { shape, kind: 'matrix' });
  const b = (n: string, shape: number[]) => m.set(n, { shape, kind: 'bias' });
  const g = (n: string, shape: number[]) => m.set(n, { shape, kind: 'normGain' });
  w('wte.weight', [cfg.dVocab, d]);
  w('wpe.weight', [cfg.nCtx, d]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}.`;
    g(p + 'ln_1.weight', [d]);
    b(p + 'ln_1.bias', [d]);
    w(p + 'attn.c_attn.weight', [d, 3 * d]);
    b(p + 'attn.c_attn.bias', [3 * d]);
    w(p + 'attn.c_proj.weight', [d, d]);
    b(p + 'attn.c_proj.bias', [d]);
    g(p + 'ln_2.weight', [d]);
    b(p + 'ln_2.bias', [d]);
    w(p + 'mlp.c_fc.weight', [d, cfg.dMlp]);
    b(p + 'mlp.c_fc.bias', [cfg.dMlp]);
    w(p + 'mlp.c_proj.weight', [cfg.dMlp, d]);
    b(p + 'mlp.c_proj.bias', [d]);
  }
  g('ln_f.weight', [d]);
  b('ln_f.bias', [d]);
  if (!cfg.tiedEmbeddings) w('lm_head.weight', [cfg.dVocab, d]);
  return m;
}

function normalizeNames(raw: StateDict, cfg: ModelConfig, source: string): StateDict {
  const out: StateDict = new Map();
  let lmHead;
  for (const [name, t] of raw) {
    if (isGpt2Buffer(name)) continue;
    const canon = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
    if (canon === 'lm_head.weight' && cfg.tiedEmbeddings) {
      lmHead = t;
      continue;
    }
    if (out.has(canon)) throw new Error(`${source}: tensor "${canon}" appears both with and without the "transformer." prefix`);
    out.set(canon, t);
  }
  resolveTiedHead(out, lmHead, 'lm_head.weight', 'wte.weight', source);
  return out;
}

/** c_attn is Conv1D [d, 3d]: as a Linear [3d, d] its row of (which, head h, dim j) is which·d + h·dh + j. */
function blockToCanonical(cfg: ModelConfig, sd: StateDict, l: number): StateDict {
  const { dModel: d, nHeads: H, dHead: dh } = cfg;
  const w: StateDict = new Map();
  const p = `h.${l}.`;
  const c = `blocks.${l}.`;
  w.set(c + 'ln1.w', get(sd, p + 'ln_1.weight'));
  w.set(c + 'ln1.b', get(sd, p + 'ln_1.bias'));
  const cw = get(sd, p + 'attn.c_attn.weight'); // [d, 3d]
  const cb = get(sd, p + 'attn.c_attn.bias'); // [3d]
  // Conv1D [in, out]: W_Q[h][i][j] = cw[i][which·d + h·dh + j].
  const split = (which: number) => {
    const out = new Float32Array(H * d * dh);
    for (let h = 0; h < H; h++) for (let i = 0; i < d; i++) for (let j = 0; j < dh; j++) out[(h * d + i) * dh + j] = cw.data[i * 3 * d + which * d + h * dh + j];
    return { shape: [H, d, dh], data: out };
  };
  w.set(c + 'attn.W_Q', split(0));
  w.set(c + 'attn.W_K', split(1));
  w.set(c + 'attn.W_V', split(2));
  w.set(c + 'attn.b_Q', headBias(cb, H, dh, (h, j) => h * dh + j));
  w.set(c + 'attn.b_K', headBias(cb, H, dh, (h, j) => d + h * dh + j));
  w.set(c + 'attn.b_V', headBias(cb, H, dh, (h, j) => 2 * d + h * dh + j));
  w.set(c + 'attn.W_O', { shape: [H, dh, d], data: get(sd, p + 'attn.c_proj.weight').data });
  w.set(c + 'attn.b_O', get(sd, p + 'attn.c_proj.bias'));
  w.set(c + 'ln2.w', get(sd, p + 'ln_2.weight'));
  w.set(c + 'ln2.b', get(sd, p + 'ln_2.bias'));
  w.set(c + 'mlp.W_in', get(sd, p + 'mlp.c_fc.weight'));
  w.set(c + 'mlp.b_in', get(sd, p + 'mlp.c_fc.bias'));
  w.set(c + 'mlp.W_out', get(sd, p + 'mlp.c_proj.weight'));
  w.set(c + 'mlp.b_out', get(sd, p + 'mlp.c_proj.bias'));
  return w;
}

function globalsToCanonical(_cfg: ModelConfig, sd: StateDict): StateDict {
  return new Map([
    ['pos_embed.W_pos', get(sd, 'wpe.weight')],
    ['ln_final.w', get(sd, 'ln_f.weight')],
    ['ln_final.b', get(sd, 'ln_f.bias')],
  ]);
}

function fromCanonical(cfg: ModelConfig, w: StateDict): StateDict {
  const { dModel: d, nHeads: H, dHead: dh } = cfg;
  const sd: StateDict = new Map();
  sd.set('wte.weight', get(w, 'embed.W_E'));
  sd.set('wpe.weight', get(w, 'pos_embed.W_pos'));
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}.`;
    const c = `blocks.${l}.`;
    sd.set(p + 'ln_1.weight', get(w, c + 'ln1.w'));
    sd.set(p + 'ln_1.bias', get(w, c + 'ln1.b'));
    const cw = new Float32Array(d * 3 * d);
    const cb = new Float32Array(3 * d);
    (['W_Q', 'W_K', 'W_V'] as const).forEach((n, which) => {
      const t = get(w, c + 'attn.' + n).data;
      for (let h = 0; h < H; h++) for (let i = 0; i < d; i++) for (let j = 0; j < dh; j++) cw[i * 3 * d + which * d + h * dh + j] = t[(h * d + i) * dh + j];
      headBiasInto(get(w, c + 'attn.' + n.replace('W_', 'b_')), cb, (h, j) => which * d + h * dh + j);
    });
    sd.set(p + 'attn.c_attn.weight', { shape: [d, 3 * d], data: cw });
    sd.set(p + 'attn.c_attn.bias', { shape: [3 * d], data: cb });
    sd.set(p + 'attn.c_proj.weight', { shape: [d, d], data: get(w, c + 'attn.W_O').data });
    sd.set(p + 'attn.c_proj.bias', get(w, c + 'attn.b_O'));
    sd.set(p + 'ln_2.weight', get(w, c + 'ln2.w'));
    sd.set(p + 'ln_2.bias', get(w, c + 'ln2.b'));
    sd.set(p + 'mlp.c_fc.weight', get(w, c + 'mlp.W_in'));
    sd.set(p + 'mlp.c_fc.bias', get(w, c + 'mlp.b_in'));
    sd.set(p + 'mlp.c_proj.weight', get(w, c + 'mlp.W_out'));
    sd.set(p + 'mlp.c_proj.bias', get(w, c + 'mlp.b_out'));
  }
  sd.set('ln_f.weight', get(w, 'ln_final.w'));
  sd.set('ln_f.bias', get(w, 'ln_final.b'));
  if (!cfg.tiedEmbeddings) sd.set('lm_head.weight', transpose2d(get(w, 'unembed.W_U')));
  return sd;
}

/** The GPT-2 converter. */
export const GPT2: Architecture = {
  modelTypes: ['gpt2'],
  parseConfig: (r) => parseConfig(r),
  configToHF,
  hfTensors,
  normalizeNames,
  toCanonical: (cfg, sd) => composeCanonical(GPT2, cfg, sd),
  embedName: 'wte.weight',
  headName: 'lm_head.weight',
  blockPrefix: (l) => `h.${l}.`,
  blockToCanonical,
  globalsToCanonical,
  fromCanonical,
};
