/**
 * HookedTransformer: hook names and shapes, activations and logits against an independent float64
 * forward (test/helpers/naive-gpt2.ts), reading and replacing hooks, resuming from a cached
 * residual, input validation, and "no hook, no cost".
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { compileHooks } from '../../src/hooks/hook-point.ts';
import { allHookNames, hookShape } from '../../src/hooks/hook-points.ts';
import { disposeCache, getActivation } from '../../src/hooks/activation-cache.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { naiveGpt2, type NaiveActivation } from '../helpers/naive-gpt2.ts';

const CFG: BaseConfig = { nLayers: 2, nHeads: 4, dModel: 32, dHead: 8, dMlp: 96, nCtx: 12, dVocab: 41, eps: 1e-5, act: 'gelu_new' };
// Larger-than-GPT-2 init so attention is far from uniform and GELU far from linear.
const SD = randomStateDict(CFG, { seed: 7, std: 0.15, biasStd: 0.1, lnGainStd: 0.2 });
const TOKENS = [
  [3, 17, 5, 40, 22, 9, 1],
  [0, 33, 12, 12, 8, 39, 26],
];
const [B, P] = [TOKENS.length, TOKENS[0].length];
const model = HookedTransformer.fromStateDict(CFG, SD);
afterAll(() => model.dispose());

/** Shapes by REFERENCE.md §3, written out independently of `hookShape`. */
function referenceShape(name: string): number[] {
  const { nHeads: h, dHead: dh, dModel: d, dMlp: m } = CFG;
  if (/hook_(q|k|v|z)$/.test(name)) return [B, P, h, dh];
  if (/hook_(attn_scores|pattern)$/.test(name)) return [B, h, P, P];
  if (name.endsWith('hook_result')) return [B, P, h, d];
  if (/mlp\.hook_(pre|post)$/.test(name)) return [B, P, m];
  if (name.endsWith('hook_scale')) return [B, P, 1];
  return [B, P, d];
}

/** Max |a − b| / (atol + rtol·|b|) over elements; ≤ 1 means within tolerance. Skips b = ±∞. */
function worst(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(b[i])) continue;
    w = Math.max(w, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  }
  return w;
}

/** Batch element `b` of a tfjs activation, flattened. */
function row(t: tf.Tensor, b: number): Float32Array {
  const n = t.size / t.shape[0];
  return (t.dataSync() as Float32Array).slice(b * n, (b + 1) * n);
}

const naive = TOKENS.map((toks) => naiveGpt2(CFG, SD, toks, { record: true }));

