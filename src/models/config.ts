/**
 * GPT-2 family configuration, read from a Hugging Face `config.json`.
 */

/** Activation functions supported by the GPT-2 family. */
export type ActivationName = 'gelu_new' | 'gelu';

/** Model hyper-parameters in TransformerLens-style names. */
export interface GPT2Config {
  /** Number of transformer blocks (HF `n_layer`). */
  nLayers: number;
  /** Number of attention heads per block (HF `n_head`). */
  nHeads: number;
  /** Residual stream width (HF `n_embd`). */
  dModel: number;
  /** Per-head width, `dModel / nHeads`. */
  dHead: number;
  /** MLP hidden width (HF `n_inner`, default `4 * n_embd`). */
  dMlp: number;
  /** Maximum context length (HF `n_positions`). */
  nCtx: number;
  /** Vocabulary size (HF `vocab_size`). */
  dVocab: number;
  /** LayerNorm epsilon (HF `layer_norm_epsilon`). */
  eps: number;
  /** MLP activation (HF `activation_function`). */
  act: ActivationName;
  /** BOS token id, if the config names one. */
  bosTokenId?: number;
  /** EOS token id, if the config names one. */
  eosTokenId?: number;
}

function need(raw: Record<string, unknown>, keys: string[]): number {
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  throw new Error(`config.json: missing numeric field ${keys.map((k) => `"${k}"`).join(' or ')}`);
}

/**
 * Parse an HF GPT-2 `config.json` object. Throws a clear error for missing fields,
 * unsupported activations, or inconsistent sizes.
 */
export function configFromHF(raw: unknown): GPT2Config {
  if (typeof raw !== 'object' || raw === null) throw new Error('config.json: expected a JSON object');
  const r = raw as Record<string, unknown>;
  if (r.model_type !== undefined && r.model_type !== 'gpt2') {
    throw new Error(`config.json: model_type "${String(r.model_type)}" is not supported (only "gpt2")`);
  }
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
  if (dModel % nHeads !== 0) {
    throw new Error(`config.json: n_embd (${dModel}) is not divisible by n_head (${nHeads})`);
  }
  const cfg: GPT2Config = { nLayers, nHeads, dModel, dHead: dModel / nHeads, dMlp, nCtx, dVocab, eps, act: actRaw };
  if (typeof r.bos_token_id === 'number') cfg.bosTokenId = r.bos_token_id;
  if (typeof r.eos_token_id === 'number') cfg.eosTokenId = r.eos_token_id;
  return cfg;
}

/** Serialise a config back to HF `config.json` fields (model_type gpt2). */
export function configToHF(cfg: GPT2Config): Record<string, unknown> {
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
    tie_word_embeddings: true,
  };
  if (cfg.bosTokenId !== undefined) out.bos_token_id = cfg.bosTokenId;
  if (cfg.eosTokenId !== undefined) out.eos_token_id = cfg.eosTokenId;
  return out;
}
