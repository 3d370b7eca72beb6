/**
 * Hook-point names (TransformerLens convention) and their activation shapes, per architecture.
 *
 * Every block has, in forward order (kv = key/value heads; [b, p, ...] = [batch, pos, ...]):
 * - `hook_resid_pre` [b, p, d_model]
 * - `ln1.hook_scale` [b, p, 1], `ln1.hook_normalized` [b, p, d_model]
 * - `attn.hook_q` [b, p, head, d_head], `attn.hook_k` / `attn.hook_v` [b, p, kv_head, d_head]
 * - `attn.hook_rot_q` [b, p, head, d_head], `attn.hook_rot_k` [b, p, kv_head, d_head] (rotary models only)
 * - `attn.hook_attn_scores`, `attn.hook_pattern` [b, head, q_pos, k_pos]
 * - `attn.hook_z` [b, p, head, d_head], `attn.hook_result` [b, p, head, d_model] (computed only when hooked)
 * - `ln1_post.hook_scale|hook_normalized` (Gemma-2: the norm after attention)
 * - `hook_attn_out` [b, p, d_model]
 * - `hook_resid_mid` [b, p, d_model] (sequential blocks only; parallel blocks have none)
 * - `hook_mlp_in` [b, p, d_model]: the residual the MLP's norm reads (resid_mid, or resid_pre for parallel blocks)
 * - `ln2.hook_scale`, `ln2.hook_normalized`
 * - `mlp.hook_pre` [b, p, d_mlp] (the gate pre-activation for gated MLPs), `mlp.hook_pre_linear`
 *   [b, p, d_mlp] (gated only: the up projection), `mlp.hook_post` [b, p, d_mlp]
 * - `ln2_post.hook_scale|hook_normalized` (Gemma-2: the norm after the MLP)
 * - `hook_mlp_out`, `hook_resid_post` [b, p, d_model]
 * With the forward option `splitQkvInput` (TransformerLens `use_split_qkv_input`) also:
 * - `attn.hook_q_input` [b, p, head, d_model], `attn.hook_k_input` / `hook_v_input` [b, p, kv_head, d_model]
 * - `ln1.hook_scale_q|k|v` [b, p, head|kv_head, 1], `ln1.hook_normalized_q|k|v` [b, p, head|kv_head, d_model]
 *   (and then no `ln1.hook_scale` / `ln1.hook_normalized`).
 * Outside the blocks: `hook_embed`, `hook_pos_embed` (learned positions only), `ln_final.hook_scale`,
 * `ln_final.hook_normalized`.
 */
import { resolveConfig, type ConfigInput, type ModelConfig } from '../models/config.ts';

/** Per-block hook suffixes of a config, in forward order (without the split-input ones). */
export function blockHooks(cfg: ConfigInput): string[] {
  const c = resolveConfig(cfg);
  const s = ['hook_resid_pre', 'ln1.hook_scale', 'ln1.hook_normalized', 'attn.hook_q', 'attn.hook_k', 'attn.hook_v'];
  if (c.positional === 'rotary') s.push('attn.hook_rot_q', 'attn.hook_rot_k');
  s.push('attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z', 'attn.hook_result');
  if (c.postNorms) s.push('ln1_post.hook_scale', 'ln1_post.hook_normalized');
  s.push('hook_attn_out');
  if (!c.parallelAttnMlp) s.push('hook_resid_mid');
  s.push('hook_mlp_in', 'ln2.hook_scale', 'ln2.hook_normalized', 'mlp.hook_pre');
  if (c.mlpKind === 'gated') s.push('mlp.hook_pre_linear');
  s.push('mlp.hook_post');
  if (c.postNorms) s.push('ln2_post.hook_scale', 'ln2_post.hook_normalized');
  s.push('hook_mlp_out', 'hook_resid_post');
  return s;
}

/** Block hooks that exist only with the `splitQkvInput` forward option. */
export const SPLIT_QKV_HOOKS = [
  'attn.hook_q_input',
  'attn.hook_k_input',
  'attn.hook_v_input',
  'ln1.hook_scale_q',
  'ln1.hook_scale_k',
  'ln1.hook_scale_v',
  'ln1.hook_normalized_q',
  'ln1.hook_normalized_k',
  'ln1.hook_normalized_v',
] as const;

