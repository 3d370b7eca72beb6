/**
 * Hook-point names (TransformerLens convention) and their activation shapes.
 */
import type { GPT2Config } from '../models/config.ts';

/** Per-block hook suffixes, in forward order. */
export const BLOCK_HOOKS = [
  'hook_resid_pre',
  'ln1.hook_scale',
  'ln1.hook_normalized',
  'attn.hook_q',
  'attn.hook_k',
  'attn.hook_v',
  'attn.hook_attn_scores',
  'attn.hook_pattern',
  'attn.hook_z',
  'attn.hook_result',
  'hook_attn_out',
  'hook_resid_mid',
  'ln2.hook_scale',
  'ln2.hook_normalized',
  'mlp.hook_pre',
  'mlp.hook_post',
  'hook_mlp_out',
  'hook_resid_post',
] as const;

/** Hooks outside the blocks. */
export const GLOBAL_HOOKS = ['hook_embed', 'hook_pos_embed', 'ln_final.hook_scale', 'ln_final.hook_normalized'] as const;

/** Every hook-point name of a model, in forward order. */
export function allHookNames(cfg: GPT2Config): string[] {
  const names: string[] = ['hook_embed', 'hook_pos_embed'];
  for (let l = 0; l < cfg.nLayers; l++) for (const s of BLOCK_HOOKS) names.push(`blocks.${l}.${s}`);
  names.push('ln_final.hook_scale', 'ln_final.hook_normalized');
  return names;
}

/** Parsed hook name: the layer (or undefined for global hooks) and the suffix. */
export interface ParsedHook {
  layer: number | undefined;
  suffix: string;
}

const BLOCK_RE = /^blocks\.(\d+)\.(.+)$/;

/** Parse and validate a hook name; throws with the list of valid suffixes when unknown. */
export function parseHookName(name: string, cfg: GPT2Config): ParsedHook {
  const m = BLOCK_RE.exec(name);
  if (m) {
    const layer = Number(m[1]);
    const suffix = m[2];
    if (layer >= cfg.nLayers) throw new Error(`hook "${name}": layer ${layer} out of range (model has ${cfg.nLayers} layers)`);
    if (!(BLOCK_HOOKS as readonly string[]).includes(suffix)) {
      throw new Error(`unknown hook point "${name}" (block hooks are blocks.{l}.${BLOCK_HOOKS.join(' | ')})`);
    }
    return { layer, suffix };
  }
  if (!(GLOBAL_HOOKS as readonly string[]).includes(name)) {
    throw new Error(`unknown hook point "${name}" (valid: ${GLOBAL_HOOKS.join(', ')}, blocks.{l}.<hook>)`);
  }
  return { layer: undefined, suffix: name };
}

/**
 * The activation shape at a hook point for a batch of `batch` prompts of `pos` tokens.
 * - residual / attn_out / mlp_out / embeddings / normalized: [batch, pos, d_model]
 * - hook_scale: [batch, pos, 1]
 * - q, k, v, z: [batch, pos, head, d_head]
 * - attn_scores, pattern: [batch, head, q_pos, k_pos]
 * - result: [batch, pos, head, d_model]
 * - mlp pre/post: [batch, pos, d_mlp]
 */
export function hookShape(name: string, cfg: GPT2Config, batch: number, pos: number): number[] {
  const { suffix } = parseHookName(name, cfg);
  const tail = suffix.split('.').pop() as string;
  switch (tail) {
    case 'hook_scale':
      return [batch, pos, 1];
    case 'hook_q':
    case 'hook_k':
    case 'hook_v':
    case 'hook_z':
      return [batch, pos, cfg.nHeads, cfg.dHead];
    case 'hook_attn_scores':
    case 'hook_pattern':
      return [batch, cfg.nHeads, pos, pos];
    case 'hook_result':
      return [batch, pos, cfg.nHeads, cfg.dModel];
    case 'hook_pre':
    case 'hook_post':
      return [batch, pos, cfg.dMlp];
    default:
      return [batch, pos, cfg.dModel];
  }
}
