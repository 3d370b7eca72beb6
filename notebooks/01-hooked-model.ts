// %% [markdown]
// # 1. A tour of the hooked model
//
// relp's `HookedTransformer` is a GPT-2 on TensorFlow.js with the hook points of TransformerLens:
// every intermediate activation has a name (`blocks.3.attn.hook_z`, ...) where you can **read** it
// (`runWithCache`), **replace** it (`runWithHooks`) or take the **gradient** of a metric with respect
// to it (`runWithCacheAndGrads`, optionally through LRP rules: that is what RelP uses).
//
// This notebook runs on the embedded IOI model (`models/ioi-toy`, a 4-layer GPT-2 trained by the
// project to do indirect object identification). Set `RELP_NOTEBOOK_MODEL=<dir>` to run it on any
// HF-layout GPT-2 folder instead, e.g. the one `relp download gpt2` writes.
//
// Plots are saved under `notebooks/outputs/01-hooked-model/` as HTML (and PNG when
// `npm run notebooks` finds Chromium).

// %%
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModelWithTokenizer, hookShape, disposeCache, generateIoi, BABA_TEMPLATES, RULE_PRESETS, type Hook } from 'relp';
import { NotebookOutputs, groupedBars, heatmapPanels, positionLabels, repoPath } from './lib/plots.ts';

const backend = await initBackend(); // tensorflow (GPU) when installed, else wasm, else cpu; RELP_BACKEND overrides
const startTensors = tf.memory().numTensors;
// No argument: the embedded model. Any HF-layout GPT-2 folder with a tokenizer works too.
const { model, tokenizer, path } = await loadModelWithTokenizer(process.env.RELP_NOTEBOOK_MODEL || undefined);
const cfg = model.cfg;
const out = new NotebookOutputs('01-hooked-model');
/** Read a tensor into a plain array and free it. */
const read = (t: tf.Tensor): number[] => {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
};
console.log(`backend ${backend}; model ${repoPath(path)}`);
console.log(`${cfg.nLayers} layers, ${cfg.nHeads} heads of d_head ${cfg.dHead}, d_model ${cfg.dModel}, d_mlp ${cfg.dMlp}, vocab ${cfg.dVocab}, context ${cfg.nCtx}`);

// %% [markdown]
// ## Hook points
//
// `model.hookNames()` lists every hook point in forward order. The names and shapes follow
// TransformerLens; `hookShape(name, cfg, batch, pos)` gives the activation shape at a point.

// %%
const names = model.hookNames();
console.log(`${names.length} hook points; those of block 0 and the final LayerNorm:`);
console.table(
  names
    .filter((n) => !n.startsWith('blocks.') || n.startsWith('blocks.0.'))
    .map((name) => ({ name, shape: `[${hookShape(name, cfg, 1, 12).join(', ')}]` })),
);

// %% [markdown]
// ## A forward pass
//
// We draw IOI prompts from the project's generator, from one template and its mirror so that all
// prompts have one token length and a batch is a plain `[batch, pos]` array. The metric throughout is the **logit difference**
// `logit(answer) − logit(wrong)` at the last position: the indirect object versus the subject.

// %%
const pairs = generateIoi(tokenizer, { n: 8, seed: 0, corruption: 'abc', templates: [BABA_TEMPLATES[0]] });
const p0 = pairs[0];
console.log(`clean:   ${JSON.stringify(p0.clean)} → ${JSON.stringify(p0.answer)} (wrong: ${JSON.stringify(p0.wrong)})`);
console.log(`corrupt: ${JSON.stringify(p0.corrupt)}`);
const tokens = pairs.map((p) => p.cleanIds); // [batch][pos]
const T = tokens[0].length;
const labels = positionLabels(tokenizer.toStrTokens(p0.cleanIds));

const logits = model.forward(tokens); // [batch, pos, vocab]
const last = read(tf.tidy(() => tf.slice(logits, [0, T - 1, 0], [1, 1, -1]).reshape([-1]))); // [vocab]
logits.dispose();
const top5 = last.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
console.log('top-5 next tokens of the first prompt:');
for (const [v, i] of top5) console.log(`  ${JSON.stringify(tokenizer.decode([i])).padEnd(12)} logit ${v.toFixed(3)}`);

// The logit difference as a differentiable metric of the logits: a one-hot direction, no gather
// (gather has no gradient on the wasm backend).
const direction = tf.tidy(() =>
  tf.sub(tf.oneHot(tf.tensor1d(pairs.map((p) => p.answerId), 'int32'), cfg.dVocab), tf.oneHot(tf.tensor1d(pairs.map((p) => p.wrongId), 'int32'), cfg.dVocab)),
); // [batch, vocab]
const meanLogitDiff = (lg: tf.Tensor3D): tf.Scalar =>
  tf.tidy(() => tf.mean(tf.sum(tf.mul(tf.reshape(tf.slice(lg, [0, T - 1, 0], [-1, 1, -1]), [pairs.length, cfg.dVocab]), direction), -1)) as tf.Scalar);
