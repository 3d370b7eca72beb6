/**
 * Rule sets: presets and their resolution, and the LRP-modified gradients of the whole model.
 *
 * Each rule is "the ordinary gradient of a model in which some quantity is held at its clean
 * value" (LN scale, attention pattern) or "linearised with a modified slope" (GELU: act(x)/x̃;
 * bilinear products: each factor's half; softmax Taylor: ordinary Jacobian scaled by x/x̃). We
 * build exactly that model from the independent float64 forward (test/helpers/naive-gpt2.ts) via
 * its replacement hooks, take central finite differences, and compare with the tfjs gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer, type MetricFn } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { mulberry32, randomStateDict } from '../../src/models/state-dict.ts';
import { isPlainGradient, NO_RULES, parseRulePreset, resolveRules, RULE_PRESETS, rulesName, type RuleSet, type Rules } from '../../src/rules/rules.ts';
import { geluExact, geluNew, naiveGpt2, type NaiveActivation, type NaiveHook } from '../helpers/naive-gpt2.ts';

describe('presets', () => {
  it('match REFERENCE §1: RelP default {LN, Identity, Half}, relp-ah adds AH, attnlrp adds the uniform and softmax rules', () => {
    expect(RULE_PRESETS.relp).toEqual({ ln: true, identity: true, half: true });
    expect(RULE_PRESETS['relp-ah']).toEqual({ ln: true, identity: true, half: true, ah: true });
    expect(RULE_PRESETS.attnlrp).toEqual({ ln: true, identity: true, half: true, uniformQK: true, uniformAV: true, softmaxTaylor: true });
  });

  it('resolveRules: default relp, preset names, rule sets passed through, unknown names rejected', () => {
    expect(resolveRules(undefined)).toEqual(RULE_PRESETS.relp);
    for (const name of Object.keys(RULE_PRESETS) as Array<keyof typeof RULE_PRESETS>) expect(resolveRules(name)).toEqual(RULE_PRESETS[name]);
    const custom: RuleSet = { ln: true };
    expect(resolveRules(custom)).toBe(custom);
    // Names read from a CLI or a file are strings: a bad one fails with the choices.
    expect(() => resolveRules('relp-AH' as Rules)).toThrow(/unknown rule preset "relp-AH" \(use one of: relp, relp-ah, attnlrp\)/);
    expect(() => parseRulePreset('')).toThrow(/unknown rule preset ""/);
    expect(() => parseRulePreset('toString')).toThrow(/unknown rule preset "toString"/);
  });

  it('rulesName: a preset by its name, a set equal to a preset by that name, another set as custom', () => {
    expect(rulesName('attnlrp')).toBe('attnlrp');
    expect(rulesName({ half: true, identity: true, ln: true })).toBe('relp');
    expect(rulesName({ ln: true, half: true })).toBe('custom (LN + Half)');
    expect(rulesName({})).toBe('custom (no rules)');
  });

  it('isPlainGradient is true only for sets that change nothing', () => {
    expect(isPlainGradient(NO_RULES)).toBe(true);
    expect(isPlainGradient({ ln: false, ah: false })).toBe(true);
    for (const p of Object.values(RULE_PRESETS)) expect(isPlainGradient(p)).toBe(false);
    for (const k of ['ln', 'identity', 'half', 'ah', 'uniformQK', 'uniformAV', 'softmaxTaylor'] as const) expect(isPlainGradient({ [k]: true })).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Model-level rule gradients against finite differences of the frozen / linearised float64 model.

const CFG: BaseConfig = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 48, nCtx: 8, dVocab: 23, eps: 1e-5, act: 'gelu_new' };
const SD = randomStateDict(CFG, { seed: 21, std: 0.25, biasStd: 0.1, lnGainStd: 0.2 });
const TOKENS = [
  [1, 7, 7, 19, 4],
  [12, 0, 22, 3, 9],
];
const [B, P] = [TOKENS.length, TOKENS[0].length];
const ANSWERS: Array<[number, number]> = [
  [5, 17],
  [2, 11],
];
const model = HookedTransformer.fromStateDict(CFG, SD);
afterAll(() => model.dispose());

const metric: MetricFn = (logits) =>
  tf.tidy(() => {
    const w = new Float32Array(B * P * CFG.dVocab);
    ANSWERS.forEach(([a, c], b) => {
      w[(b * P + P - 1) * CFG.dVocab + a] = 1;
      w[(b * P + P - 1) * CFG.dVocab + c] = -1;
    });
    return tf.sum(tf.mul(logits, tf.tensor3d(w, [B, P, CFG.dVocab]))) as tf.Scalar;
  });
const naiveMetric = (logits: number[][], b: number) => logits[P - 1][ANSWERS[b][0]] - logits[P - 1][ANSWERS[b][1]];

const tilde = (x: number) => x + (x >= 0 ? 1e-6 : -1e-6);
const act = CFG.act === 'gelu' ? geluExact : geluNew;

/**
 * A naive hook that turns the float64 forward into the model whose ordinary gradient is the
 * rule-modified one, around the clean activations `clean` of the same prompt.
 */
