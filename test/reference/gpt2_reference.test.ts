/**
 * Self-tests of the PyTorch reference (gpt2_reference.py), independent of relp's own model:
 * identities of activation patching, finite differences for AtP, and "frozen" models for the
 * LRP rules (a detach rule's gradient is the true gradient of the model with that quantity
 * held at the base run's value).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import {
  PYTHON,
  runTorchReference,
  torchAvailable,
  type ReferenceCacheResult,
  type ReferenceLogitsResult,
  type ReferenceLrpResult,
  type ReferencePatchResult,
  type ScoreGrids,
} from '../helpers/torch-reference.ts';

const CHECK_FORWARD = fileURLToPath(new URL('./check_forward.py', import.meta.url));
const COMPONENTS = ['resid_pre', 'attn_out', 'mlp_out'];
const IDS = [1, 5, 7, 3, 49, 0];
const T = 6;
const N_LAYERS = 2;

interface Pair { clean_ids: number[]; corrupt_ids: number[]; answer_id: number; wrong_id: number }
// Corrupt prompts differ from clean ones at positions 1 and 4 (prompt-dependent); position 0 never.
const PAIRS: Pair[] = [
  { clean_ids: [3, 11, 7, 20, 11, 5], corrupt_ids: [3, 11, 7, 20, 30, 5], answer_id: 7, wrong_id: 20 },
  { clean_ids: [8, 2, 9, 14, 2, 40], corrupt_ids: [8, 2, 9, 14, 33, 40], answer_id: 9, wrong_id: 14 },
  { clean_ids: [1, 45, 6, 28, 45, 17], corrupt_ids: [1, 12, 6, 28, 45, 17], answer_id: 6, wrong_id: 28 },
];
// Differ only at the last position.
const LAST_ONLY: Pair[] = [
  { clean_ids: [3, 11, 7, 20, 11, 5], corrupt_ids: [3, 11, 7, 20, 11, 22], answer_id: 7, wrong_id: 20 },
  { clean_ids: [8, 2, 9, 14, 2, 40], corrupt_ids: [8, 2, 9, 14, 2, 41], answer_id: 9, wrong_id: 14 },
];

let dir = '';
const model = (name: string) => join(dir, name);
const pairsFile = (name: string) => join(dir, `${name}.json`);

const logits = async (m: string, ids: number[], extra: string[] = []) =>
  (await runTorchReference('logits', ['--model', model(m), '--ids', ids.join(','), ...extra])) as ReferenceLogitsResult;
const patch = async (pairs: string, extra: string[]) =>
  (await runTorchReference('patch', ['--model', model('f32'), '--pairs', pairsFile(pairs), ...extra])) as ReferencePatchResult;
const lrp = async (m: string, rules: string) =>
  (await runTorchReference('lrp', ['--model', model(m), '--ids', IDS.join(','), '--target', '7', '--contrast', '20',
    '--rules', rules])) as ReferenceLrpResult;

/** Mean batch logit difference at the last position, from one `logits` call per prompt. */
async function meanLD(prompts: number[][], pairs: Pair[]): Promise<number> {
  const lds = await Promise.all(prompts.map(async (ids, i) => {
    const l = (await logits('f32', ids)).logits as number[];
    return l[pairs[i].answer_id] - l[pairs[i].wrong_id];
  }));
  return lds.reduce((a, b) => a + b, 0) / lds.length;
}

