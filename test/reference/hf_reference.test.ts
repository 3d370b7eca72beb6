/**
 * Self-tests of the multi-architecture PyTorch reference (hf_reference.py), independent of relp:
 * it must agree with the plain-JS float64 forward (naive-hf.ts) on every model_type and hook,
 * its AtP must equal finite differences of its own activation patching, each LRP rule must equal
 * the finite-difference derivative of the model with that quantity frozen, the Half-rule must
 * halve each factor's gradient with bit-identical forward values, and GQA must equal explicit
 * multi-head attention. Runs (and fails) without torch when RELP_REQUIRE_REFERENCE=1.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HF_MODEL_TYPES, writeHFCheckpoint, type HFCheckpointOptions, type HFModelType } from '../helpers/hf-checkpoint.ts';
import { writeSafetensorsFolder, type StTensor } from '../helpers/hf-safetensors.ts';
import { finiteDifferenceGradient, loadNaiveHF, naiveHF } from '../helpers/naive-hf.ts';
import {
  PYTHON,
  runHFReferenceBatch,
  torchAvailable,
  type ReferenceCacheResult,
  type ReferenceGradResult,
  type ReferenceLogitsResult,
  type ReferenceLrpResult,
  type ReferencePatchResult,
  type ScoreGrids,
} from '../helpers/hf-reference.ts';

const CHECK_MHA = fileURLToPath(new URL('./check_hf_mha.py', import.meta.url));
const COMPONENTS = ['resid_pre', 'attn_out', 'mlp_out'];
const IDS = [1, 5, 7, 3, 49, 0, 12, 8];
const T = 8;
const N_LAYERS = 2;
const GATED: HFModelType[] = ['llama', 'qwen2', 'mistral', 'gemma2'];

interface Pair { clean_ids: number[]; corrupt_ids: number[]; answer_id: number; wrong_id: number }
// Corrupt prompts differ from clean ones at positions 1 and 5 (prompt-dependent); position 0 never.
const PAIRS: Pair[] = [
  { clean_ids: [3, 11, 7, 20, 11, 5, 9, 2], corrupt_ids: [3, 11, 7, 20, 11, 30, 9, 2], answer_id: 7, wrong_id: 20 },
  { clean_ids: [8, 2, 9, 14, 2, 40, 6, 1], corrupt_ids: [8, 2, 9, 14, 2, 33, 6, 1], answer_id: 9, wrong_id: 14 },
  { clean_ids: [1, 45, 6, 28, 45, 17, 4, 3], corrupt_ids: [1, 12, 6, 28, 45, 17, 4, 3], answer_id: 6, wrong_id: 28 },
];

let dir = '';
const model = (name: string) => join(dir, name);
const pairsFile = join(tmpdir(), `relp-hf-pairs-${process.pid}.json`);

/** Checkpoint variants beyond the per-type defaults, to cover every config switch. */
const VARIANTS: Record<string, HFCheckpointOptions> = {
  'gpt2-untied-prefix': { modelType: 'gpt2', tieWordEmbeddings: false, prefix: true, act: 'gelu', seed: 2 },
  'gpt_neox-sequential': { modelType: 'gpt_neox', parallelResidual: false, rotaryPct: 0.25, seed: 3 },
  'gpt_neox-fullrot': { modelType: 'gpt_neox', rotaryPct: 1, ropeTheta: 100, seed: 4 },
  'llama-bias-tied': { modelType: 'llama', attentionBias: true, tieWordEmbeddings: true, headDim: 4, seed: 5 },
  'llama-mha': { modelType: 'llama', nKvHeads: 4, seed: 6 },
  'qwen2-untied': { modelType: 'qwen2', tieWordEmbeddings: false, nKvHeads: 1, seed: 7 },
  'mistral-window': { modelType: 'mistral', slidingWindow: 3, seed: 8 },
  'gemma2-nocap': { modelType: 'gemma2', attnSoftcap: null, finalSoftcap: null, slidingWindow: null, seed: 9 },
};

