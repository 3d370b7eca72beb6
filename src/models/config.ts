/**
 * Model configuration: what varies between architectures, as data. Parsed from a Hugging Face
 * `config.json` by the architecture's converter (src/models/architectures/), per `model_type`.
 *
 * {@link BaseConfig} is the shape every architecture shares (TransformerLens-style names); a bare
 * BaseConfig (no `modelType`) is completed with GPT-2's defaults by {@link resolveConfig}.
 */

/** MLP activations. `gelu_new` and `gelu_tanh` (HF `gelu_pytorch_tanh`) are the same tanh form. */
export type ActivationName = 'gelu_new' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

/** Supported HF `model_type`s. */
export const MODEL_TYPES = ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'mistral', 'gemma2'] as const;
/** An HF `model_type` relp can run. */
export type ModelType = (typeof MODEL_TYPES)[number];

/** Norm kinds: LayerNorm (with bias), RMSNorm (w·x/rms), Gemma's RMSNorm ((1+w)·x/rms). */
export type NormType = 'layernorm' | 'rmsnorm' | 'gemma-rmsnorm';

/** The hyper-parameters every architecture has (TransformerLens-style names). */
export interface BaseConfig {
  /** Number of transformer blocks. */
  nLayers: number;
  /** Number of query heads per block. */
  nHeads: number;
  /** Residual stream width. */
  dModel: number;
  /** Per-head width (`dModel / nHeads` unless the config sets `head_dim`). */
  dHead: number;
  /** MLP hidden width. */
  dMlp: number;
  /** Maximum context length. */
  nCtx: number;
  /** Vocabulary size. */
  dVocab: number;
  /** Norm epsilon. */
  eps: number;
  /** MLP activation (the gate activation of a gated MLP). */
  act: ActivationName;
  /** BOS token id, if the config names one. */
  bosTokenId?: number;
  /** EOS token id, if the config names one. */
  eosTokenId?: number;
}

/** @deprecated The old name of {@link BaseConfig}, from when relp ran GPT-2 only. */
export type GPT2Config = BaseConfig;

/** A full model configuration: the shared shape plus everything that varies by architecture. */
export interface ModelConfig extends BaseConfig {
  /** HF `model_type`. */
  modelType: ModelType;
  normType: NormType;
  /** Norms have an additive bias (LayerNorm). */
  normBias: boolean;
  /** Learned absolute positions (`pos_embed.W_pos`) or rotary (RoPE, HF rotate_half convention). */
  positional: 'learned' | 'rotary';
  /** Number of rotated dims per head (`dHead · rotary_pct`, even); 0 for learned positions. */
  rotaryDim: number;
  /** RoPE base θ. */
  ropeTheta: number;
  /** Number of key/value heads (grouped-query attention when < nHeads; divides nHeads). */
  nKvHeads: number;
  /** Plain MLP `act(x W_in) W_out` or gated `(act(x W_gate) ⊙ x W_in) W_out`. */
  mlpKind: 'plain' | 'gated';
  /** Attention and MLP both read resid_pre and are added together (GPT-NeoX `use_parallel_residual`). */
  parallelAttnMlp: boolean;
  /** Unembedding tied to the embedding (`W_U = W_Eᵀ`); else its own `unembed.W_U`. */
  tiedEmbeddings: boolean;
  /** The unembedding has a bias `unembed.b_U`. */
  unembedBias: boolean;
  /** q/k/v projections have biases. */
  qkvBias: boolean;
  /** Attention output projection has a bias. */
  attnOutBias: boolean;
  /** MLP projections have biases. */
  mlpBias: boolean;
  /** Attention scores pass through `cap · tanh(s / cap)` (Gemma-2 `attn_logit_softcapping`). */
  attnSoftcap?: number;
  /** Logits pass through `cap · tanh(z / cap)` (Gemma-2 `final_logit_softcapping`). */
  finalSoftcap?: number;
  /** Sliding-window width: query i sees keys j with i − window < j ≤ i, on the layers below. */
  slidingWindow?: number;
  /** Layers that use the sliding window (empty when there is none). */
  slidingWindowLayers: number[];
  /** Scores are q·k / √queryPreAttnScalar (Gemma-2); default dHead. */
  queryPreAttnScalar?: number;
  /** Embeddings are multiplied by this (Gemma: √d_model rounded to float32, as HF casts it). */
  embedScale: number;
  /** Gemma-2's extra norms after attention and after the MLP (`ln1_post`, `ln2_post`). */
  postNorms: boolean;
}

