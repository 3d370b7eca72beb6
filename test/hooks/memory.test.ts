/**
 * tfjs memory: every public call of HookedTransformer returns `tf.memory().numTensors` (and the
 * backend's buffer count) to its baseline once the returned tensors are disposed, also on errors.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { RULE_PRESETS } from '../../src/rules/rules.ts';

const CFG: BaseConfig = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 32, nCtx: 8, dVocab: 30, eps: 1e-5, act: 'gelu' };
const SD = randomStateDict(CFG, { seed: 2 });
const TOKENS = [
  [1, 2, 3, 4, 5],
  [6, 7, 8, 9, 10],
];
const metric = (lg: tf.Tensor3D) => tf.sum(tf.slice(lg, [0, 4, 3], [2, 1, 1])) as tf.Scalar;

/** Run `f` three times; after each, tensors and backend buffers are back at the baseline. */
function expectNoLeak(f: () => void): void {
  const t0 = tf.memory().numTensors;
  const d0 = tf.backend().numDataIds();
  for (let i = 0; i < 3; i++) {
    f();
    expect(tf.memory().numTensors, `run ${i + 1}: tensors`).toBe(t0);
    expect(tf.backend().numDataIds(), `run ${i + 1}: backend buffers`).toBe(d0);
  }
}

describe('memory', () => {
  const model = HookedTransformer.fromStateDict(CFG, SD);

  it('building and disposing a model frees every tensor', () => {
    expectNoLeak(() => HookedTransformer.fromStateDict(CFG, SD).dispose());
    expectNoLeak(() => HookedTransformer.fromStateDict(CFG, SD, { trainable: true }).dispose());
  });

  it('two trainable models can exist at once (tfjs variable names are process-global)', () => {
    expectNoLeak(() => {
      const a = HookedTransformer.fromStateDict(CFG, SD, { trainable: true });
      const b = HookedTransformer.fromStateDict(CFG, SD, { trainable: true });
      a.dispose();
      b.dispose();
    });
  });

  it('forward (plain, with rules, resumed from a residual)', () => {
    expectNoLeak(() => model.forward(TOKENS).dispose());
    expectNoLeak(() => model.forward(TOKENS, { rules: RULE_PRESETS.attnlrp }).dispose());
    const resid = tf.randomNormal([2, 5, CFG.dModel]);
    expectNoLeak(() => model.forward(undefined, { startAtLayer: 1, resid }).dispose());
    resid.dispose();
    const tok = tf.tensor2d(TOKENS, [2, 5], 'float32'); // cast inside the call
    expectNoLeak(() => model.forward(tok).dispose());
    tok.dispose();
  });

  it('runWithCache (default names, hook_result, with patch hooks)', () => {
    expectNoLeak(() => {
      const { logits, cache } = model.runWithCache(TOKENS);
      logits.dispose();
      disposeCache(cache);
    });
    expectNoLeak(() => {
      const { logits, cache } = model.runWithCache(TOKENS, {
        names: ['blocks.0.attn.hook_result', 'blocks.1.hook_resid_post'],
        hooks: [{ name: 'blocks.0.attn.hook_z', fn: (z) => tf.mul(z, 0.5) }],
      });
      logits.dispose();
      disposeCache(cache);
    });
  });

  it('runWithHooks with hooks that create tensors', () => {
    expectNoLeak(() =>
      model
        .runWithHooks(TOKENS, [
          { name: 'blocks.0.hook_resid_pre', fn: (x) => tf.add(x, tf.onesLike(x)) },
          { name: 'blocks.1.attn.hook_pattern', fn: (x) => void tf.sum(x) },
        ])
        .dispose(),
    );
  });

  it('runWithCacheAndGrads (plain and with every preset)', () => {
    for (const rules of [undefined, ...Object.values(RULE_PRESETS)]) {
      expectNoLeak(() => {
        const r = model.runWithCacheAndGrads(TOKENS, metric, {
          names: ['blocks.0.hook_resid_pre', 'blocks.1.attn.hook_z', 'blocks.1.attn.hook_pattern', 'blocks.0.mlp.hook_post', 'blocks.1.ln1.hook_scale'],
          rules,
        });
        tf.dispose([r.logits, r.value]);
        disposeCache(r.cache, r.grads);
      });
    }
  });

  it('errors leak nothing: a throwing metric, a bad hook, bad tokens', () => {
    expectNoLeak(() => {
      expect(() =>
        model.runWithCacheAndGrads(
          TOKENS,
          () => {
            throw new Error('boom');
          },
          { names: ['blocks.0.hook_resid_pre'] },
        ),
      ).toThrow('boom');
    });
    expectNoLeak(() => {
      expect(() => model.runWithCacheAndGrads(TOKENS, (lg) => tf.mean(lg, 0) as unknown as tf.Scalar, { names: ['blocks.1.hook_resid_pre'] })).toThrow(/scalar/);
    });
    expectNoLeak(() => {
      expect(() => model.runWithCache(TOKENS, { hooks: [{ name: 'hook_embed', fn: (x) => tf.sum(x) }] })).toThrow(/hook at "hook_embed"/);
    });
    expectNoLeak(() => {
      expect(() => model.forward([[1, 2], [3, 99]])).toThrow(/outside the vocabulary/);
    });
  });
});