/** Central finite difference (m(+h) - m(-h)) / 2h from two activation-patching runs with --alpha=±h. */
async function finiteDifference(extra: string[], h = 1e-4): Promise<ScoreGrids> {
  const [plus, minus] = await Promise.all([
    patch('pairs', ['--methods', 'activation', `--alpha=${h}`, ...extra]),
    patch('pairs', ['--methods', 'activation', `--alpha=${-h}`, ...extra]),
  ]);
  const out: ScoreGrids = {};
  for (const c of COMPONENTS) {
    out[c] = plus.scores.activation[c].map((row, l) => row.map((v, p) => (v - minus.scores.activation[c][l][p]) / (2 * h)));
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

describe.skipIf(!torchAvailable())('gpt2_reference.py', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'relp-torch-ref-'));
    writeTinyGPT2(model('f32'), { seed: 7 });
    writeTinyGPT2(model('bf16'), { seed: 7, dtype: 'BF16', shards: 3, prefix: true });
    writeTinyGPT2(model('f16'), { seed: 7, dtype: 'F16', shards: 2 });
    writeTinyGPT2(model('gelu'), { seed: 3, act: 'gelu' });
    writeTinyGPT2(model('nobias'), { seed: 5, zeroBias: true });
    writeFileSync(pairsFile('pairs'), JSON.stringify({ pairs: PAIRS }));
    writeFileSync(pairsFile('last'), JSON.stringify({ pairs: LAST_ONLY }));
    writeFileSync(pairsFile('ragged'), JSON.stringify({ pairs: [PAIRS[0], { ...PAIRS[1], corrupt_ids: [8, 2, 9] }] }));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads F32, F16 and BF16, sharded and `transformer.`-prefixed checkpoints to the same logits', async () => {
    const [a, b, c] = await Promise.all([logits('f32', IDS), logits('bf16', IDS), logits('f16', IDS)]);
    expect((a.logits as number[]).length).toBe(50);
    expect(b.logits).toEqual(a.logits); // the fixture's weights are exact in every dtype
    expect(c.logits).toEqual(a.logits);
  }, 60_000);

  it.each(['f32', 'gelu'])('forward (%s) agrees with a GPT-2 assembled from torch.nn modules', (m) => {
    const r = spawnSync(PYTHON, [CHECK_FORWARD, '--model', model(m), '--ids', IDS.join(',')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { max_abs_diff: diff, max_abs_logit: scale } = JSON.parse(r.stdout) as { max_abs_diff: number; max_abs_logit: number };
    expect(scale).toBeGreaterThan(0.5);
    expect(diff).toBeLessThan(1e-12);
  }, 60_000);

  it('is causal: --all-positions rows equal runs on prefixes; --float32 stays close', async () => {
    const [all, prefix, f32] = await Promise.all([
      logits('f32', IDS, ['--all-positions']), logits('f32', IDS.slice(0, 3)), logits('f32', IDS, ['--float32'])]);
    const rows = all.logits as number[][];
    expect(rows).toHaveLength(T);
    const close = (x: number[], y: number[], tol: number) => x.forEach((v, i) => expect(Math.abs(v - y[i])).toBeLessThan(tol));
    close(rows[2], prefix.logits as number[], 1e-12);
    close(rows[T - 1], f32.logits as number[], 1e-4);
  }, 60_000);

  it('cache: LN hook_scale is sqrt(var + eps) of the centred input; causal scores are masked', async () => {
    const names = ['blocks.1.hook_resid_mid', 'blocks.1.ln2.hook_scale', 'blocks.0.attn.hook_attn_scores', 'blocks.0.attn.hook_pattern'];
    const { cache } = (await runTorchReference('cache', ['--model', model('f32'), '--ids', IDS.join(','), '--names', names.join(',')])) as ReferenceCacheResult;
    const resid = cache[names[0]] as number[][]; // [pos, d_model]
    const scale = cache[names[1]] as number[][]; // [pos, 1]
    resid.forEach((x, p) => {
      const mean = x.reduce((a, b) => a + b, 0) / x.length;
      const v = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
      expect(scale[p][0]).toBeCloseTo(Math.sqrt(v + 1e-5), 12);
    });
    const scores = cache[names[2]] as (number | null)[][][]; // [head, q, k]
    const pattern = cache[names[3]] as number[][][];
    for (let h = 0; h < 2; h++) {
      for (let q = 0; q < T; q++) {
        for (let k = 0; k < T; k++) expect(scores[h][q][k] === null).toBe(k > q);
        expect(pattern[h][q].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      }
    }
  }, 60_000);

  it('activation patching of resid_pre at layer 0 equals running the corrupt prompt with the clean token', async () => {
    const [res, raw, ldClean, ldCorrupt] = await Promise.all([
      patch('pairs', ['--methods', 'activation']),
      patch('pairs', ['--methods', 'activation', '--raw-metric']),
      meanLD(PAIRS.map((p) => p.clean_ids), PAIRS),
      meanLD(PAIRS.map((p) => p.corrupt_ids), PAIRS),
    ]);
    expect(res.metric.clean).toBeCloseTo(ldClean, 12);
    expect(res.metric.corrupt).toBeCloseTo(ldCorrupt, 12);
    const positions = [1, 4];
    const lds = await Promise.all(positions.map((pos) =>
      meanLD(PAIRS.map((p) => p.corrupt_ids.map((t, i) => (i === pos ? p.clean_ids[pos] : t))), PAIRS)));
    for (const [j, pos] of positions.entries()) {
      const ld = lds[j];
      expect(raw.scores.activation.resid_pre[0][pos]).toBeCloseTo(ld, 12);
      expect(res.scores.activation.resid_pre[0][pos]).toBeCloseTo((ld - ldCorrupt) / (ldClean - ldCorrupt), 10);
    }
    // Before the first differing position nothing changes: exactly the corrupt run.
    for (const c of COMPONENTS) for (let l = 0; l < N_LAYERS; l++) expect(res.scores.activation[c][l][0]).toBe(0);
  }, 60_000);

  it('patching resid_pre at the last position restores the clean run when only the last token differs', async () => {
    const res = await patch('last', ['--methods', 'activation', '--components', 'resid_pre']);
    for (let l = 0; l < N_LAYERS; l++) {
      for (let p = 0; p < T; p++) {
        if (p === T - 1) expect(res.scores.activation.resid_pre[l][p]).toBeCloseTo(1, 12);
        else expect(res.scores.activation.resid_pre[l][p]).toBe(0);
      }
    }
  }, 60_000);

  it.each(['denoising', 'noising'])('atp equals the finite-difference derivative of activation patching (%s)', async (direction) => {
    const [atp, fd] = await Promise.all([
      patch('pairs', ['--methods', 'atp', '--direction', direction]),
      finiteDifference(['--direction', direction]),
    ]);
    expectGridsClose(atp.scores.atp, fd, 1e-6);
  }, 60_000);

  // Each LRP rule detaches a quantity; its gradient is the true derivative of the model with that
  // quantity frozen at the base (corrupt) run's values, which --freeze builds without any detach.
  it.each([
    ['ln', 'ln'],
    ['relp', 'ln,act'],
    ['relp-ah', 'ln,act,attn'],
  ])('relp --rules %s equals the finite-difference derivative of the model frozen at %s', async (rules, freeze) => {
    const [relp, fd] = await Promise.all([
      patch('pairs', ['--methods', 'relp', '--rules', rules]),
      finiteDifference(['--freeze', freeze]),
    ]);
    expectGridsClose(relp.scores.relp, fd, 1e-6);
    expect(Math.max(...COMPONENTS.flatMap((c) => relp.scores.relp[c].flat().map(Math.abs)))).toBeGreaterThan(0.1);
  }, 60_000);

  it('relp-ah equals full activation patching of the model made linear (LN, GELU ratio, attention frozen)', async () => {
    const [relp, act, atp] = await Promise.all([
      patch('pairs', ['--methods', 'relp,atp', '--rules', 'relp-ah']),
      patch('pairs', ['--methods', 'activation', '--freeze', 'ln,act,attn']),
      patch('pairs', ['--methods', 'atp', '--rules', 'relp-ah']),
    ]);
    expectGridsClose(relp.scores.relp, act.scores.activation, 1e-4);
    expect(atp.scores.atp).toEqual(relp.scores.atp); // --rules never changes plain AtP
    expect(relp.scores.relp.mlp_out).not.toEqual(relp.scores.atp.mlp_out);
  }, 60_000);

  it('lrp: output is the logit difference; relp-ah relevance is conserved on a bias-free model', async () => {
    const [none, ah, l] = await Promise.all([lrp('nobias', 'none'), lrp('nobias', 'relp-ah'), logits('nobias', IDS)]);
    const ld = (l.logits as number[])[7] - (l.logits as number[])[20];
    expect(none.output).toBeCloseTo(ld, 12);
    expect(ah.output).toBeCloseTo(ld, 12);
    expect(ah.relevance).toHaveLength(T);
    // Frozen LN scale, GELU ratio and attention make the output degree-1 homogeneous in the
    // embeddings (Euler), up to the 1e-6 offset of the Identity-rule's denominator.
    const total = ah.relevance.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - ah.output)).toBeLessThan(1e-5 * (1 + Math.abs(ah.output)));
    expect(Math.abs(none.relevance.reduce((a, b) => a + b, 0) - none.output)).toBeGreaterThan(1e-3);
  }, 60_000);

  it('rejects bad input with specific errors', async () => {
    await expect(patch('ragged', [])).rejects.toThrow(/pairs\[1\]\.corrupt_ids has 3 tokens.*same length/);
    await expect(logits('f32', [1, 2, 50])).rejects.toThrow(/token ids \[50\] outside \[0, 50\)/);
    await expect(patch('pairs', ['--rules', 'relp,foo'])).rejects.toThrow(/unknown rule/);
    await expect(patch('pairs', ['--components', 'hook_q'])).rejects.toThrow(/component 'hook_q'/);
    await expect(runTorchReference('logits', ['--model', join(dir, 'missing'), '--ids', '1'])).rejects.toThrow(/config\.json/);
  }, 60_000);
});