describe('hook points', () => {
  it('runWithCache returns every hook point except hook_result, with the REFERENCE §3 shapes', () => {
    const { logits, cache } = model.runWithCache(TOKENS);
    const expected = allHookNames(CFG).filter((n) => !n.endsWith('hook_result'));
    expect(Object.keys(cache).sort()).toEqual([...expected].sort());
    expect(expected.length).toBe(2 + CFG.nLayers * 18 + 2); // 18 block hooks: hook_mlp_in included
    for (const n of expected) {
      expect(cache[n].shape, n).toEqual(referenceShape(n));
      expect(hookShape(n, CFG, B, P), n).toEqual(referenceShape(n));
    }
    expect(logits.shape).toEqual([B, P, CFG.dVocab]);
    logits.dispose();
    disposeCache(cache);
  });

  it('hook_result when requested: [batch, pos, head, d_model]; summed over heads plus c_proj bias it is hook_attn_out', () => {
    const names = ['blocks.0.attn.hook_result', 'blocks.1.attn.hook_result', 'blocks.0.hook_attn_out', 'blocks.1.hook_attn_out'];
    const { logits, cache } = model.runWithCache(TOKENS, { names });
    for (const l of [0, 1]) {
      const r = cache[`blocks.${l}.attn.hook_result`];
      expect(r.shape).toEqual([B, P, CFG.nHeads, CFG.dModel]);
      const bias = SD.get(`h.${l}.attn.c_proj.bias`)!.data;
      const rd = r.dataSync();
      const out = cache[`blocks.${l}.hook_attn_out`].dataSync();
      // Summed in float64 here, independently of tfjs.
      const sum = new Float64Array(B * P * CFG.dModel);
      for (let bp = 0; bp < B * P; bp++)
        for (let o = 0; o < CFG.dModel; o++) {
          let s = bias[o];
          for (let h = 0; h < CFG.nHeads; h++) s += rd[(bp * CFG.nHeads + h) * CFG.dModel + o];
          sum[bp * CFG.dModel + o] = s;
        }
      expect(worst(out, sum, 1e-6, 1e-5)).toBeLessThanOrEqual(1);
      // And per-head results equal the naive reference's.
      for (let b = 0; b < B; b++) {
        const ref = naive[b].cache.get(`blocks.${l}.attn.hook_result`) as NaiveActivation;
        expect(worst(row(r, b), ref.data, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
      }
    }
    // Requesting hook_result does not change the logits.
    const plain = model.forward(TOKENS);
    expect(worst(logits.dataSync(), plain.dataSync(), 1e-6, 1e-5)).toBeLessThanOrEqual(1);
    tf.dispose([logits, plain]);
    disposeCache(cache);
  });

  it('every activation and the logits equal the float64 reference to 1e-4', () => {
    const names = allHookNames(CFG);
    const { logits, cache } = model.runWithCache(TOKENS, { names });
    for (const n of names) {
      for (let b = 0; b < B; b++) {
        const ref = naive[b].cache.get(n);
        expect(ref, `naive reference has ${n}`).toBeDefined();
        const got = row(cache[n], b);
        if (n.endsWith('hook_attn_scores')) {
          // Masked scores: the reference has −∞ (TransformerLens); we use a finite −1e9 so LRP rules never see ∞.
          ref!.data.forEach((v, i) => {
            if (v === -Infinity) expect(got[i]).toBeLessThan(-1e8);
          });
        }
        const w = worst(got, ref!.data, 1e-4, 1e-4);
        expect(w, `${n} batch ${b}`).toBeLessThanOrEqual(1);
      }
    }
    for (let b = 0; b < B; b++) expect(worst(row(logits, b), naive[b].logits.flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    logits.dispose();
    disposeCache(cache);
  });

  it('getActivation names the missing hook and what is cached', () => {
    const { logits, cache } = model.runWithCache(TOKENS, { names: ['hook_embed'] });
    expect(() => getActivation(cache, 'blocks.0.hook_resid_pre')).toThrow(/"blocks.0.hook_resid_pre" is not in the cache \(cached: hook_embed\)/);
    logits.dispose();
    disposeCache(cache);
  });

  it('hooks run before caching and postHooks after it', () => {
    const name = 'blocks.1.hook_resid_pre';
    const double = (x: tf.Tensor) => tf.mul(x, 2);
    const pre = model.runWithCache(TOKENS, { names: [name], hooks: [{ name, fn: double }] });
    const post = model.runWithCache(TOKENS, { names: [name], postHooks: [{ name, fn: double }] });
    const ref = naive[0].cache.get(name) as NaiveActivation;
    expect(worst(row(pre.cache[name], 0), ref.data.map((v) => 2 * v), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    expect(worst(row(post.cache[name], 0), ref.data, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    // Both patch the forward the same way.
    expect(Array.from(post.logits.dataSync())).toEqual(Array.from(pre.logits.dataSync()));
    tf.dispose([pre.logits, post.logits]);
    disposeCache(pre.cache, post.cache);
  });

  it('names as a predicate selects hooks', () => {
    const { logits, cache } = model.runWithCache(TOKENS, { names: (n) => n.endsWith('hook_z') });
    expect(Object.keys(cache).sort()).toEqual(['blocks.0.attn.hook_z', 'blocks.1.attn.hook_z']);
    logits.dispose();
    disposeCache(cache);
  });
});

describe('runWithHooks', () => {
  it('reads activations without changing the output', () => {
    const seen: Record<string, number[]> = {};
    const logits = model.runWithHooks(TOKENS, [
      { name: 'blocks.1.hook_resid_pre', fn: (x) => void (seen.resid = x.shape) },
      { name: 'blocks.0.attn.hook_pattern', fn: (x, ctx) => void (seen[ctx.name] = x.shape) },
    ]);
    expect(seen.resid).toEqual([B, P, CFG.dModel]);
    expect(seen['blocks.0.attn.hook_pattern']).toEqual([B, CFG.nHeads, P, P]);
    const plain = model.forward(TOKENS);
    expect(Array.from(logits.dataSync())).toEqual(Array.from(plain.dataSync()));
    tf.dispose([logits, plain]);
  });

  it('zero-ablating one head of hook_z equals the float64 reference doing the same', () => {
    const [layer, head] = [0, 2];
    const name = `blocks.${layer}.attn.hook_z`;
    const mask = tf.tensor(Array.from({ length: CFG.nHeads }, (_, h) => (h === head ? 0 : 1)), [1, 1, CFG.nHeads, 1]);
    const logits = model.runWithHooks(TOKENS, [{ name, fn: (z) => tf.mul(z, mask) }]);
    mask.dispose();
    for (let b = 0; b < B; b++) {
      const ref = naiveGpt2(CFG, SD, TOKENS[b], {
        hook: (n, v) => {
          if (n !== name) return;
          const d = Float64Array.from(v.data);
          for (let p = 0; p < P; p++) for (let j = 0; j < CFG.dHead; j++) d[(p * CFG.nHeads + head) * CFG.dHead + j] = 0;
          return { shape: v.shape, data: d };
        },
      });
      expect(worst(row(logits, b), ref.logits.flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
      // The ablation does change the output (so the comparison is not vacuous).
      expect(worst(row(logits, b), naive[b].logits.flat(), 1e-4, 1e-4)).toBeGreaterThan(10);
    }
    logits.dispose();
  });

  it('patching resid_pre at one position from another prompt equals the reference patch', () => {
    const name = 'blocks.1.hook_resid_pre';
    const pos = 3;
    const { logits: l0, cache } = model.runWithCache([TOKENS[1]], { names: [name] });
    l0.dispose();
    const src = cache[name]; // [1, P, d]
    const logits = model.runWithHooks([TOKENS[0]], [
      {
        name,
        fn: (x) => {
          const onehot = tf.reshape(tf.oneHot([pos], P), [1, P, 1]);
          return tf.add(tf.mul(x, tf.sub(1, onehot)), tf.mul(src, onehot));
        },
      },
    ]);
    const srcRef = naive[1].cache.get(name) as NaiveActivation;
    const ref = naiveGpt2(CFG, SD, TOKENS[0], {
      hook: (n, v) => {
        if (n !== name) return;
        const d = Float64Array.from(v.data);
        for (let i = 0; i < CFG.dModel; i++) d[pos * CFG.dModel + i] = srcRef.data[pos * CFG.dModel + i];
        return { shape: v.shape, data: d };
      },
    });
    expect(worst(logits.dataSync(), ref.logits.flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    // Positions before the patch are unaffected (causal).
    expect(worst(logits.dataSync().slice(0, pos * CFG.dVocab), naive[0].logits.slice(0, pos).flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    logits.dispose();
    disposeCache(cache);
  });

  it('several hooks at one point run in order, each seeing the previous output', () => {
    const name = 'blocks.0.hook_resid_mid';
    const logits = model.runWithHooks(TOKENS, [
      { name, fn: (x) => tf.mul(x, 2) },
      { name, fn: (x) => tf.add(x, 1) },
    ]);
    const ref = naiveGpt2(CFG, SD, TOKENS[0], { hook: (n, v) => (n === name ? { shape: v.shape, data: v.data.map((x) => 2 * x + 1) } : undefined) });
    expect(worst(row(logits, 0), ref.logits.flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    logits.dispose();
  });

  it('hooks are gone after the call', () => {
    const clean = model.forward(TOKENS);
    const hooked = model.runWithHooks(TOKENS, [{ name: 'blocks.0.hook_resid_pre', fn: (x) => tf.zerosLike(x) }]);
    const after = model.forward(TOKENS);
    expect(worst(hooked.dataSync(), clean.dataSync(), 1e-4, 1e-4)).toBeGreaterThan(1);
    expect(Array.from(after.dataSync())).toEqual(Array.from(clean.dataSync()));
    tf.dispose([clean, hooked, after]);
  });

  it('a hook returning the wrong shape errors naming the hook and both shapes, and leaks nothing', () => {
    const before = tf.memory().numTensors;
    expect(() => model.runWithHooks(TOKENS, [{ name: 'blocks.1.attn.hook_v', fn: (x) => tf.sum(x, -1) }])).toThrow(
      /hook at "blocks.1.attn.hook_v" returned shape \[2, 7, 4\], expected \[2, 7, 4, 8\]/,
    );
    expect(() => model.runWithHooks(TOKENS, [{ name: 'hook_embed', fn: () => 3 as unknown as tf.Tensor }])).toThrow(/hook at "hook_embed" returned a non-tensor/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('unknown hook names error with the valid names', () => {
    expect(() => model.runWithHooks(TOKENS, [{ name: 'blocks.0.hook_resid_pree', fn: () => {} }])).toThrow(/unknown hook point "blocks.0.hook_resid_pree".*hook_resid_pre/);
    expect(() => model.runWithHooks(TOKENS, [{ name: 'blocks.5.hook_resid_pre', fn: () => {} }])).toThrow(/layer 5 out of range \(model has 2 layers\)/);
    expect(() => model.runWithHooks(TOKENS, [{ name: 'hook_nope', fn: () => {} }])).toThrow(/unknown hook point "hook_nope"/);
    expect(() => model.runWithCache(TOKENS, { names: ['blocks.0.attn.hook_zz'] })).toThrow(/unknown hook point "blocks.0.attn.hook_zz"/);
  });
});

describe('startAtLayer', () => {
  it('resuming from a cached resid_pre reproduces the full forward logits', () => {
    const clean = model.forward(TOKENS);
    for (const l of [0, 1]) {
      const name = `blocks.${l}.hook_resid_pre`;
      const { logits, cache } = model.runWithCache(TOKENS, { names: [name] });
      logits.dispose();
      const resumed = model.forward(undefined, { startAtLayer: l, resid: cache[name] });
      expect(resumed.shape).toEqual(clean.shape);
      expect(worst(resumed.dataSync(), clean.dataSync(), 1e-6, 1e-6), `layer ${l}`).toBeLessThanOrEqual(1);
      // Hooks before the start are never reached; hooks after it are.
      let reached = false;
      const hooked = model.runWithHooks(undefined, [{ name: `blocks.${l}.hook_resid_post`, fn: () => void (reached = true) }], { startAtLayer: l, resid: cache[name] });
      expect(reached).toBe(true);
      tf.dispose([resumed, hooked]);
      disposeCache(cache);
    }
    clean.dispose();
  });

  it('rejects a missing or wrong-shaped resid and an out-of-range layer', () => {
    const r = tf.zeros([1, 3, CFG.dModel]);
    expect(() => model.forward(TOKENS, { startAtLayer: 1 })).toThrow(/startAtLayer=1 needs "resid"/);
    expect(() => model.forward(undefined, { startAtLayer: 2, resid: r })).toThrow(/startAtLayer=2 is out of range \[0, 2\)/);
    const bad = tf.zeros([1, 3, 5]);
    expect(() => model.forward(undefined, { startAtLayer: 1, resid: bad })).toThrow(/resid must be \[batch, pos, 32\], got \[1, 3, 5\]/);
    tf.dispose([r, bad]);
  });
});

describe('lastPositionOnly', () => {
  it('returns [batch, 1, vocab] logits equal to the last position of the full forward and of the reference', () => {
    const last = model.forward(TOKENS, { lastPositionOnly: true });
    expect(last.shape).toEqual([B, 1, CFG.dVocab]);
    for (let b = 0; b < B; b++) expect(worst(row(last, b), naive[b].logits[P - 1], 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    const { logits, cache } = model.runWithCache(TOKENS, { lastPositionOnly: true, names: ['ln_final.hook_normalized', 'blocks.1.hook_resid_post'] });
    expect(cache['ln_final.hook_normalized'].shape).toEqual([B, 1, CFG.dModel]);
    expect(cache['blocks.1.hook_resid_post'].shape).toEqual([B, P, CFG.dModel]);
    expect(Array.from(logits.dataSync())).toEqual(Array.from(last.dataSync()));
    tf.dispose([last, logits]);
    disposeCache(cache);
  });
});

describe('act = gelu (erf)', () => {
  it('logits equal the float64 reference', () => {
    const cfg: BaseConfig = { ...CFG, act: 'gelu' };
    const m = HookedTransformer.fromStateDict(cfg, SD);
    const logits = m.forward(TOKENS);
    for (let b = 0; b < B; b++) expect(worst(row(logits, b), naiveGpt2(cfg, SD, TOKENS[b]).logits.flat(), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    // and differ from gelu_new's (so the activation really switched)
    expect(worst(row(logits, 0), naive[0].logits.flat(), 1e-6, 1e-6)).toBeGreaterThan(1);
    logits.dispose();
    m.dispose();
  });
});

describe('token validation', () => {
  it('rejects unequal lengths, out-of-vocab ids, too many tokens and empty input', () => {
    expect(() => model.forward([[1, 2, 3], [4, 5]])).toThrow(/prompt 1 has 2 tokens but prompt 0 has 3/);
    expect(() => model.forward([[1, 41]])).toThrow(/id 41 at \[0\]\[1\] is outside the vocabulary \[0, 41\)/);
    expect(() => model.forward([[1, -1]])).toThrow(/id -1 at \[0\]\[1\]/);
    expect(() => model.forward([[1, 2.5]])).toThrow(/id 2.5 at \[0\]\[1\]/);
    expect(() => model.forward([Array.from({ length: 13 }, () => 1)])).toThrow(/13 tokens exceed the model's context of 12/);
    expect(() => model.forward([])).toThrow(/non-empty array/);
    expect(() => model.forward([[]])).toThrow(/at least one token/);
  });

  it('validates token tensors too (too long, out of vocabulary, wrong rank)', () => {
    const before = tf.memory().numTensors;
    const long = tf.zeros([1, 13], 'int32');
    const oov = tf.tensor2d([[1, 2], [3, 41]], [2, 2], 'int32');
    const rank1 = tf.tensor1d([1, 2], 'int32');
    expect(() => model.forward(long as tf.Tensor2D)).toThrow(/13 tokens exceed the model's context of 12/);
    expect(() => model.forward(oov)).toThrow(/id 41 at \[1\]\[1\] is outside the vocabulary/);
    expect(() => model.forward(oov, { oneHotEmbed: true })).toThrow(/id 41 at \[1\]\[1\]/);
    expect(() => model.forward(rank1 as unknown as tf.Tensor2D)).toThrow(/tokens must be \[batch, pos\], got shape \[2\]/);
    tf.dispose([long, oov, rank1]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('accepts an int32 (or float) token tensor [batch, pos] and gives the same logits', () => {
    const t = tf.tensor2d(TOKENS, [B, P], 'int32');
    const tf32 = tf.tensor2d(TOKENS, [B, P], 'float32');
    const a = model.forward(t);
    const b = model.forward(tf32);
    const c = model.forward(TOKENS);
    expect(Array.from(a.dataSync())).toEqual(Array.from(c.dataSync()));
    expect(Array.from(b.dataSync())).toEqual(Array.from(c.dataSync()));
    tf.dispose([t, tf32, a, b, c]);
  });
});

describe('no hook, no cost', () => {
  it('compileHooks gives undefined for no hooks', () => {
    expect(compileHooks(undefined)).toBeUndefined();
    expect(compileHooks([])).toBeUndefined();
  });

  it('a forward without hooks runs the same kernels as with an empty hook list, and read-only hooks add none', async () => {
    const kernels = async (f: () => tf.Tensor) => {
      const p = await tf.profile(() => f());
      const names = p.kernels.map((k) => k.name);
      tf.dispose(p.result as tf.Tensor);
      return names;
    };
    const none = await kernels(() => model.forward(TOKENS));
    const empty = await kernels(() => model.forward(TOKENS, { hooks: [] }));
    const readAll = await kernels(() =>
      model.forward(TOKENS, { hooks: allHookNames(CFG).filter((n) => !n.endsWith('hook_result')).map((name) => ({ name, fn: () => {} })) }),
    );
    expect(empty).toEqual(none);
    expect(readAll).toEqual(none);
    // No copies: tf.clone / identity kernels never run in a plain forward.
    expect(none.filter((k) => k === 'Identity')).toEqual([]);
    // At most the adds the math needs: per block LN (eps, bias) ×2, qkv bias, causal mask, out-proj
    // bias, two residual adds, c_fc bias, GELU (two), c_proj bias = 13; plus embedding + positions
    // and the final LN (2). (Fewer is fine, e.g. if biases get fused into matmuls.)
    expect(none.filter((k) => k === 'Add').length).toBeLessThanOrEqual(13 * CFG.nLayers + 3);
  });
});
