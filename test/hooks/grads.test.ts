/**
 * runWithCacheAndGrads: gradients at hook points against central finite differences of the metric
 * computed by the independent float64 forward (test/helpers/naive-gpt2.ts), and LRP rules leaving
 * every forward value bit-for-bit unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer, type MetricFn } from '../../src/hooks/hooked-transformer.ts';
import { allHookNames } from '../../src/hooks/hook-points.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { mulberry32, randomStateDict } from '../../src/models/state-dict.ts';
import { RULE_PRESETS, type RuleSet } from '../../src/rules/rules.ts';
import { naiveGpt2 } from '../helpers/naive-gpt2.ts';

const CFG: BaseConfig = { nLayers: 2, nHeads: 4, dModel: 32, dHead: 8, dMlp: 64, nCtx: 10, dVocab: 37, eps: 1e-5, act: 'gelu_new' };
const SD = randomStateDict(CFG, { seed: 11, std: 0.15, biasStd: 0.1, lnGainStd: 0.2 });
const TOKENS = [
  [4, 30, 2, 19, 11, 36],
  [8, 8, 21, 0, 27, 5],
];
const [B, P] = [TOKENS.length, TOKENS[0].length];
/** Per prompt: the answer and wrong token for a logit difference at the last position. */
const ANSWERS: Array<[number, number]> = [
  [7, 13],
  [22, 3],
];
const model = HookedTransformer.fromStateDict(CFG, SD);
afterAll(() => model.dispose());

/** Sum over the batch of logit(answer) − logit(wrong) at the last position. */
const metric: MetricFn = (logits) =>
  tf.tidy(() => {
    const last = tf.squeeze(tf.slice(logits, [0, P - 1, 0], [B, 1, CFG.dVocab]), [1]); // [b, vocab]
    const w = new Float32Array(B * CFG.dVocab);
    ANSWERS.forEach(([a, c], b) => {
      w[b * CFG.dVocab + a] += 1;
      w[b * CFG.dVocab + c] -= 1;
    });
    return tf.sum(tf.mul(last, tf.tensor2d(w, [B, CFG.dVocab]))) as tf.Scalar;
  });

/** The same metric for prompt b from float64 logits. */
function naiveMetric(logits: number[][], b: number): number {
  const [a, c] = ANSWERS[b];
  return logits[P - 1][a] - logits[P - 1][c];
}

/** Central difference of prompt b's metric w.r.t. element `idx` (no batch axis) of hook `name`. */
function finiteDiff(name: string, b: number, idx: number, h: number): number {
  const run = (delta: number) =>
    naiveMetric(
      naiveGpt2(CFG, SD, TOKENS[b], {
        hook: (n, v) => {
          if (n !== name) return;
          const d = Float64Array.from(v.data);
          d[idx] += delta;
          return { shape: v.shape, data: d };
        },
      }).logits,
      b,
    );
  return (run(h) - run(-h)) / (2 * h);
}

const GRAD_HOOKS = [
  'hook_embed',
  'blocks.0.hook_resid_pre',
  'blocks.1.hook_resid_pre',
  'blocks.0.attn.hook_z',
  'blocks.1.attn.hook_result',
  'blocks.1.attn.hook_q',
  'blocks.0.attn.hook_k',
  'blocks.1.mlp.hook_post',
  'blocks.0.mlp.hook_pre',
  'blocks.0.attn.hook_pattern',
  'blocks.1.attn.hook_attn_scores',
  'blocks.1.ln1.hook_scale',
  'blocks.0.ln2.hook_normalized',
  'blocks.1.hook_resid_post',
  'ln_final.hook_scale',
];