const ALL_MODELS = [...HF_MODEL_TYPES, ...Object.keys(VARIANTS)];
const FD_H = 1e-4;
/** [rules, the --freeze set whose finite difference it must equal] per model type. */
const RULE_FREEZES = (t: HFModelType): [string, string][] => [
  ['ln', 'ln'], ['relp', 'ln,act,half'], ['relp-ah', 'ln,act,half,attn'], ...(GATED.includes(t) ? [['half', 'half'] as [string, string]] : []),
];
const HALF_RULES = ['none', 'half', 'relp', 'ln,identity'];
const HALF_NAMES = [`blocks.${N_LAYERS - 1}.mlp.hook_pre_linear`, `blocks.${N_LAYERS - 1}.mlp.hook_act`, `blocks.${N_LAYERS - 1}.mlp.hook_pre`, 'blocks.0.hook_resid_pre'];
const FD_NAMES = ['blocks.0.hook_resid_pre', 'blocks.0.hook_attn_out', 'blocks.1.hook_mlp_out', 'blocks.1.attn.hook_v'];
const LRP_RULES = ['none', 'relp-ah', 'ln,identity,ah'];
const WINDOW_POS = [5, 6, 7];

/** Hook names compared between the reference and naive-hf.ts. */
function hookNames(t: HFModelType): string[] {
  const gated = GATED.includes(t);
  const names = ['hook_embed', 'ln_final.hook_scale', 'ln_final.hook_normalized'];
  if (t === 'gpt2') names.push('hook_pos_embed');
  for (let l = 0; l < N_LAYERS; l++) {
    const b = `blocks.${l}.`;
    names.push(...['hook_resid_pre', 'hook_attn_out', 'hook_mlp_out', 'hook_resid_post', 'ln1.hook_scale', 'ln1.hook_normalized',
      'ln2.hook_scale', 'attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z',
      'mlp.hook_pre', 'mlp.hook_post'].map((n) => b + n));
    if (t !== 'gpt_neox') names.push(b + 'hook_resid_mid');
    if (t !== 'gpt2') names.push(b + 'attn.hook_rot_q', b + 'attn.hook_rot_k');
    if (gated) names.push(b + 'mlp.hook_pre_linear');
    if (t === 'gemma2') names.push(b + 'ln1_post.hook_scale', b + 'ln2_post.hook_normalized');
  }
  return names;
}