/** A config as callers may give it: a full ModelConfig or a bare {@link BaseConfig} (GPT-2's defaults fill the rest). */
export type ConfigInput = BaseConfig | ModelConfig;

/** The GPT-2 defaults for everything a bare {@link BaseConfig} does not say. */
export function gpt2Defaults(c: BaseConfig): ModelConfig {
  return {
    ...c,
    modelType: 'gpt2',
    normType: 'layernorm',
    normBias: true,
    positional: 'learned',
    rotaryDim: 0,
    ropeTheta: 10000,
    nKvHeads: c.nHeads,
    mlpKind: 'plain',
    parallelAttnMlp: false,
    tiedEmbeddings: true,
    unembedBias: false,
    qkvBias: true,
    attnOutBias: true,
    mlpBias: true,
    slidingWindowLayers: [],
    embedScale: 1,
    postNorms: false,
  };
}

/** Complete a config: a bare BaseConfig (no `modelType`) gets the GPT-2 defaults. */
export function resolveConfig(c: ConfigInput): ModelConfig {
  return 'modelType' in c && c.modelType !== undefined ? (c as ModelConfig) : gpt2Defaults(c);
}

/** Attention score scale: 1/√queryPreAttnScalar (Gemma-2) or 1/√dHead. */
export function attnScale(cfg: ModelConfig): number {
  return 1 / Math.sqrt(cfg.queryPreAttnScalar ?? cfg.dHead);
}

/** Query heads per key/value head. */
export function kvGroup(cfg: ModelConfig): number {
  return cfg.nHeads / cfg.nKvHeads;
}

/**
 * Check a config's internal consistency; throws naming the field. Converters call it after
 * parsing, and HookedTransformer before building.
 */
export function checkConfig(cfg: ModelConfig, where = 'config'): void {
  const pos = (n: number, f: string) => {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${where}: ${f} must be a positive integer, got ${n}`);
  };
  pos(cfg.nLayers, 'nLayers');
  pos(cfg.nHeads, 'nHeads');
  pos(cfg.dModel, 'dModel');
  pos(cfg.dHead, 'dHead');
  pos(cfg.dMlp, 'dMlp');
  pos(cfg.nCtx, 'nCtx');
  pos(cfg.dVocab, 'dVocab');
  pos(cfg.nKvHeads, 'nKvHeads');
  if (cfg.nHeads % cfg.nKvHeads !== 0) throw new Error(`${where}: nKvHeads (${cfg.nKvHeads}) does not divide nHeads (${cfg.nHeads})`);
  if (cfg.positional === 'rotary' && (cfg.rotaryDim <= 0 || cfg.rotaryDim % 2 !== 0 || cfg.rotaryDim > cfg.dHead)) {
    throw new Error(`${where}: rotaryDim ${cfg.rotaryDim} must be even and in (0, dHead = ${cfg.dHead}]`);
  }
  for (const l of cfg.slidingWindowLayers) {
    if (!Number.isInteger(l) || l < 0 || l >= cfg.nLayers) throw new Error(`${where}: sliding-window layer ${l} is out of range [0, ${cfg.nLayers})`);
  }
  if (cfg.slidingWindowLayers.length && !(cfg.slidingWindow && cfg.slidingWindow > 0)) {
    throw new Error(`${where}: slidingWindowLayers are set but slidingWindow is ${cfg.slidingWindow}`);
  }
}

// The parsers live with the converters; re-exported here so callers need one import.
export { configFromHF, configToHF } from './architectures/index.ts';