describe('gradients at hooks', () => {
  it('equal central finite differences of the float64 reference metric', () => {
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names: GRAD_HOOKS });
    // The metric value itself matches the reference.
    const refValue = TOKENS.reduce((s, toks, b) => s + naiveMetric(naiveGpt2(CFG, SD, toks).logits, b), 0);
    expect(Math.abs(r.value.dataSync()[0] - refValue)).toBeLessThan(1e-4 * (1 + Math.abs(refValue)));
    const rand = mulberry32(5);
    for (const name of GRAD_HOOKS) {
      const g = r.grads[name];
      expect(g.shape, name).toEqual(r.cache[name].shape);
      const gd = g.dataSync();
      const per = g.size / B;
      const gMax = Math.max(...Array.from(gd, Math.abs));
      expect(gMax, `${name}: gradient is not all zero`).toBeGreaterThan(1e-4);
      // A few random elements plus the largest-gradient element, in both prompts.
      const argmax = Array.from(gd).reduce((best, v, i) => (Math.abs(v) > Math.abs(gd[best]) ? i : best), 0);
      const picks = [argmax, ...Array.from({ length: 4 }, () => Math.floor(rand() * g.size))];
      for (const flat of picks) {
        const b = Math.floor(flat / per);
        const idx = flat % per;
        if (name.endsWith('hook_attn_scores')) {
          // Masked scores (k > q) sit at −1e9 (−∞ in the reference): their gradient is 0 in both.
          const qk = idx % (P * P);
          if (qk % P > Math.floor(qk / P)) {
            expect(gd[flat]).toBe(0);
            continue;
          }
        }
        const fd = finiteDiff(name, b, idx, 1e-3);
        const err = Math.abs(gd[flat] - fd);
        expect(err, `${name}[${b}, ${idx}]: tfjs ${gd[flat]} vs finite difference ${fd}`).toBeLessThanOrEqual(1e-3 * Math.abs(fd) + 2e-4 * gMax + 1e-6);
      }
    }
    tf.dispose([r.logits, r.value]);
    disposeCache(r.cache, r.grads);
  });

  it('logits and cached values of runWithCacheAndGrads equal those of runWithCache', () => {
    const g = model.runWithCacheAndGrads(TOKENS, metric, { names: GRAD_HOOKS });
    const c = model.runWithCache(TOKENS, { names: GRAD_HOOKS });
    expect(Array.from(g.logits.dataSync())).toEqual(Array.from(c.logits.dataSync()));
    for (const n of GRAD_HOOKS) expect(Array.from(g.cache[n].dataSync()), n).toEqual(Array.from(c.cache[n].dataSync()));
    tf.dispose([g.logits, g.value, c.logits]);
    disposeCache(g.cache, g.grads, c.cache);
  });

  it('lastPositionOnly gives the same gradients (ln_final hooks included, at one position)', () => {
    const names = ['blocks.0.hook_resid_pre', 'blocks.1.attn.hook_z', 'ln_final.hook_normalized'];
    const lastMetric: MetricFn = (lg) => metric(lg.shape[1] === P ? lg : (tf.pad(lg, [[0, 0], [P - 1, 0], [0, 0]]) as tf.Tensor3D));
    const full = model.runWithCacheAndGrads(TOKENS, metric, { names });
    const last = model.runWithCacheAndGrads(TOKENS, lastMetric, { names, lastPositionOnly: true });
    expect(last.logits.shape).toEqual([B, 1, CFG.dVocab]);
    expect(last.grads['ln_final.hook_normalized'].shape).toEqual([B, 1, CFG.dModel]);
    for (const n of names.slice(0, 2)) {
      const a = last.grads[n].dataSync();
      const b = full.grads[n].dataSync();
      const mx = Math.max(...Array.from(b, Math.abs));
      a.forEach((v, i) => expect(Math.abs(v - b[i]), n).toBeLessThanOrEqual(1e-5 * mx));
    }
    // ln_final at the last position equals the full run's last position.
    const gl = last.grads['ln_final.hook_normalized'].dataSync();
    const gf = full.grads['ln_final.hook_normalized'].dataSync();
    for (let b = 0; b < B; b++)
      for (let i = 0; i < CFG.dModel; i++) expect(Math.abs(gl[b * CFG.dModel + i] - gf[(b * P + P - 1) * CFG.dModel + i])).toBeLessThan(1e-5);
    tf.dispose([full.logits, full.value, last.logits, last.value]);
    disposeCache(full.cache, full.grads, last.cache, last.grads);
  });

  it('a metric that is not a scalar is rejected with a clear error', () => {
    const before = tf.memory().numTensors;
    expect(() => model.runWithCacheAndGrads(TOKENS, (lg) => tf.sum(lg, -1) as unknown as tf.Scalar, { names: ['blocks.0.hook_resid_pre'] })).toThrow(
      /metric must return a scalar, got shape \[2, 6\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a metric or hook that throws inside the gradient tape leaks nothing, and the next call works', () => {
    const before = tf.memory().numTensors;
    const names = ['blocks.0.hook_resid_pre', 'blocks.1.mlp.hook_post'];
    expect(() =>
      model.runWithCacheAndGrads(
        TOKENS,
        () => {
          throw new Error('metric failed');
        },
        { names },
      ),
    ).toThrow('metric failed');
    expect(tf.memory().numTensors).toBe(before);
    const badHook = { name: 'blocks.1.hook_resid_mid', fn: (x: tf.Tensor) => tf.sum(x, 0) };
    expect(() => model.runWithCacheAndGrads(TOKENS, metric, { names, hooks: [badHook] })).toThrow(/hook at "blocks.1.hook_resid_mid" returned shape/);
    expect(tf.memory().numTensors).toBe(before);
    const ok = model.runWithCacheAndGrads(TOKENS, metric, { names });
    expect(Object.keys(ok.grads)).toEqual(names);
    tf.dispose([ok.logits, ok.value]);
    disposeCache(ok.cache, ok.grads);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an empty list of names is a clear error', () => {
    expect(() => model.runWithCacheAndGrads(TOKENS, metric, { names: [] })).toThrow(/no hook names to take gradients at/);
    expect(() => model.runWithCacheAndGrads(TOKENS, metric, { names: () => false })).toThrow(/no hook names/);
  });

  it('hooks with no path to the metric get zero gradients', () => {
    // Position p < last of the final residual reaches only logits at p; the metric reads the last position.
    const names = ['blocks.1.hook_resid_post', 'blocks.1.attn.hook_k'];
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names });
    const g = r.grads['blocks.1.hook_resid_post'].dataSync();
    for (let b = 0; b < B; b++) for (let p = 0; p < P - 1; p++) for (let i = 0; i < CFG.dModel; i++) expect(g[(b * P + p) * CFG.dModel + i]).toBe(0);
    tf.dispose([r.logits, r.value]);
    disposeCache(r.cache, r.grads);
    // A metric that ignores the logits: value kept, every gradient zero (no tfjs "no path" error).
    const c = model.runWithCacheAndGrads(TOKENS, () => tf.scalar(3), { names });
    expect(c.value.dataSync()[0]).toBe(3);
    for (const n of names) expect(Math.max(...Array.from(c.grads[n].dataSync(), Math.abs))).toBe(0);
    tf.dispose([c.logits, c.value]);
    disposeCache(c.cache, c.grads);
  });
});