function frozenModelHook(rules: RuleSet, clean: Map<string, NaiveActivation>, perturb: NaiveHook): NaiveHook {
  const { nHeads: H, dHead: Dh } = CFG;
  const cur = new Map<string, Float64Array>(); // this run's values (after replacement)
  return (name, v) => {
    let out = (perturb(name, v) ?? v) as NaiveActivation;
    const c0 = clean.get(name)?.data;
    const suffix = name.replace(/^blocks\.\d+\./, '');
    const layer = name.startsWith('blocks.') ? name.split('.')[1] : '';
    const from = (s: string) => cur.get(`blocks.${layer}.${s}`) as Float64Array;
    const clean0 = (s: string) => clean.get(`blocks.${layer}.${s}`)!.data;
    if (rules.ln && name.endsWith('hook_scale')) out = { shape: v.shape, data: Float64Array.from(c0!) };
    if (rules.identity && suffix === 'mlp.hook_post') {
      // Affine with slope act(x0)/x̃0: equal to act at the clean point, gradient act(x0)/x̃0.
      const pre = from('mlp.hook_pre');
      const pre0 = clean0('mlp.hook_pre');
      out = { shape: v.shape, data: pre.map((x, i) => act(pre0[i]) + ((x - pre0[i]) * act(pre0[i])) / tilde(pre0[i])) };
    }
    if (rules.uniformQK && suffix === 'attn.hook_attn_scores') {
      const [q, k, q0, k0] = [from('attn.hook_q'), from('attn.hook_k'), clean0('attn.hook_q'), clean0('attn.hook_k')];
      const d = Float64Array.from(v.data);
      for (let h = 0; h < H; h++)
        for (let i = 0; i < P; i++)
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let e = 0; e < Dh; e++) {
              const qi = (i * H + h) * Dh + e;
              const kj = (j * H + h) * Dh + e;
              s += 0.5 * (q[qi] * k0[kj] + q0[qi] * k[kj]);
            }
            d[(h * P + i) * P + j] = s / Math.sqrt(Dh);
          }
      out = { shape: v.shape, data: d };
    }
    if (rules.softmaxTaylor && suffix === 'attn.hook_pattern') {
      // softmax(x0 + (x0/x̃0)(x − x0)): value unchanged at x0, gradient = ordinary · x0/x̃0.
      const x = from('attn.hook_attn_scores');
      const x0 = clean0('attn.hook_attn_scores');
      const d = new Float64Array(v.data.length);
      for (let r = 0; r < H * P; r++) {
        const row = Array.from({ length: P }, (_, j) => {
          const a = x0[r * P + j];
          return a === -Infinity ? -Infinity : a + (a / tilde(a)) * (x[r * P + j] - a);
        });
        const mx = Math.max(...row);
        const e = row.map((t) => Math.exp(t - mx));
        const z = e.reduce((s, t) => s + t, 0);
        e.forEach((t, j) => (d[r * P + j] = t / z));
      }
      out = { shape: v.shape, data: d };
    }
    if (rules.ah && suffix === 'attn.hook_pattern') out = { shape: v.shape, data: Float64Array.from(c0!) };
    if (rules.uniformAV && suffix === 'attn.hook_z') {
      const [A, val, A0, v0] = [from('attn.hook_pattern'), from('attn.hook_v'), clean0('attn.hook_pattern'), clean0('attn.hook_v')];
      const d = new Float64Array(v.data.length);
      for (let i = 0; i < P; i++)
        for (let h = 0; h < H; h++)
          for (let e = 0; e < Dh; e++) {
            let s = 0;
            for (let j = 0; j < P; j++) {
              const a = (h * P + i) * P + j;
              const vv = (j * H + h) * Dh + e;
              s += 0.5 * (A[a] * v0[vv] + A0[a] * val[vv]);
            }
            d[(i * H + h) * Dh + e] = s;
          }
      out = { shape: v.shape, data: d };
    }
    cur.set(name, out.data);
    return out === v ? undefined : out;
  };
}

/** Central difference of prompt b's metric w.r.t. element idx of `hook`, in the rule-frozen float64 model. */
function frozenFiniteDiff(rules: RuleSet, hook: string, b: number, idx: number, h = 1e-4): number {
  const clean = naiveGpt2(CFG, SD, TOKENS[b], { record: true }).cache;
  const run = (delta: number) => {
    const perturb: NaiveHook = (n, v) => {
      if (n !== hook) return;
      const d = Float64Array.from(v.data);
      d[idx] += delta;
      return { shape: v.shape, data: d };
    };
    return naiveMetric(naiveGpt2(CFG, SD, TOKENS[b], { hook: frozenModelHook(rules, clean, perturb) }).logits, b);
  };
  return (run(h) - run(-h)) / (2 * h);
}