/** Every reference command the tests need, run in one Python process in beforeAll. */
function plan(): Record<string, string[]> {
  const jobs: Record<string, string[]> = {};
  const lg = (id: string, m: string, ids: number[], extra: string[] = []) => {
    jobs[id] = ['logits', '--model', model(m), '--ids', ids.join(','), ...extra];
  };
  const pt = (id: string, m: string, extra: string[]) => {
    jobs[id] = ['patch', '--model', model(m), '--pairs', pairsFile, ...extra];
  };
  const gr = (id: string, m: string, names: string[], rules: string) => {
    jobs[id] = ['grad', '--model', model(m), '--ids', IDS.join(','), '--names', names.join(','), '--target', '7', '--contrast', '20', '--rules', rules];
  };
  const fd = (t: string, freeze: string) => {
    for (const s of [1, -1]) pt(`act${s > 0 ? '+' : '-'}:${t}:${freeze}`, t, ['--methods', 'activation', `--alpha=${s * FD_H}`, '--freeze', freeze]);
  };
  for (const m of ALL_MODELS) lg(`all:${m}`, m, IDS, ['--all-positions']);
  for (const t of HF_MODEL_TYPES) {
    lg(`all:${t}-bf16`, `${t}-bf16`, IDS, ['--all-positions']);
    lg(`all:${t}-f16`, `${t}-f16`, IDS, ['--all-positions']);
    lg(`prefix:${t}`, t, IDS.slice(0, 3));
    lg(`f32:${t}`, t, IDS, ['--float32']);
    jobs[`cache:${t}`] = ['cache', '--model', model(t), '--ids', IDS.join(','), '--names', hookNames(t).join(',')];
    jobs[`cache-bad:${t}`] = ['cache', '--model', model(t), '--ids', '1', '--names', 'blocks.0.hook_nope'];
    gr(`grad:${t}`, t, FD_NAMES, 'none');
    pt(`atp:${t}`, t, ['--methods', 'atp']);
    pt(`act:${t}`, t, ['--methods', 'activation']);
    fd(t, '');
    for (const [rules, freeze] of RULE_FREEZES(t)) {
      pt(`relp:${t}:${rules}`, t, ['--methods', 'relp', '--rules', rules]);
      fd(t, freeze);
    }
    if (GATED.includes(t)) for (const r of HALF_RULES) gr(`half:${t}:${r}`, t, HALF_NAMES, r);
    for (const r of LRP_RULES) {
      jobs[`lrp:${t}:${r}`] = ['lrp', '--model', model(`${t}-nobias`), '--ids', IDS.join(','), '--target', '7', '--contrast', '20', '--rules', r];
    }
    lg(`last:${t}-nobias`, `${t}-nobias`, IDS);
  }
  for (const t of GQA_TYPES) {
    lg(`all:${t}-gqa`, `${t}-gqa`, IDS, ['--all-positions']);
    lg(`all:${t}-mha-expanded`, `${t}-mha-expanded`, IDS, ['--all-positions']);
  }
  for (const i of WINDOW_POS) for (const m of ['mistral-window', 'mistral']) lg(`sub:${m}:${i}`, m, IDS.slice(i - 4, i + 1));
  jobs['cache:gemma2-window'] = ['cache', '--model', model('gemma2'), '--ids', IDS.join(','), '--names', GEMMA_NAMES.join(',')];
  lg('last:gemma2-nocap', 'gemma2-nocap', IDS);
  jobs['cache:neox-parallel'] = ['cache', '--model', model('gpt_neox'), '--ids', IDS.join(','), '--names', NEOX_NAMES.join(',')];
  pt('err:resid-mid', 'gpt_neox', ['--methods', 'atp', '--components', 'resid_mid']);
  lg('err:kv', 'bad-kv', [1]);
  lg('err:type', 'bad-type', [1]);
  lg('err:ids', 'llama', [1, 2, 50]);
  pt('err:rules', 'llama', ['--rules', 'relp,foo']);
  lg('err:shape', 'bad-shape', [1]);
  jobs['err:missing'] = ['logits', '--model', model('missing'), '--ids', '1'];
  return jobs;
}
const GQA_TYPES = ['llama', 'qwen2', 'gemma2'] as const;
const GEMMA_NAMES = ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern', 'blocks.0.attn.hook_attn_scores'];
const NEOX_NAMES = ['blocks.1.hook_resid_pre', 'blocks.1.hook_attn_out', 'blocks.1.hook_mlp_out', 'blocks.1.hook_resid_post'];

let results: Record<string, unknown> = {};
/** Why the whole batch failed (e.g. no torch under RELP_REQUIRE_REFERENCE=1): every test fails with it. */
let batchError: Error | undefined;
/** The output of job `id`; throws with the reference's message if it failed. */
function R<X>(id: string): X {
  if (batchError) throw batchError;
  const r = results[id] as { error?: string } | undefined;
  if (r === undefined) throw new Error(`no reference job ${id}`);
  if (r.error !== undefined) throw new Error(`reference job ${id} failed: ${r.error}`);
  return r as X;
}
/** The error message of job `id` (which must have failed). */
function E(id: string): string {
  if (batchError) throw batchError;
  const r = results[id] as { error?: string };
  expect(r.error, `job ${id} should fail`).toBeDefined();
  return r.error!;
}
const rows = (id: string) => R<ReferenceLogitsResult>(id).logits as number[][];
const last = (id: string) => R<ReferenceLogitsResult>(id).logits as number[];