describe('rules change only the backward pass', () => {
  const all: RuleSet = { ln: true, identity: true, half: true, ah: true, uniformQK: true, uniformAV: true, softmaxTaylor: true };
  const sets: Array<[string, RuleSet]> = [...Object.entries(RULE_PRESETS), ['all rules', all]];
  const names = allHookNames(CFG).filter((n) => !n.endsWith('hook_result'));

  for (const [label, rules] of sets) {
    it(`${label}: logits, metric and every cached activation are bit-for-bit the no-rules values`, () => {
      const plain = model.runWithCacheAndGrads(TOKENS, metric, { names });
      const ruled = model.runWithCacheAndGrads(TOKENS, metric, { names, rules });
      expect(Array.from(ruled.logits.dataSync())).toEqual(Array.from(plain.logits.dataSync()));
      expect(ruled.value.dataSync()[0]).toBe(plain.value.dataSync()[0]);
      for (const n of names) expect(Array.from(ruled.cache[n].dataSync()), n).toEqual(Array.from(plain.cache[n].dataSync()));
      // ... while the gradients do change (the rules are switched on per call).
      const a = ruled.grads['blocks.0.hook_resid_pre'].dataSync();
      const b = plain.grads['blocks.0.hook_resid_pre'].dataSync();
      expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
      // And the plain forward too.
      const f = model.forward(TOKENS, { rules });
      expect(Array.from(f.dataSync())).toEqual(Array.from(plain.logits.dataSync()));
      tf.dispose([plain.logits, plain.value, ruled.logits, ruled.value, f]);
      disposeCache(plain.cache, plain.grads, ruled.cache, ruled.grads);
    });
  }

  it('switching rules on after plain calls takes effect, and off again restores plain gradients', () => {
    const name = 'blocks.0.mlp.hook_pre';
    const grad = (rules?: RuleSet) => {
      const r = model.runWithCacheAndGrads(TOKENS, metric, { names: [name], rules });
      const g = Array.from(r.grads[name].dataSync());
      tf.dispose([r.logits, r.value]);
      disposeCache(r.cache, r.grads);
      return g;
    };
    const p1 = grad();
    const id = grad({ identity: true });
    const p2 = grad();
    expect(p2).toEqual(p1);
    expect(id).not.toEqual(p1);
  });
});