const ldOf = (lg: tf.Tensor3D): number => {
  const s = meanLogitDiff(lg);
  const v = s.dataSync()[0];
  s.dispose();
  lg.dispose();
  return v;
};
const cleanLd = ldOf(model.forward(tokens));
const corruptLd = ldOf(model.forward(pairs.map((p) => p.corruptIds)));
console.log(`mean logit difference over ${pairs.length} prompts: clean ${cleanLd.toFixed(3)}, ABC-corrupted ${corruptLd.toFixed(3)}`);

// %% [markdown]
// ## `runWithCache`: read activations
//
// Pass the names you need (caching is selective, and a forward without hooks pays nothing for them).
// The caller owns the returned tensors: dispose them, or use `disposeCache`.

// %%
const L = cfg.nLayers - 1;
const wanted = ['blocks.0.hook_resid_pre', `blocks.${L}.attn.hook_z`, `blocks.${L}.attn.hook_pattern`, `blocks.${L}.mlp.hook_post`];
const run = model.runWithCache([p0.cleanIds], { names: wanted });
for (const n of wanted) console.log(`${n.padEnd(28)} [${run.cache[n].shape.join(', ')}]`);
run.logits.dispose();
disposeCache(run.cache);

// %% [markdown]
// ## `runWithHooks`: replace activations
//
// A hook returns a tensor of the same shape to replace the activation (or nothing, to only read it).
// Hooks are gone after the call. Here we zero one head's output `hook_z` at a time and measure the
// logit difference: a crude ablation that already points at the heads that matter.

// %%
const headEffects: { layer: number; head: number; ld: number }[] = [];
for (let l = 0; l < cfg.nLayers; l++) {
  for (let h = 0; h < cfg.nHeads; h++) {
    const keep = tf.tidy(() => tf.oneHot(tf.tensor1d([h], 'int32'), cfg.nHeads).reshape([1, 1, cfg.nHeads, 1]).sub(1).neg()); // 0 at head h, 1 elsewhere
    const zeroHead: Hook = { name: `blocks.${l}.attn.hook_z`, fn: (z) => tf.mul(z, keep) }; // z: [batch, pos, head, d_head]
    headEffects.push({ layer: l, head: h, ld: ldOf(model.runWithHooks(tokens, [zeroHead])) });
    keep.dispose();
  }
}
await out.show(
  groupedBars(headEffects.map((e) => `${e.layer}.${e.head}`), [{ name: 'LD after zeroing the head − clean LD', values: headEffects.map((e) => e.ld - cleanLd) }], {
    title: 'Zero-ablating one head at a time (negative: the head helps IOI)',
    yTitle: 'change in mean logit difference',
  }),
  'head-ablation',
);
const worst = [...headEffects].sort((a, b) => a.ld - b.ld).slice(0, 2);
console.log(`heads whose ablation hurts most: ${worst.map((e) => `${e.layer}.${e.head} (LD ${e.ld.toFixed(2)} instead of ${cleanLd.toFixed(2)})`).join(', ')}`);

// %% [markdown]
// ### What do those heads attend to?
//
// Read their attention patterns (`hook_pattern`, `[batch, head, q_pos, k_pos]`) and average, over
// the prompts, where the final position looks: the indirect object (IO), the first mention of the
// subject (S1) or its repetition (S2). The generator records those positions in each pair's `meta`.

// %%
const patternNames = [...new Set(worst.map((e) => `blocks.${e.layer}.attn.hook_pattern`))];
const att = model.runWithCache(tokens, { names: patternNames });
const roleOf = (k: string) => pairs.map((p) => Number(p.meta?.[k]));
for (const { layer, head } of worst) {
  const a = att.cache[`blocks.${layer}.attn.hook_pattern`].arraySync() as number[][][][]; // [batch][head][q][k]
  const mean = (pos: number[]) => pos.reduce((s, k, b) => s + a[b][head][T - 1][k], 0) / pos.length;
  console.log(`head ${layer}.${head}: from the final position, attention to IO ${mean(roleOf('ioPos')).toFixed(2)}, S1 ${mean(roleOf('s1Pos')).toFixed(2)}, S2 ${mean(roleOf('s2Pos')).toFixed(2)}`);
}
await out.show(
  heatmapPanels(
    worst.map(({ layer, head }) => ({ title: `head ${layer}.${head}`, z: (att.cache[`blocks.${layer}.attn.hook_pattern`].arraySync() as number[][][][])[0][head] })),
    { x: labels, y: labels, title: 'Attention patterns on the first prompt (rows: query position, columns: key position)', colorTitle: 'attention', sequential: true },
  ),
  'attention-patterns',
);
att.logits.dispose();
disposeCache(att.cache);

