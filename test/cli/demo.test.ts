/**
 * `relp demo --no-serve` (what `npm start` runs) on the embedded model: writes a run file with
 * the recorded pairs, and an independent PyTorch forward of the shipped weights on those pairs
 * gives IOI accuracy ≥ 0.95 and mean clean logit difference ≥ 3.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './run-cli.ts';
import { runTorchReference, torchAvailable } from '../helpers/torch-reference.ts';
import { EMBEDDED_MODEL_DIR } from '../../src/hooks/load-model.ts';
import type { RunFile } from '../../src/contracts/run.ts';

describe('relp demo --no-serve', () => {
  let dir: string;
  let out: string;
  let res: CliResult;
  let run: RunFile;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relp-demo-'));
    out = join(dir, 'demo');
    res = await runCli(['demo', '--no-serve', '--out', out]);
    if (res.code === 0) run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunFile;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes run.json with the model path, ≥ 32 recorded pairs with ids, and all three methods', () => {
    expect(res.code, res.stderr).toBe(0);
    expect(run.model.path).toBe(EMBEDDED_MODEL_DIR);
    expect(run.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.dataset.pairs.length).toBeGreaterThanOrEqual(32);
    for (const p of run.dataset.pairs) {
      expect(p.clean_ids.length).toBe(p.corrupt_ids.length);
      expect(Number.isInteger(p.answer_id) && Number.isInteger(p.wrong_id)).toBe(true);
    }
    for (const m of ['activation', 'atp', 'relp']) for (const c of ['resid_pre', 'attn_out', 'mlp_out', 'z']) expect(run.scores[m][c as 'z']).toBeDefined();
    expect(run.labels).toHaveLength(run.dataset.pairs[0].clean_ids.length);
    expect(res.stdout).toMatch(/Correlation with activation patching/);
    expect(res.stdout).toMatch(/Top heads by activation patching/);
  });

  it('corrupts by swapping the names by default, as the RelP paper\'s demo does (the answer flips)', () => {
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/swapped names corruption/);
    for (const p of run.dataset.pairs) {
      // A swap uses only the clean prompt's own names (ABC would bring in a third name).
      const clean = new Set(p.clean_ids);
      expect(p.corrupt_ids.every((id) => clean.has(id))).toBe(true);
      expect(p.corrupt_ids).not.toEqual(p.clean_ids);
    }
    // Swapping the names flips the answer: the corrupt run prefers the other name.
    expect(run.metric.corrupt).toBeLessThan(0);
  });

  it('`relp patch --task ioi --n 64` is the demo\'s sweep: the same plan, shard for shard, and the same printed table', async () => {
    expect(res.code, res.stderr).toBe(0);
    // In a copy of the demo's folder: a shard is reused only when the plan's hash (prompts, model
    // weights, methods, components, metric, direction, rules, shard sizes) is the demo's, so
    // "computed 0" shows every default is the demo's, and the run takes seconds instead of a sweep.
    // (A fresh folder prints the same table: 27 s by hand on two busy cores.)
    const patchOut = join(dir, 'patch');
    cpSync(out, patchOut, { recursive: true });
    const p = await runCli(['patch', '--task', 'ioi', '--n', '64', '--out', patchOut]);
    expect(p.code, p.stderr).toBe(0);
    const m = /reused (\d+) of (\d+) shards .*, computed (\d+)/.exec(p.stdout);
    expect(m, p.stdout).not.toBeNull();
    expect(m![1]).toBe(m![2]);
    expect(m![3]).toBe('0');
    // The table: its title line through the line before the first blank one (rows, then any notes).
    const tableOf = (stdout: string) => {
      const lines = stdout.split('\n');
      const start = lines.findIndex((l) => l.startsWith('Correlation with activation patching'));
      const end = lines.findIndex((l, i) => i > start && l.trim() === '');
      return start < 0 ? [] : lines.slice(start, end < 0 ? undefined : end);
    };
    const demoTable = tableOf(res.stdout);
    expect(demoTable.filter((l) => /^(resid_pre|attn_out|mlp_out|z)\s/.test(l))).toHaveLength(4);
    expect(tableOf(p.stdout)).toEqual(demoTable);
    // The same prompts, model and metric: the defaults really are the demo's, not just close.
    const patched = JSON.parse(readFileSync(join(patchOut, 'run.json'), 'utf8')) as RunFile;
    expect(patched.provenance).toEqual(run.provenance);
    expect(patched.dataset.corruption).toBe('swap');
    expect(patched.metric).toEqual(run.metric);
    expect(Object.keys(patched.scores).sort()).toEqual(Object.keys(run.scores).sort());
  });

  it.skipIf(!torchAvailable())('PyTorch on the recorded pairs: accuracy ≥ 0.95 and mean clean LD ≥ 3', async () => {
    expect(res.code, res.stderr).toBe(0);
    const pairsFile = join(dir, 'pairs.json');
    writeFileSync(pairsFile, JSON.stringify({ pairs: run.dataset.pairs }));
    const ref = (await runTorchReference('ld', ['--model', EMBEDDED_MODEL_DIR, '--pairs', pairsFile])) as { clean: number[]; corrupt: number[] };
    const acc = ref.clean.filter((x) => x > 0).length / ref.clean.length;
    const mean = ref.clean.reduce((a, b) => a + b, 0) / ref.clean.length;
    expect(acc).toBeGreaterThanOrEqual(0.95);
    expect(mean).toBeGreaterThanOrEqual(3);
    // relp's recorded clean metric agrees with PyTorch.
    expect(Math.abs(run.metric.clean! - mean)).toBeLessThan(1e-3 * Math.max(1, Math.abs(mean)));
  });
});
