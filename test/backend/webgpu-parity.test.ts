/**
 * The `webgpu` backend (Dawn through the `webgpu` npm package) against wasm, and its workarounds.
 *
 * The backend is per process, so every GPU check runs in a child `node --import tsx` process with
 * RELP_BACKEND=webgpu; the same workload also runs in a wasm child and the two are compared
 * (logits, hooked forward, gradients at hooks under every LRP rule, AtP / AtP* / RelP sweeps,
 * activation patching, input relevance) to 1e-4 relative. On a CPU-only machine the adapter is
 * Mesa llvmpipe through Dawn's OpenGL backend (needs libegl1 libegl-mesa0 libgles2
 * libgl1-mesa-dri libgbm1); without one the GPU tests are skipped with the reason, or fail when
 * RELP_REQUIRE_WEBGPU=1 (CI).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dawnAttempts, describeAdapter, isSoftwareAdapter, type WebgpuAdapter } from '../../src/backend/webgpu.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';
import { runTorchReference, torchAvailable, type ReferenceLogitsResult } from '../helpers/torch-reference.ts';
import { runCli } from '../cli/run-cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run an ES-module snippet (imports relative to the repo root) in a fresh process. `undefined` env entries are removed. */
function child(code: string, env: Record<string, string | undefined>, timeoutMs = 110_000): Promise<ChildResult> {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    // A process Dawn kept alive would be killed here and fail the exit-status checks.
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The child's single stdout line, parsed; fails if anything else (e.g. a Dawn message) reached stdout. */
function onlyJson<T>(r: ChildResult): T {
  const lines = r.stdout.trim().split('\n');
  expect(lines, `stdout must hold exactly one JSON line; stderr: ${r.stderr.slice(-2000)}`).toHaveLength(1);
  return JSON.parse(lines[0]) as T;
}

function expectCleanExit(r: ChildResult, what: string): void {
  expect({ status: r.status, signal: r.signal }, `${what} must exit by itself with status 0; stderr: ${r.stderr.slice(-3000)}`).toEqual({ status: 0, signal: null });
}

// --- Is there an adapter here? -------------------------------------------------------------

const PROBE = `
import { initBackend } from './src/backend.ts';
import { webgpuAdapter } from './src/backend/webgpu.ts';
try {
  await initBackend('webgpu');
  console.log(JSON.stringify({ ok: true, adapter: webgpuAdapter() }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, reason: e.message }));
}
`;
const probe = JSON.parse((await child(PROBE, { RELP_BACKEND: undefined })).stdout.trim().split('\n').pop() || '{"ok":false,"reason":"probe printed nothing"}') as
  | { ok: true; adapter: WebgpuAdapter }
  | { ok: false; reason: string };
const skipReason = probe.ok ? undefined : `webgpu unavailable here: ${probe.reason}`;
const requireWebgpu = process.env.RELP_REQUIRE_WEBGPU === '1';

/** Skip a GPU test with the reason, unless CI demands the backend. */
function needWebgpu(ctx: { skip: (condition: boolean, note?: string) => void }): void {
  if (requireWebgpu) expect(skipReason, 'RELP_REQUIRE_WEBGPU=1 but').toBeUndefined();
  ctx.skip(skipReason !== undefined, skipReason);
}

// --- Pure logic (no GPU needed) --------------------------------------------------------------

describe('adapter classification', () => {
  it('flags software rasterisers and keeps real GPUs', () => {
    // Info strings as adapters report them (Dawn device / description fields).
    const software = [
      { device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version 4.5 (Core Profile) Mesa 22.3.6' },
      { vendor: 'mesa', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: 'Mesa 22.3.6 (lavapipe)' },
      { vendor: 'google', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver' },
      { vendor: 'microsoft', device: 'Microsoft Basic Render Driver', description: 'D3D12 WARP' },
      { device: 'some gpu', isFallbackAdapter: true },
    ];
    const hardware = [
      { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 550.54.15' },
      { vendor: 'amd', device: 'AMD Radeon RX 7900 XTX (RADV NAVI31)', description: 'radv Mesa 23.3.1' },
      { vendor: 'intel', architecture: 'gen-12lp', device: 'Intel(R) UHD Graphics 770 (ADL-S GT1)', description: 'Intel open-source Mesa driver' },
      { vendor: 'apple', architecture: 'metal-3', device: 'Apple M2', description: '' },
    ];
    for (const info of software) expect(isSoftwareAdapter(info), JSON.stringify(info)).toBe(true);
    for (const info of hardware) expect(isSoftwareAdapter(info), JSON.stringify(info)).toBe(false);
    expect(describeAdapter({ device: 'llvmpipe', description: 'Mesa' })).toBe('llvmpipe (Mesa)');
  });

  it('on Linux tries Vulkan first; OpenGL (compatibility, surfaceless EGL) only when a software adapter is acceptable', () => {
    const auto = dawnAttempts('linux', false);
    expect(auto).toEqual([{ label: 'vulkan', flags: ['backend=vulkan'], featureLevel: 'core' }]);
    const explicit = dawnAttempts('linux', true);
    expect(explicit.map((a) => a.label)).toEqual(['vulkan', 'opengl']);
    expect(explicit[1]).toEqual({ label: 'opengl', flags: ['backend=opengl'], featureLevel: 'compatibility', env: { EGL_PLATFORM: 'surfaceless' } });
    expect(dawnAttempts('darwin', false)).toEqual([{ label: 'default', flags: [], featureLevel: 'core' }]);
  });
});

// --- Parity with wasm ------------------------------------------------------------------------

/**
 * One workload, run under each backend. Every value is printed so the two runs can be compared
 * array by array. Rule sets: plain gradient, each LRP rule alone, and the presets.
 */
const WORKLOAD = `
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend.ts';
import { webgpuErrors } from './src/backend/webgpu.ts';
import { HookedTransformer } from './src/hooks/hooked-transformer.ts';
import { configFromHF } from './src/models/config.ts';
import { randomStateDict, mulberry32 } from './src/models/state-dict.ts';
import { activationPatch } from './src/patching/activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod } from './src/patching/attribution-patching.ts';
import { toPatchingData } from './src/patching/data.ts';
import { flattenTensor } from './src/contracts/score-tensor.ts';
import { RULE_PRESETS } from './src/rules/rules.ts';
import { halfProduct, identityRule, stopGradient, taylorSoftmax, uniformMatMul } from './src/rules/ops.ts';
import { geluNew } from './src/models/parts/activations.ts';
import { inputRelevance } from './src/relp/input-relevance.ts';

const backend = await initBackend();
const base = tf.memory().numTensors;
const out = {};
const put = (k, t) => { out[k] = Array.from(t.dataSync()); };
const RULES = {
  plain: {}, ...RULE_PRESETS,
  ln: { ln: true }, identity: { identity: true }, half: { half: true }, ah: { ah: true },
  uniformQK: { uniformQK: true }, uniformAV: { uniformAV: true }, softmaxTaylor: { softmaxTaylor: true },
};
const NAMES = ['blocks.0.hook_resid_pre', 'blocks.1.attn.hook_q', 'blocks.1.attn.hook_k', 'blocks.0.attn.hook_v',
  'blocks.1.attn.hook_pattern', 'blocks.0.attn.hook_z', 'blocks.0.mlp.hook_pre', 'blocks.1.mlp.hook_post',
  'blocks.1.ln2.hook_scale', 'blocks.1.hook_attn_out', 'blocks.0.hook_mlp_out', 'ln_final.hook_scale'];

// The rule ops themselves (halfProduct has no GPT-2 call site), on fixed random tensors.
tf.tidy(() => {
  const r = mulberry32(3);
  const rnd = (shape) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, () => r() * 4 - 2), shape);
  const a = rnd([2, 3, 4]), b = rnd([2, 4, 5]), x = rnd([2, 3, 4]), w = rnd([2, 3, 5]);
  const ops = {
    stopGradient: [(a_) => tf.sum(tf.mul(stopGradient(a_), a_)), [a]],
    identityGelu: [(a_) => tf.sum(tf.mul(identityRule(geluNew)(a_), x)), [a]],
    halfProduct: [(a_, x_) => tf.sum(tf.mul(halfProduct(a_, x_), a_)), [a, x]],
    uniformMatMul: [(a_, b_) => tf.sum(tf.mul(uniformMatMul(a_, b_), w)), [a, b]],
    taylorSoftmax: [(a_) => tf.sum(tf.mul(taylorSoftmax(a_), x)), [a]],
  };
  for (const [name, [f, args]] of Object.entries(ops)) tf.grads(f)(args).forEach((g, i) => put('op/' + name + '/' + i, g));
});

for (const act of ['gelu_new', 'gelu']) {
  const cfg = { ...configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 }), act };
  const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 5, std: 0.3 }));
  const r = mulberry32(17);
  const id = () => Math.floor(r() * cfg.dVocab);
  const pairs = Array.from({ length: 3 }, () => {
    const clean = Array.from({ length: 6 }, id);
    const corrupt = clean.map((t, i) => (i % 2 === 1 ? id() : t));
    return { clean: '', corrupt: '', answer: '', wrong: '', cleanIds: clean, corruptIds: corrupt, answerId: 3, wrongId: 7 };
  });
  const data = toPatchingData(pairs);
  const p = act + '/';
  let t = model.forward(data.clean); put(p + 'logits', t); t.dispose();
  t = model.runWithHooks(data.clean, [{ name: 'blocks.1.hook_resid_pre', fn: (x) => tf.mul(x, 0.5) }]); put(p + 'hooked', t); t.dispose();
  const metric = (l) => tf.sum(tf.sub(tf.slice(l, [0, 5, 3], [-1, 1, 1]), tf.slice(l, [0, 5, 7], [-1, 1, 1])));
  for (const [rn, rules] of Object.entries(act === 'gelu' ? { plain: {}, identity: { identity: true }, attnlrp: RULE_PRESETS.attnlrp } : RULES)) {
    const g = model.runWithCacheAndGrads(data.corrupt, metric, { names: NAMES, rules });
    for (const n of NAMES) put(p + 'grad/' + rn + '/' + n, g.grads[n]);
    if (rn === 'plain') for (const n of NAMES) put(p + 'cache/' + n, g.cache[n]);
    put(p + 'value/' + rn, g.value);
    g.logits.dispose(); g.value.dispose();
    for (const x of [...Object.values(g.cache), ...Object.values(g.grads)]) x.dispose();
  }
  if (act === 'gelu_new') {
    const methods = [ATP, ATP_STAR, relpMethod('relp'), { ...relpMethod('relp-ah'), name: 'relp-ah' }, { ...relpMethod('attnlrp'), name: 'attnlrp' }];
    const ap = attributionPatch(model, data, { components: 'resid_pre,attn_out,mlp_out,z,q,k,v,pattern', methods });
    for (const [m, sc] of Object.entries(ap.scores)) for (const [c, grid] of Object.entries(sc)) out[p + 'attr/' + m + '/' + c] = flattenTensor(grid);
    const acts = await activationPatch(model, data, { components: 'resid_pre,attn_out,mlp_out,z,pattern' });
    for (const [c, grid] of Object.entries(acts.scores)) out[p + 'act/' + c] = flattenTensor(grid);
  }
  for (const rules of ['relp', 'attnlrp']) {
    const ir = inputRelevance(model, data.clean[0], { rules });
    out[p + 'lrp/' + rules] = [...ir.relevance, ir.output];
  }
  model.dispose();
}
console.log(JSON.stringify({ backend, errors: webgpuErrors(), leaked: tf.memory().numTensors - base, out }));
`;

interface WorkloadOut {
  backend: string;
  errors: string[];
  leaked: number;
  out: Record<string, number[]>;
}

describe('webgpu backend: numerically equal to wasm', () => {
  it('hooked forward, gradients under every LRP rule, AtP/AtP*/RelP and activation patching agree to 1e-4 relative', async (ctx) => {
    needWebgpu(ctx);
    const [gpu, wasm] = await Promise.all([child(WORKLOAD, { RELP_BACKEND: 'webgpu' }), child(WORKLOAD, { RELP_BACKEND: 'wasm' })]);
    expectCleanExit(gpu, 'the webgpu child');
    expectCleanExit(wasm, 'the wasm child');
    const g = onlyJson<WorkloadOut>(gpu);
    const w = onlyJson<WorkloadOut>(wasm);
    expect([g.backend, w.backend]).toEqual(['webgpu', 'wasm']);
    expect(g.errors).toEqual([]);
    expect(g.leaked).toBe(0);
    expect(Object.keys(g.out).sort()).toEqual(Object.keys(w.out).sort());
    // Every rule set and method is present (guards against a silently shorter workload).
    for (const k of ['plain', 'relp', 'relp-ah', 'attnlrp', 'ln', 'identity', 'half', 'ah', 'uniformQK', 'uniformAV', 'softmaxTaylor']) {
      expect(Object.keys(w.out).some((n) => n.startsWith(`gelu_new/grad/${k}/`)), k).toBe(true);
    }
    for (const m of ['atp', 'atp*', 'relp', 'relp-ah', 'attnlrp']) expect(w.out[`gelu_new/attr/${m}/resid_pre`], m).toBeDefined();
    let worst = { rel: 0, key: '' };
    for (const [key, want] of Object.entries(w.out)) {
      const got = g.out[key];
      expect(got.length, key).toBe(want.length);
      expect(want.every(Number.isFinite), `${key} (wasm) is finite`).toBe(true);
      const scale = Math.max(1e-6, ...want.map(Math.abs));
      const err = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
      const rel = err / scale;
      expect(rel, `${key}: max abs err ${err} vs scale ${scale}`).toBeLessThan(1e-4);
      if (rel > worst.rel) worst = { rel, key };
    }
    ctx.annotate(`${Object.keys(w.out).length} arrays; worst relative error ${worst.rel.toExponential(2)} (${worst.key})`);
  });

  it('automatic selection does not take a software adapter: wasm stays the default', async (ctx) => {
    needWebgpu(ctx);
    ctx.skip(probe.ok && !probe.adapter.software, 'the adapter here is a real GPU');
    const r = await child(`import { initBackend } from './src/backend.ts'; console.log(JSON.stringify({ name: await initBackend() }));`, { RELP_BACKEND: undefined });
    expectCleanExit(r, 'the automatic-selection child');
    expect(onlyJson<{ name: string }>(r).name).not.toBe('webgpu');
  });
});

// --- Workarounds, one check each -------------------------------------------------------------

const KERNELS = `
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend.ts';
import { webgpuDevice, webgpuErrors } from './src/backend/webgpu.ts';
await initBackend();
const device = webgpuDevice();
const res = { backend: tf.getBackend(), limits: { storageBuffers: device.limits.maxStorageBuffersPerShaderStage, bindingBytes: device.limits.maxStorageBufferBindingSize } };
const base = tf.memory().numTensors;

// AddN over more inputs than one shader may bind: term i is the constant i + 0.25 (shape [3, 5]).
const n = 3 * res.limits.storageBuffers + 1;
res.addN = { n, values: tf.tidy(() => Array.from(tf.addN(Array.from({ length: n }, (_, i) => tf.fill([3, 5], i + 0.25))).dataSync())) };
res.addNErrors = webgpuErrors().length;

// Synchronous reads of GPU-resident float32, int32 and bool results (computed twice: the async read caches).
const f = () => tf.tidy(() => { const x = tf.range(0, 1200); return [tf.add(tf.mul(x, 2), 1), tf.cast(tf.mul(x, 3), 'int32'), tf.greater(x, 150)]; });
const [a, b] = [f(), f()];
res.sync = a.map((t) => Array.from(t.dataSync()));
res.async = await Promise.all(b.map(async (t) => Array.from(await t.data())));
res.arraySync = tf.tidy(() => tf.reshape(tf.add(tf.range(0, 6), 0.5), [2, 3]).arraySync());
[...a, ...b].forEach((t) => t.dispose());

// A GPU error is thrown at the next read (and kept off stdout), then the backend works on.
device.createBuffer({ size: 16, usage: 0xffff });
try { tf.tidy(() => tf.sum(tf.range(0, 2000)).dataSync()); res.errorThrown = ''; } catch (e) { res.errorThrown = e.message; }
res.afterError = tf.tidy(() => Array.from(tf.sum(tf.range(0, 2000)).dataSync()));

// A tensor over the storage-binding limit is refused before Dawn sees it (nothing is allocated).
try { tf.fill([Math.floor(res.limits.bindingBytes / 4) + 1], 1); res.guard = ''; } catch (e) { res.guard = e.message; }
res.leaked = tf.memory().numTensors - base;
console.log(JSON.stringify(res));
`;

interface KernelsOut {
  backend: string;
  limits: { storageBuffers: number; bindingBytes: number };
  addN: { n: number; values: number[] };
  addNErrors: number;
  sync: number[][];
  async: number[][];
  arraySync: number[][];
  errorThrown: string;
  afterError: number[];
  guard: string;
  leaked: number;
}

describe('webgpu backend: workarounds', () => {
  it('AddN beyond the storage-buffer limit, synchronous reads, loud GPU errors, the binding-size guard, clean exit', async (ctx) => {
    needWebgpu(ctx);
    const r = await child(KERNELS, { RELP_BACKEND: 'webgpu' });
    // The child never releases the backend itself: Dawn must not keep it alive.
    expectCleanExit(r, 'the workaround child');
    const k = onlyJson<KernelsOut>(r);
    expect(k.backend).toBe('webgpu');
    // AddN: Σ_i (i + 1/4) for i < n, in every element; no GPU error on the way.
    expect(k.addN.n).toBeGreaterThan(k.limits.storageBuffers);
    const want = (k.addN.n * (k.addN.n - 1)) / 2 + k.addN.n * 0.25;
    expect(k.addN.values).toEqual(Array(15).fill(want));
    expect(k.addNErrors).toBe(0);
    // dataSync / arraySync: the exact values, as the async path gives them.
    const idx = Array.from({ length: 1200 }, (_, i) => i);
    expect(k.sync).toEqual([idx.map((i) => 2 * i + 1), idx.map((i) => 3 * i), idx.map((i) => (i > 150 ? 1 : 0))]);
    expect(k.async).toEqual(k.sync);
    expect(k.arraySync).toEqual([
      [0.5, 1.5, 2.5],
      [3.5, 4.5, 5.5],
    ]);
    // The invalid buffer usage became an exception at the next read, then reads work again.
    expect(k.errorThrown).toMatch(/webgpu: 1 GPU error\(s\) since the last read.*WGPUBufferUsage/s);
    expect(r.stderr).toContain('relp: WebGPU error:');
    expect(k.afterError).toEqual([(2000 * 1999) / 2]);
    expect(k.guard).toMatch(/FillProgram needs its output \[\d+\] .* over this adapter's limit/);
    expect(k.leaked).toBe(0);
  });
});

// --- Tensors over the storage-binding limit ---------------------------------------------------

/**
 * GPT-2 small's 50257 × 768 embedding (147 MiB) is over llvmpipe's 128 MiB binding limit. The same
 * situation on a tiny model: vocabulary 1000 × d_model 16 (64 000 bytes) against a limit lowered
 * to 40 000 bytes, so the embedding gather, its transpose and the (un)embedding matmuls, forward
 * and backward, take the split paths. Every other tensor stays under the limit.
 */
const OVERSIZE = `
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend.ts';
import { webgpuErrors } from './src/backend/webgpu.ts';
import { HookedTransformer } from './src/hooks/hooked-transformer.ts';
import { configFromHF } from './src/models/config.ts';
import { randomStateDict, mulberry32 } from './src/models/state-dict.ts';
import { activationPatch } from './src/patching/activation-patching.ts';
import { ATP, attributionPatch, relpMethod } from './src/patching/attribution-patching.ts';
import { toPatchingData } from './src/patching/data.ts';
import { flattenTensor } from './src/contracts/score-tensor.ts';
import { inputRelevance } from './src/relp/input-relevance.ts';
const backend = await initBackend();
const base = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
const out = {};
const put = (k, t) => { out[k] = Array.from(t.dataSync()); };
const cfg = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 1000 });
const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 9, std: 0.3 }));
const r = mulberry32(4);
const id = () => Math.floor(r() * cfg.dVocab);
const pairs = Array.from({ length: 2 }, () => {
  const clean = Array.from({ length: 4 }, id);
  const corrupt = clean.map((t, i) => (i === 1 ? id() : t));
  return { clean: '', corrupt: '', answer: '', wrong: '', cleanIds: clean, corruptIds: corrupt, answerId: 3, wrongId: 7 };
});
const data = toPatchingData(pairs);
let t = model.forward(data.clean); put('logits', t); t.dispose();
t = model.forward(data.clean, { oneHotEmbed: true }); put('oneHotEmbed', t); t.dispose();
const metric = (l) => tf.sum(tf.sub(tf.slice(l, [0, 3, 3], [-1, 1, 1]), tf.slice(l, [0, 3, 7], [-1, 1, 1])));
for (const [rn, rules] of Object.entries({ plain: {}, relp: { ln: true, identity: true, half: true } })) {
  const g = model.runWithCacheAndGrads(data.corrupt, metric, { names: ['blocks.0.hook_resid_pre', 'ln_final.hook_normalized'], rules });
  for (const [n, x] of Object.entries(g.grads)) put('grad/' + rn + '/' + n, x);
  g.logits.dispose(); g.value.dispose();
  for (const x of [...Object.values(g.cache), ...Object.values(g.grads)]) x.dispose();
}
const ap = attributionPatch(model, data, { components: 'resid_pre,attn_out,mlp_out', methods: [ATP, relpMethod('relp')] });
for (const [m, sc] of Object.entries(ap.scores)) for (const [c, grid] of Object.entries(sc)) out['attr/' + m + '/' + c] = flattenTensor(grid);
// batch 8: stacked last-position logits [8, 1, 1000] stay under the lowered limit.
const acts = await activationPatch(model, data, { components: 'resid_pre,mlp_out', batch: 8 });
for (const [c, grid] of Object.entries(acts.scores)) out['act/' + c] = flattenTensor(grid);
const ir = inputRelevance(model, data.clean[0], { rules: 'relp' });
out.lrp = [...ir.relevance, ir.output];
model.dispose();
console.log(JSON.stringify({ backend, errors: webgpuErrors(), leakedTensors: tf.memory().numTensors - base.tensors, leakedBuffers: tf.backend().numDataIds() - base.buffers, out }));
`;

interface OversizeOut {
  backend: string;
  errors: string[];
  leakedTensors: number;
  leakedBuffers: number;
  out: Record<string, number[]>;
}

describe('webgpu backend: tensors over the storage-binding limit', () => {
  it('embedding gather, transpose and split matmuls (forward, backward, sweeps) agree with wasm; cached blocks are freed', async (ctx) => {
    needWebgpu(ctx);
    const [gpu, wasm] = await Promise.all([
      child(OVERSIZE, { RELP_BACKEND: 'webgpu', RELP_WEBGPU_MAX_BINDING_BYTES: '40000' }),
      child(OVERSIZE, { RELP_BACKEND: 'wasm' }),
    ]);
    expectCleanExit(gpu, 'the webgpu child');
    expectCleanExit(wasm, 'the wasm child');
    const g = onlyJson<OversizeOut>(gpu);
    const w = onlyJson<OversizeOut>(wasm);
    expect(g.backend).toBe('webgpu');
    expect(g.errors).toEqual([]);
    expect({ tensors: g.leakedTensors, buffers: g.leakedBuffers }).toEqual({ tensors: 0, buffers: 0 });
    expect(Object.keys(g.out).sort()).toEqual(Object.keys(w.out).sort());
    for (const [key, want] of Object.entries(w.out)) {
      const got = g.out[key];
      const scale = Math.max(1e-6, ...want.map(Math.abs));
      const err = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
      expect(err / scale, `${key}: max abs err ${err} vs scale ${scale}`).toBeLessThan(1e-4);
    }
  });
});

// --- The CLI on webgpu against PyTorch -------------------------------------------------------

describe('relp logits on webgpu', () => {
  it('RELP_BACKEND=webgpu relp logits --json on an HF-layout folder equals PyTorch to 1e-3 relative', async (ctx) => {
    needWebgpu(ctx);
    ctx.skip(!torchAvailable(), 'no /usr/bin/python3 with torch');
    const m = makeTmpModelDir({
      withTokenizer: true,
      seed: 3,
      cfg: { nLayers: 2, nHeads: 4, dModel: 32, dHead: 8, dMlp: 128, nCtx: 32, dVocab: 50257, eps: 1e-5, act: 'gelu_new', bosTokenId: 50256, eosTokenId: 50256 },
    });
    try {
      const r = await runCli(['logits', '--model', m.dir, '--text', 'When Mary and John went to the store, John gave a drink to', '--json'], { env: { RELP_BACKEND: 'webgpu' }, timeoutMs: 110_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('on webgpu');
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const got = JSON.parse(lines[0]) as { ids: number[]; logits: number[] };
      expect(got.logits).toHaveLength(50257);
      const ref = (await runTorchReference('logits', ['--model', m.dir, '--ids', got.ids.join(',')])) as ReferenceLogitsResult;
      const want = ref.logits as number[];
      const scale = Math.max(...want.map(Math.abs));
      const err = Math.max(...got.logits.map((v, i) => Math.abs(v - want[i])));
      expect(err / scale, `max abs err ${err} vs scale ${scale}`).toBeLessThan(1e-3);
    } finally {
      m.cleanup();
    }
  });
});
