/**
 * Canonical split weights (TransformerLens-style names), the one layout the model reads whatever
 * the architecture. Converters (architectures/) produce them from HF checkpoints.
 *
 * Shapes (h = nHeads, kv = nKvHeads, d = dModel, dh = dHead, m = dMlp, V = dVocab):
 * - `embed.W_E` [V, d]; `pos_embed.W_pos` [nCtx, d] (learned positions only)
 * - `blocks.{l}.ln1.w` [d], `ln1.b` [d] (LayerNorm only); `ln2.*` likewise;
 *   `ln1_post.w`, `ln2_post.w` [d] (Gemma-2's norms after attention / MLP).
 *   For Gemma's norm, `w` is HF's weight: the model multiplies by (1 + w).
 * - `blocks.{l}.attn.W_Q` [h, d, dh], `attn.W_K` / `attn.W_V` [kv, d, dh],
 *   `attn.b_Q` [h, dh], `attn.b_K` / `attn.b_V` [kv, dh] (when qkvBias),
 *   `attn.W_O` [h, dh, d], `attn.b_O` [d] (when attnOutBias)
 * - `blocks.{l}.mlp.W_in` [d, m] (the up projection), `mlp.W_gate` [d, m] (gated only),
 *   `mlp.W_out` [m, d], `mlp.b_in` / `mlp.b_gate` [m], `mlp.b_out` [d] (when mlpBias)
 * - `ln_final.w` [d], `ln_final.b` [d] (LayerNorm only)
 * - `unembed.W_U` [d, V] (untied only; tied models use `embed.W_E`ᵀ), `unembed.b_U` [V] (when unembedBias)
 */
import type { ModelConfig } from './config.ts';
import { validateTensors } from './architectures/common.ts';
import type { StateDict } from './state-dict.ts';

/** Canonical weights keyed by canonical name. */
export type CanonicalWeights = StateDict;

/** Every canonical tensor a model of `cfg` has, with its shape, in a fixed order. */
export function canonicalShapes(cfg: ModelConfig): Map<string, number[]> {
  const { dModel: d, nHeads: h, nKvHeads: kv, dHead: dh, dMlp: m, dVocab: V } = cfg;
  const s = new Map<string, number[]>();
  const norm = (p: string) => {
    s.set(`${p}.w`, [d]);
    if (cfg.normBias) s.set(`${p}.b`, [d]);
  };
  s.set('embed.W_E', [V, d]);
  if (cfg.positional === 'learned') s.set('pos_embed.W_pos', [cfg.nCtx, d]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}.`;
    norm(p + 'ln1');
    s.set(p + 'attn.W_Q', [h, d, dh]);
    s.set(p + 'attn.W_K', [kv, d, dh]);
    s.set(p + 'attn.W_V', [kv, d, dh]);
    if (cfg.qkvBias) {
      s.set(p + 'attn.b_Q', [h, dh]);
      s.set(p + 'attn.b_K', [kv, dh]);
      s.set(p + 'attn.b_V', [kv, dh]);
    }
    s.set(p + 'attn.W_O', [h, dh, d]);
    if (cfg.attnOutBias) s.set(p + 'attn.b_O', [d]);
    if (cfg.postNorms) norm(p + 'ln1_post');
    norm(p + 'ln2');
    if (cfg.mlpKind === 'gated') s.set(p + 'mlp.W_gate', [d, m]);
    s.set(p + 'mlp.W_in', [d, m]);
    if (cfg.mlpBias) {
      if (cfg.mlpKind === 'gated') s.set(p + 'mlp.b_gate', [m]);
      s.set(p + 'mlp.b_in', [m]);
    }
    s.set(p + 'mlp.W_out', [m, d]);
    if (cfg.mlpBias) s.set(p + 'mlp.b_out', [d]);
    if (cfg.postNorms) norm(p + 'ln2_post');
  }
  norm('ln_final');
  if (!cfg.tiedEmbeddings) s.set('unembed.W_U', [d, V]);
  if (cfg.unembedBias) s.set('unembed.b_U', [V]);
  return s;
}

/** Check canonical weights against a config (named errors, as for checkpoints). */
export function validateCanonical(w: CanonicalWeights, cfg: ModelConfig): void {
  validateTensors(w, new Map([...canonicalShapes(cfg)].map(([n, shape]) => [n, { shape }])));
}
