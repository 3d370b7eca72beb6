/**
 * LRP rules as backward-pass modifications. Every rule leaves forward values bit-for-bit
 * unchanged (they are `tf.customGrad` ops whose forward is the ordinary op), and only changes the
 * gradient. The rules are read per forward call, so switching them on always takes effect
 * (the reference RelP code fixed the GELU rule at build time; we do not).
 */

/** Which LRP rules the backward pass uses. Unset fields mean "ordinary gradient". */
export interface RuleSet {
  /** LN-rule: the LayerNorm scale 1/σ is constant in backward (every LN, final LN too). */
  ln?: boolean;
  /** Identity-rule: GELU's gradient becomes act(x)/x̃. */
  identity?: boolean;
  /** Half-rule: each factor of a multiplicative gate gets half its gradient. */
  half?: boolean;
  /** AH-rule: attention probabilities are constant in backward (relevance flows through V only). */
  ah?: boolean;
  /** AttnLRP uniform rule on the Q·Kᵀ product: each factor gets half its gradient. */
  uniformQK?: boolean;
  /** AttnLRP uniform rule on the A·V product: each factor gets half its gradient. */
  uniformAV?: boolean;
  /** AttnLRP Taylor rule on softmax: R_in = x ⊙ (R_out − s·ΣR_out), as a gradient R_in / x̃. */
  softmaxTaylor?: boolean;
}

/** Named presets selectable with `--rules`. */
export const RULE_PRESETS = {
  /** RelP paper code default: LN + Identity + Half. */
  relp: { ln: true, identity: true, half: true },
  /** RelP with the AH-rule (attention held constant). */
  'relp-ah': { ln: true, identity: true, half: true, ah: true },
  /** LXT / AttnLRP-style set: LN, Identity, Half, uniform rule on Q·K and A·V, softmax Taylor rule. */
  attnlrp: { ln: true, identity: true, half: true, uniformQK: true, uniformAV: true, softmaxTaylor: true },
} as const satisfies Record<string, RuleSet>;

/** Names of the presets. */
export type RulePresetName = keyof typeof RULE_PRESETS;

/** The empty rule set: plain gradients (AtP). */
export const NO_RULES: RuleSet = Object.freeze({});

/**
 * LRP rules wherever an option takes them (relp, eap-relp, sweeps, circuits, input relevance):
 * a preset name or a rule set of one's own. The one rules type; {@link resolveRules} turns it into a set.
 */
export type Rules = RulePresetName | RuleSet;

/** The preset of a name, with a clear error for unknown names (for strings read from a CLI or a file). */
export function parseRulePreset(name: string): RulePresetName {
  if (!Object.hasOwn(RULE_PRESETS, name)) throw new Error(`unknown rule preset "${name}" (use one of: ${Object.keys(RULE_PRESETS).join(', ')})`);
  return name as RulePresetName;
}

/** Resolve rules into a rule set (default the `relp` preset); an unknown preset name is a clear error. */
export function resolveRules(rules: Rules | undefined): RuleSet {
  if (rules === undefined) return RULE_PRESETS.relp;
  if (typeof rules !== 'string') return rules;
  return RULE_PRESETS[parseRulePreset(rules)];
}

/**
 * The name run files record for rules: a preset's name; for a rule set equal to a preset, that
 * preset's name; otherwise `custom (…)` listing the rules it switches on.
 */
export function rulesName(rules: Rules): string {
  if (typeof rules === 'string') return rules;
  const on = (Object.keys(RULE_LABELS) as (keyof RuleSet)[]).filter((k) => rules[k]);
  for (const [name, set] of Object.entries(RULE_PRESETS) as [RulePresetName, RuleSet][]) {
    const onP = (Object.keys(RULE_LABELS) as (keyof RuleSet)[]).filter((k) => set[k]);
    if (onP.length === on.length && onP.every((k) => rules[k])) return name;
  }
  return `custom (${on.map((k) => RULE_LABELS[k]).join(' + ') || 'no rules'})`;
}

/** True when the set changes no gradient. */
export function isPlainGradient(r: RuleSet): boolean {
  return !(r.ln || r.identity || r.half || r.ah || r.uniformQK || r.uniformAV || r.softmaxTaylor);
}

/** How tables and summaries name each rule (the README's rule table). */
const RULE_LABELS: Record<keyof RuleSet, string> = { ln: 'LN', identity: 'Identity', half: 'Half', ah: 'AH', uniformQK: 'uniform Q·K', uniformAV: 'uniform A·V', softmaxTaylor: 'softmax Taylor' };

/** A preset's name with the rules it switches on, e.g. `relp (LN + Identity + Half)`; another name as it is. */
export function describeRules(name: string): string {
  if (!(name in RULE_PRESETS)) return name;
  const set: RuleSet = RULE_PRESETS[name as RulePresetName];
  const on = (Object.keys(RULE_LABELS) as (keyof RuleSet)[]).filter((k) => set[k]).map((k) => RULE_LABELS[k]);
  return `${name} (${on.join(' + ')})`;
}