const CHECK_HOOKS = ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre', 'blocks.0.attn.hook_v', 'blocks.1.attn.hook_q', 'blocks.0.mlp.hook_pre'];

const RULE_CASES: Array<[string, RuleSet]> = [
  ['ln (LN scale held constant)', { ln: true }],
  ['identity (GELU slope act(x)/x̃)', { identity: true }],
  ['ah (attention pattern held constant)', { ah: true }],
  ['uniformQK', { uniformQK: true }],
  ['uniformAV', { uniformAV: true }],
  ['softmaxTaylor', { softmaxTaylor: true }],
  ['preset relp', RULE_PRESETS.relp],
  ['preset relp-ah', RULE_PRESETS['relp-ah']],
  ['preset attnlrp', RULE_PRESETS.attnlrp],
];

describe('rule-modified gradients of the model = gradients of the frozen / linearised float64 model', () => {
  for (const [label, rules] of RULE_CASES) {
    it(label, () => {
      const r = model.runWithCacheAndGrads(TOKENS, metric, { names: CHECK_HOOKS, rules });
      const plain = model.runWithCacheAndGrads(TOKENS, metric, { names: CHECK_HOOKS });
      const rand = mulberry32(label.length);
      let changed = 0;
      for (const hook of CHECK_HOOKS) {
        const g = r.grads[hook].dataSync();
        const gPlain = plain.grads[hook].dataSync();
        const per = g.length / B;
        const gMax = Math.max(...Array.from(g, Math.abs));
        // Elements at the last position (the metric's), plus random ones.
        const lastPos = hook.includes('mlp') ? CFG.dMlp : CFG.dModel;
        const picks = [per - 1, per - Math.floor(lastPos / 2), ...Array.from({ length: 3 }, () => Math.floor(rand() * per))];
        for (const b of [0, 1]) {
          for (const idx of picks) {
            const fd = frozenFiniteDiff(rules, hook, b, idx);
            const got = g[b * per + idx];
            expect(Math.abs(got - fd), `${label} ${hook}[${b}, ${idx}]: tfjs ${got} vs frozen-model FD ${fd}`).toBeLessThanOrEqual(2e-3 * Math.abs(fd) + 5e-4 * gMax + 1e-6);
          }
        }
        changed = Math.max(changed, ...Array.from(g, (v, i) => Math.abs(v - gPlain[i])));
      }
      if (label === 'softmaxTaylor') {
        // In gradient form R_in/x̃ = x ⊙ (ordinary softmax gradient)/x̃, i.e. the ordinary gradient up
        // to the 1e-6 stabiliser (as in LXT's efficient AttnLRP, which leaves softmax unmodified).
        expect(changed).toBeLessThan(1e-4);
      } else {
        // Every other rule changes some gradient here (the test would be vacuous otherwise).
        expect(changed, `${label} changes the gradients`).toBeGreaterThan(1e-4);
      }
      tf.dispose([r.logits, r.value, plain.logits, plain.value]);
      disposeCache(r.cache, r.grads, plain.cache, plain.grads);
    });
  }

  it('attnlrp in the last layer scales the {ln, identity} gradients at q, k by 1/4 and at v by 1/2 (LXT efficient mode)', () => {
    const names = ['blocks.1.attn.hook_q', 'blocks.1.attn.hook_k', 'blocks.1.attn.hook_v'];
    const a = model.runWithCacheAndGrads(TOKENS, metric, { names, rules: RULE_PRESETS.attnlrp });
    const base = model.runWithCacheAndGrads(TOKENS, metric, { names, rules: { ln: true, identity: true } });
    for (const [n, f] of [
      [names[0], 0.25],
      [names[1], 0.25],
      [names[2], 0.5],
    ] as const) {
      const ga = a.grads[n].dataSync();
      const gb = base.grads[n].dataSync();
      const mx = Math.max(...Array.from(gb, Math.abs));
      ga.forEach((v, i) => expect(Math.abs(v - f * gb[i]), n).toBeLessThanOrEqual(1e-4 * mx + 1e-3 * Math.abs(gb[i])));
    }
    tf.dispose([a.logits, a.value, base.logits, base.value]);
    disposeCache(a.cache, a.grads, base.cache, base.grads);
  });

  it('with the AH rule, q and k get no gradient; with the LN rule, hook_scale gets none', () => {
    const names = ['blocks.0.attn.hook_q', 'blocks.1.attn.hook_k', 'blocks.1.ln2.hook_scale', 'ln_final.hook_scale'];
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names, rules: { ah: true, ln: true } });
    for (const n of names) expect(Math.max(...Array.from(r.grads[n].dataSync(), Math.abs)), n).toBe(0);
    tf.dispose([r.logits, r.value]);
    disposeCache(r.cache, r.grads);
  });
});