// %% [markdown]
// In the embedded model (when this was written) the two heads are 0.3 and 2.1. Head 0.3 looks from
// the final position at S2, the repeated name: it brings "which name was repeated" to the end.
// Head 2.1 looks at the IO, the answer: it behaves like the *name mover* heads Wang et al. found
// in GPT-2 small (9.9, 9.6, 10.0). Notebook 2 measures the same heads properly, by patching.

// %% [markdown]
// ## `runWithCacheAndGrads`: gradients at hook points
//
// One forward and one backward give the metric, the cached activations and `∂metric/∂activation` at
// every named hook. With `rules`, the backward pass is LRP-modified (the forward is unchanged): this
// is the only difference between attribution patching (AtP) and relevance patching (RelP).
//
// Below, `activation × gradient` summed over `d_model` attributes the logit difference to each
// position of the residual stream entering each block, with the plain gradient and with the RelP
// rules (LN + Identity + Half).

// %%
const residNames = Array.from({ length: cfg.nLayers }, (_, l) => `blocks.${l}.hook_resid_pre`);
function gradTimesInput(rules?: typeof RULE_PRESETS.relp): { value: number; grid: number[][] } {
  const r = model.runWithCacheAndGrads(tokens, meanLogitDiff, { names: residNames, rules });
  const grid = residNames.map((n) => read(tf.tidy(() => tf.sum(tf.mul(r.cache[n], r.grads[n]), [0, 2])))); // [pos] per layer
  const value = r.value.dataSync()[0];
  r.logits.dispose();
  r.value.dispose();
  disposeCache(r.cache, r.grads);
  return { value, grid };
}
const plain = gradTimesInput();
const relp = gradTimesInput(RULE_PRESETS.relp);
console.log(`metric value: plain backward ${plain.value.toFixed(6)}, RelP backward ${relp.value.toFixed(6)} (rules never change the forward)`);
await out.show(
  heatmapPanels(
    [
      { title: 'activation × gradient', z: plain.grid },
      { title: 'activation × RelP gradient', z: relp.grid },
    ],
    { x: labels, y: residNames.map((_, l) => `resid_pre ${l}`), title: 'Attribution of the logit difference to the residual stream', colorTitle: 'a·∂m/∂a' },
  ),
  'resid-attribution',
);

// %% [markdown]
// ### Are these gradients right? A finite-difference check
//
// Nudge one coordinate of `blocks.1.hook_resid_pre` by ±ε with a hook, rerun, and compare the
// central difference with the gradient from `runWithCacheAndGrads`. This is an independent check
// (only forward passes), and the same kind the test suite runs on every hook point.

// %%
const probeName = 'blocks.1.hook_resid_pre';
const g = model.runWithCacheAndGrads(tokens, meanLogitDiff, { names: [probeName] });
const gradLast = (g.grads[probeName].arraySync() as number[][][]).map((prompt) => prompt[T - 1]); // [batch][d_model] at the last position
g.logits.dispose();
g.value.dispose();
disposeCache(g.cache, g.grads);
// Nudging every prompt at once changes the batch-mean metric by the gradient summed over the batch.
const summed = Array.from({ length: cfg.dModel }, (_, k) => gradLast.reduce((s, row) => s + row[k], 0));
const dim = summed.reduce((best, v, k) => (Math.abs(v) > Math.abs(summed[best]) ? k : best), 0); // the most sensitive coordinate
const nudge = (eps: number): number => {
  const bump = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor1d([(T - 1) * cfg.dModel + dim], 'int32'), T * cfg.dModel).reshape([1, T, cfg.dModel]), eps));
  const v = ldOf(model.runWithHooks(tokens, [{ name: probeName, fn: (x) => tf.add(x, bump) }]));
  bump.dispose();
  return v;
};
const eps = 1e-2;
const numeric = (nudge(eps) - nudge(-eps)) / (2 * eps);
console.log(`∂LD/∂${probeName}[:, ${T - 1}, ${dim}]: gradient ${summed[dim].toFixed(5)}, central difference ${numeric.toFixed(5)}`);
console.log(`relative difference ${(Math.abs(summed[dim] - numeric) / Math.abs(numeric)).toExponential(2)} (float32, ε = ${eps})`);

// %% [markdown]
// ## Memory
//
// TensorFlow.js does not garbage-collect tensors. Every relp call either tidies up after itself or
// hands you tensors to dispose; after freeing ours and the model, the count is back where it was.

// %%
direction.dispose();
model.dispose();
const leaked = tf.memory().numTensors - startTensors;
console.log(`tensors left over: ${leaked}`);
if (leaked !== 0) throw new Error(`${leaked} tensors leaked`);