/** Hooks outside the blocks. */
export function globalHooks(cfg: ConfigInput): string[] {
  const c = resolveConfig(cfg);
  return c.positional === 'learned' ? ['hook_embed', 'hook_pos_embed', 'ln_final.hook_scale', 'ln_final.hook_normalized'] : ['hook_embed', 'ln_final.hook_scale', 'ln_final.hook_normalized'];
}

/** Every hook-point name of a model, in forward order (split-input hooks excluded). */
export function allHookNames(cfg: ConfigInput): string[] {
  const c = resolveConfig(cfg);
  const g = globalHooks(c);
  const names: string[] = g.filter((n) => !n.startsWith('ln_final'));
  const bh = blockHooks(c);
  for (let l = 0; l < c.nLayers; l++) for (const s of bh) names.push(`blocks.${l}.${s}`);
  names.push('ln_final.hook_scale', 'ln_final.hook_normalized');
  return names;
}

/** Parsed hook name: the layer (or undefined for global hooks) and the suffix. */
export interface ParsedHook {
  layer: number | undefined;
  suffix: string;
  /** Exists only with the `splitQkvInput` forward option. */
  split: boolean;
}

const BLOCK_RE = /^blocks\.(\d+)\.(.+)$/;

/** Parse and validate a hook name; throws with the list of valid suffixes when unknown. */
export function parseHookName(name: string, cfg: ConfigInput): ParsedHook {
  const c = resolveConfig(cfg);
  const m = BLOCK_RE.exec(name);
  if (m) {
    const layer = Number(m[1]);
    const suffix = m[2];
    if (layer >= c.nLayers) throw new Error(`hook "${name}": layer ${layer} out of range (model has ${c.nLayers} layers)`);
    const bh = blockHooks(c);
    if (bh.includes(suffix)) return { layer, suffix, split: false };
    if ((SPLIT_QKV_HOOKS as readonly string[]).includes(suffix)) return { layer, suffix, split: true };
    if (suffix === 'hook_resid_mid' && c.parallelAttnMlp) {
      throw new Error(`hook "${name}" does not exist: this ${c.modelType} model has parallel blocks (attention and MLP both read hook_resid_pre), so there is no resid_mid; use blocks.${layer}.hook_mlp_in or hook_resid_pre`);
    }
    throw new Error(`unknown hook point "${name}" for ${c.modelType} (block hooks are blocks.{l}.${bh.join(' | ')}; with splitQkvInput also ${SPLIT_QKV_HOOKS.join(' | ')})`);
  }
  const g = globalHooks(c);
  if (!g.includes(name)) {
    const why = name === 'hook_pos_embed' ? ` (${c.modelType} has rotary positions, no position embedding)` : '';
    throw new Error(`unknown hook point "${name}"${why} (valid: ${g.join(', ')}, blocks.{l}.<hook>)`);
  }
  return { layer: undefined, suffix: name, split: false };
}

/**
 * The activation shape at a hook point for a batch of `batch` prompts of `pos` tokens (see the
 * module comment for the list).
 */
export function hookShape(name: string, cfg: ConfigInput, batch: number, pos: number): number[] {
  const c: ModelConfig = resolveConfig(cfg);
  const { suffix } = parseHookName(name, c);
  const parts = suffix.split('.');
  const tail = parts.pop() as string;
  switch (tail) {
    case 'hook_scale':
      return [batch, pos, 1];
    case 'hook_scale_q':
      return [batch, pos, c.nHeads, 1];
    case 'hook_scale_k':
    case 'hook_scale_v':
      return [batch, pos, c.nKvHeads, 1];
    case 'hook_normalized_q':
    case 'hook_q_input':
      return [batch, pos, c.nHeads, c.dModel];
    case 'hook_normalized_k':
    case 'hook_normalized_v':
    case 'hook_k_input':
    case 'hook_v_input':
      return [batch, pos, c.nKvHeads, c.dModel];
    case 'hook_q':
    case 'hook_rot_q':
    case 'hook_z':
      return [batch, pos, c.nHeads, c.dHead];
    case 'hook_k':
    case 'hook_v':
    case 'hook_rot_k':
      return [batch, pos, c.nKvHeads, c.dHead];
    case 'hook_attn_scores':
    case 'hook_pattern':
      return [batch, c.nHeads, pos, pos];
    case 'hook_result':
      return [batch, pos, c.nHeads, c.dModel];
    case 'hook_pre':
    case 'hook_pre_linear':
    case 'hook_post':
      return [batch, pos, c.dMlp];
    default:
      return [batch, pos, c.dModel];
  }
}