/** Central finite difference (m(+h) − m(−h)) / 2h from the two activation-patching jobs with --alpha=±h. */
function finiteDifference(t: string, freeze: string): ScoreGrids {
  const plus = R<ReferencePatchResult>(`act+:${t}:${freeze}`), minus = R<ReferencePatchResult>(`act-:${t}:${freeze}`);
  const out: ScoreGrids = {};
  for (const c of COMPONENTS) {
    out[c] = plus.scores.activation[c].map((row, l) => row.map((v, p) => (v - minus.scores.activation[c][l][p]) / (2 * FD_H)));
  }
  return out;
}

function expectGridsClose(actual: ScoreGrids, expected: ScoreGrids, rel: number): void {
  for (const c of COMPONENTS) {
    expect(actual[c]).toHaveLength(N_LAYERS);
    for (let l = 0; l < N_LAYERS; l++) {
      expect(actual[c][l]).toHaveLength(T);
      for (let p = 0; p < T; p++) {
        const e = expected[c][l][p];
        expect(Math.abs(actual[c][l][p] - e), `${c}[${l}][${p}]: ${actual[c][l][p]} vs ${e}`)
          .toBeLessThanOrEqual(rel * (1 + Math.abs(e)));
      }
    }
  }
}

const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v === null ? -Infinity : (v as number)]);

/** max |a − b| / (1 + max |b|). */
function relErr(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let err = 0;
  let scale = 0;
  a.forEach((v, i) => {
    const w = b[i];
    if (v === -Infinity || w === -Infinity) {
      expect(v).toBe(w);
      return;
    }
    err = Math.max(err, Math.abs(v - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return err / (1 + scale);
}

/** Write a copy of a GQA checkpoint with each kv head duplicated for its query heads (num_key_value_heads = H). */
function writeExpandedMha(t: (typeof GQA_TYPES)[number]): void {
  const H = 4, Hkv = 2, d = 16;
  const src = writeHFCheckpoint(model(`${t}-gqa`), { modelType: t, seed: 21, nHeads: H, nKvHeads: Hkv });
  const hd = t === 'gemma2' ? 8 : d / H;
  const expand = (x: StTensor, cols: number): StTensor => {
    const out = new Float32Array(H * hd * cols);
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / (H / Hkv)); // repeat_kv
      out.set(x.data.subarray(kv * hd * cols, (kv + 1) * hd * cols), h * hd * cols);
    }
    return { shape: cols === 1 ? [H * hd] : [H * hd, cols], data: out };
  };
  const tensors = new Map(src.tensors);
  for (const [k, v] of src.tensors) {
    if (/self_attn\.[kv]_proj\.weight$/.test(k)) tensors.set(k, expand(v, d));
    if (/self_attn\.[kv]_proj\.bias$/.test(k)) tensors.set(k, expand(v, 1));
  }
  const out = model(`${t}-mha-expanded`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...src.config, num_key_value_heads: H }));
  writeSafetensorsFolder(out, [...tensors], 'F32');
}

describe.skipIf(!torchAvailable())('hf_reference.py (every architecture)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relp-hf-ref-'));
    for (const t of HF_MODEL_TYPES) {
      writeHFCheckpoint(model(t), { modelType: t, seed: 11 });
      writeHFCheckpoint(model(`${t}-bf16`), { modelType: t, seed: 11, dtype: 'BF16', shards: 3, buffers: true, prefix: t === 'gpt2' });
      writeHFCheckpoint(model(`${t}-f16`), { modelType: t, seed: 11, dtype: 'F16', shards: 2 });
      writeHFCheckpoint(model(`${t}-nobias`), { modelType: t, seed: 12, zeroBias: true, ...(t === 'gemma2' ? { finalSoftcap: null } : {}) });
    }
    for (const [name, o] of Object.entries(VARIANTS)) writeHFCheckpoint(model(name), o);
    for (const t of GQA_TYPES) writeExpandedMha(t);
    const kv = writeHFCheckpoint(model('bad-kv'), { modelType: 'llama' });
    writeFileSync(join(model('bad-kv'), 'config.json'), JSON.stringify({ ...kv.config, num_key_value_heads: 3 }));
    writeHFCheckpoint(model('bad-type'), { modelType: 'llama' });
    writeFileSync(join(model('bad-type'), 'config.json'), JSON.stringify({ model_type: 'bert' }));
    const sh = writeHFCheckpoint(model('bad-shape'), { modelType: 'gpt_neox' });
    writeFileSync(join(model('bad-shape'), 'config.json'), JSON.stringify({ ...sh.config, hidden_size: 32 }));
    writeFileSync(pairsFile, JSON.stringify({ pairs: PAIRS }));
    try {
      results = await runHFReferenceBatch(plan());
    } catch (e) {
      batchError = e as Error; // reported by every test rather than once as a skipped suite
    }
  }, 1_200_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(pairsFile, { force: true });
  });

  it.each(ALL_MODELS)('%s: logits at every position equal naive-hf.ts (float64)', (m) => {
    const ref = rows(`all:${m}`);
    const js = naiveHF(loadNaiveHF(model(m)), IDS).logits;
    expect(ref).toHaveLength(T);
    expect(Math.max(...ref.flat().map(Math.abs))).toBeGreaterThan(0.5);
    expect(relErr(ref.flat(), js.flat())).toBeLessThan(1e-12);
  });

  it.each(HF_MODEL_TYPES)('%s: F16 / BF16, sharded, with ignored buffers, give identical logits; causal; --float32 close', (t) => {
    const a = rows(`all:${t}`);
    expect(rows(`all:${t}-bf16`)).toEqual(a); // the fixture's weights are exact in every dtype
    expect(rows(`all:${t}-f16`)).toEqual(a);
    expect(relErr(a[2], last(`prefix:${t}`))).toBeLessThan(1e-13);
    expect(relErr(a[T - 1], last(`f32:${t}`))).toBeLessThan(1e-5);
  });

  it.each(HF_MODEL_TYPES)('%s: every hook point of the reference equals naive-hf.ts', (t) => {
    const { cache } = R<ReferenceCacheResult>(`cache:${t}`);
    const js = naiveHF(loadNaiveHF(model(t)), IDS, { record: true }).cache;
    for (const n of hookNames(t)) {
      const a = js.get(n);
      expect(a, `naive-hf has no ${n}`).toBeDefined();
      expect(relErr(flat(cache[n]), Array.from(a!.data)), n).toBeLessThan(1e-12);
    }
    // kv-head shapes: [pos, n_kv_heads, d_head]
    const k = cache['blocks.0.attn.hook_k'] as number[][][];
    expect([k.length, k[0].length]).toEqual([T, GATED.includes(t) || t === 'gpt_neox' ? 2 : 4]);
    expect(E(`cache-bad:${t}`)).toMatch(/unknown hook name/);
  });

  it.each(HF_MODEL_TYPES)('%s: reference gradients at hooks equal naive-hf central finite differences', (t) => {
    const g = R<ReferenceGradResult>(`grad:${t}`);
    const m = loadNaiveHF(model(t));
    const metric = (lg: number[][][]) => lg[0][T - 1][7] - lg[0][T - 1][20];
    expect(g.value).toBeCloseTo(metric([naiveHF(m, IDS).logits]), 12);
    for (const n of FD_NAMES) {
      const [fd] = finiteDifferenceGradient(m, [IDS], n, metric, 1e-5);
      const r = flat(g.grad[n]);
      expect(Math.max(...r.map(Math.abs)), n).toBeGreaterThan(1e-3);
      expect(relErr(r, Array.from(fd)), n).toBeLessThan(1e-7);
    }
  }, 60_000);

  it.each(HF_MODEL_TYPES)('%s: atp equals the finite-difference derivative of activation patching', (t) => {
    expectGridsClose(R<ReferencePatchResult>(`atp:${t}`).scores.atp, finiteDifference(t, ''), 1e-6);
    const act = R<ReferencePatchResult>(`act:${t}`);
    // Before the first differing position nothing changes: exactly the corrupt run.
    for (const c of COMPONENTS) for (let l = 0; l < N_LAYERS; l++) expect(Math.abs(act.scores.activation[c][l][0])).toBe(0);
    expect(Math.max(...COMPONENTS.flatMap((c) => act.scores.activation[c].flat().map(Math.abs)))).toBeGreaterThan(0.05);
  });

  // Each LRP rule detaches a quantity; its gradient is the true derivative of the model with that
  // quantity frozen at the base (corrupt) run's values, which --freeze builds without any detach.
  it.each(HF_MODEL_TYPES.flatMap((t) => RULE_FREEZES(t).map(([r, f]) => [t, r, f])))(
    '%s: relp --rules %s equals the finite-difference derivative of the model frozen at %s', (t, rules, freeze) => {
      const relp = R<ReferencePatchResult>(`relp:${t}:${rules}`);
      expectGridsClose(relp.scores.relp, finiteDifference(t, freeze), 1e-6);
      expect(Math.max(...COMPONENTS.flatMap((c) => relp.scores.relp[c].flat().map(Math.abs)))).toBeGreaterThan(0.01);
    });

  it.each(GATED)('%s: the Half-rule halves the gradient of each factor of the gate product; forward values are bit-identical', (t) => {
    const [plain, half, relp, relpNoHalf] = HALF_RULES.map((r) => R<ReferenceGradResult>(`half:${t}:${r}`));
    expect(half.value).toBe(plain.value); // g/2 + stopgrad(g/2) is exactly g in float64
    expect(relp.value).toBe(relpNoHalf.value); // (the Identity-rule's x~·(act/x~) may round differently)
    for (const n of HALF_NAMES.slice(0, 3)) {
      const p = flat(plain.grad[n]);
      expect(Math.max(...p.map(Math.abs))).toBeGreaterThan(1e-3);
      expect(flat(half.grad[n])).toEqual(p.map((v) => v / 2)); // last layer: nothing downstream halves it again
    }
    // Upstream of two gated layers the ratio is no longer a constant 1/2, and the rule matters for RelP.
    const r0 = 'blocks.0.hook_resid_pre';
    expect(relErr(flat(half.grad[r0]), flat(plain.grad[r0]).map((v) => v / 2))).toBeGreaterThan(1e-4);
    expect(relErr(flat(relp.grad[r0]), flat(relpNoHalf.grad[r0]))).toBeGreaterThan(1e-4);
  });

  it.each(HF_MODEL_TYPES)('%s: relp-ah relevance is conserved on a bias-free model; the plain gradient is not', (t) => {
    const [none, ah, noHalf] = LRP_RULES.map((r) => R<ReferenceLrpResult>(`lrp:${t}:${r}`));
    const l = last(`last:${t}-nobias`);
    expect(ah.output).toBeCloseTo(l[7] - l[20], 12);
    // Frozen norm scales, activation ratios and attention, and the Half-rule on the (degree-2) gate
    // product, make relevance sum to the output (Euler), up to the Identity-rule's 1e-6 offset.
    const sum = (r: ReferenceLrpResult) => r.relevance.reduce((a, b) => a + b, 0);
    expect(ah.relevance).toHaveLength(T);
    expect(Math.abs(sum(ah) - ah.output)).toBeLessThan(1e-5 * (1 + Math.abs(ah.output)));
    expect(Math.abs(sum(none) - none.output)).toBeGreaterThan(1e-3);
    if (GATED.includes(t)) expect(Math.abs(sum(noHalf) - noHalf.output)).toBeGreaterThan(1e-3);
  });

  it.each(GQA_TYPES)('%s GQA: duplicating kv heads into a num_key_value_heads = num_attention_heads checkpoint leaves logits unchanged', (t) => {
    const a = rows(`all:${t}-gqa`).flat();
    expect(relErr(rows(`all:${t}-mha-expanded`).flat(), a)).toBeLessThan(1e-14);
    expect(relErr(naiveHF(loadNaiveHF(model(`${t}-mha-expanded`)), IDS).logits.flat(), a)).toBeLessThan(1e-12);
  });

  it('forward equals an explicit per-head attention with complex-number RoPE (MHA and GQA)', () => {
    const ms = ['llama-mha', 'llama', 'qwen2', 'qwen2-untied'].map(model);
    const r = spawnSync(PYTHON, [CHECK_MHA, ...ms.flatMap((m) => ['--model', m]), '--ids', IDS.join(',')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, { max_abs_diff: number; max_abs_logit: number }>;
    for (const m of ms) {
      expect(out[m].max_abs_logit).toBeGreaterThan(0.5);
      expect(out[m].max_abs_diff, m).toBeLessThan(1e-12);
    }
  }, 120_000);

  it('sliding window with RoPE: every logit of a windowed mistral depends only on its receptive field, shifted anywhere', () => {
    // 2 layers, window 3: position i sees tokens i-4..i, and RoPE scores depend on relative positions only.
    const win = rows('all:mistral-window'), full = rows('all:mistral');
    for (const i of WINDOW_POS) {
      expect(relErr(win[i], last(`sub:mistral-window:${i}`))).toBeLessThan(1e-12);
      expect(relErr(full[i], last(`sub:mistral:${i}`))).toBeGreaterThan(1e-4); // no window: the far past matters
    }
  });

  it('gemma2: sliding window on even layers only (i − window < j ≤ i); soft-caps bound scores and logits', () => {
    const { cache } = R<ReferenceCacheResult>('cache:gemma2-window');
    const [p0, p1] = [cache[GEMMA_NAMES[0]] as number[][][], cache[GEMMA_NAMES[1]] as number[][][]];
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < T; i++) {
        for (let j = 0; j < T; j++) {
          expect(p0[h][i][j] > 0, `layer 0 [${h}][${i}][${j}]`).toBe(j <= i && j > i - 4);
          expect(p1[h][i][j] > 0, `layer 1 [${h}][${i}][${j}]`).toBe(j <= i);
        }
      }
    }
    const scores = flat(cache[GEMMA_NAMES[2]]).filter((v) => v !== -Infinity);
    expect(Math.max(...scores.map(Math.abs))).toBeLessThan(2);
    expect(Math.max(...rows('all:gemma2').flat().map(Math.abs))).toBeLessThan(3);
    expect(Math.max(...last('last:gemma2-nocap').map(Math.abs))).toBeGreaterThan(0.5);
  });

  it('parallel blocks: resid_post = resid_pre + attn_out + mlp_out and there is no resid_mid', () => {
    const { cache } = R<ReferenceCacheResult>('cache:neox-parallel');
    const [pre, a, mlp, post] = NEOX_NAMES.map((n) => flat(cache[n]));
    post.forEach((v, i) => expect(v).toBeCloseTo(pre[i] + a[i] + mlp[i], 12));
    expect(E('err:resid-mid')).toMatch(/parallel blocks have no resid_mid/);
  });

  it('rejects bad input with specific errors', () => {
    expect(E('err:kv')).toMatch(/num_key_value_heads=3 does not divide num_attention_heads=4/);
    expect(E('err:type')).toMatch(/unsupported model_type 'bert'/);
    expect(E('err:ids')).toMatch(/token ids \[50\] outside \[0, 50\)/);
    expect(E('err:rules')).toMatch(/unknown rule/);
    expect(E('err:shape')).toMatch(/gpt_neox\.layers\.0\.attention\.query_key_value\.weight has shape \[48, 16\], expected \[96, 32\]/);
    expect(E('err:missing')).toMatch(/no config\.json/);
  });
});
