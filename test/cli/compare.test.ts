import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run-cli.ts';
import { writeRunFile, type RunFileContent } from '../../src/contracts/run.ts';

describe('relp compare', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-compare-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const act = [
    [0.1, 0.5, -0.2],
    [0.9, 0.0, 0.3],
  ];
  const atp = [
    [0.2, 0.4, -0.1],
    [0.7, 0.1, 0.5],
  ];
  const run: RunFileContent = {
    created: '2026-11-24T00:00:00Z',
    provenance: { task: 'ioi', seed: 0, dataset_sha256: 'a'.repeat(64), model_sha256: 'b'.repeat(64) },
    model: { path: '/m', config: {}, sha256: '0'.repeat(64) },
    dataset: { kind: 'ioi', seed: 0, pairs: [] },
    metric: { name: 'normalised_logit_diff', clean: 3, corrupt: 0, direction: 'denoising' },
    scores: {
      activation: { resid_pre: { axes: ['layer', 'pos'], shape: [2, 3], values: act } },
      atp: { resid_pre: { axes: ['layer', 'pos'], shape: [2, 3], values: atp } },
    },
    labels: ['a', 'b', 'c'],
    rules: 'relp-ah',
    timings: {},
  };
  writeRunFile(dir, run);
  writeFileSync(join(dir, 'faithfulness.json'), JSON.stringify([{ method: 'eap-relp', ablation: 'corrupt', curve: [], full: 2.5, empty: 0.4, auc: 0.91 }]));

  it('--json gives the Pearson r and Spearman ρ computed by hand, with the preset named', async () => {
    const r = await runCli(['compare', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { rules: string; correlations: { rows: { component: string; cells: Record<string, { pearson: number; spearman: number; n: number }> }[] } };
    expect(j.rules).toBe('relp-ah');
    // By hand: x = activation = [0.1, 0.5, −0.2, 0.9, 0, 0.3], y = atp = [0.2, 0.4, −0.1, 0.7, 0.1, 0.5].
    // x̄ = 1.6/6 = 0.2667, ȳ = 1.8/6 = 0.3. Sxy = Σxy − 6x̄ȳ = 0.02+0.2+0.02+0.63+0+0.15 − 0.48 = 0.54;
    // Sxx = Σx² − 6x̄² = 1.2 − 0.42667 = 0.77333; Syy = Σy² − 6ȳ² = 0.96 − 0.54 = 0.42.
    // r = 0.54 / sqrt(0.77333 · 0.42) = 0.54 / 0.569912 = 0.947514.
    // Ranks: x → [3, 5, 1, 6, 2, 4], y → [3, 4, 1, 6, 2, 5]; Σd² = 0+1+0+0+0+1 = 2 → ρ = 1 − 6·2/(6·35) = 33/35.
    const cell = j.correlations.rows.find((row) => row.component === 'resid_pre')!.cells.atp!;
    expect(cell.n).toBe(6);
    expect(cell.pearson).toBeCloseTo(0.54 / Math.sqrt((1.2 - 1.6 ** 2 / 6) * 0.42), 12);
    expect(cell.pearson).toBeCloseTo(0.947514, 5);
    expect(cell.spearman).toBeCloseTo(33 / 35, 12);
  });

  it('prints the Table-1 layout and the circuit methods side by side', async () => {
    const r = await runCli(['compare', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/relp rules: relp-ah/);
    expect(r.stdout).toMatch(/resid_pre/);
    expect(r.stdout).toMatch(/eap-relp\s+auc 0\.910/);
  });

  it('prints no correlation for scores that are rounding noise, says why under the table, and warns in one line', async () => {
    const d = join(dir, 'noise');
    // logit_diff, clean 3, corrupt 0: S = max(3, max |activation| 0.9) = 3, so "all 0" means max |score| ≤ 3e-5.
    const noise = act.map((row) => row.map((v) => v * 1e-9));
    writeRunFile(d, { ...run, metric: { name: 'logit_diff', clean: 3, corrupt: 0, direction: 'denoising' }, scores: { ...run.scores, relp: { resid_pre: { axes: ['layer', 'pos'], shape: [2, 3], values: noise } } } });
    const r = await runCli(['compare', d]);
    expect(r.code, r.stderr).toBe(0);
    const reason = "all scores are 0 (max |score| ≤ 1e-5 × S, S = max(|clean − corrupt|, max |activation|) = 3.00): a gradient estimate is all 0 when the metric's gradient vanishes at the base run, e.g. KL at the clean run";
    expect(r.stdout).toMatch(/^resid_pre\s+0\.948 \( 0\.943\)\s+– \(all 0\)$/m);
    expect(r.stdout).toContain(`note: – (all 0) relp (resid_pre): no correlation: ${reason}`);
    expect(r.stderr.split('\n').filter((l) => l.includes('warning'))).toEqual([`relp: warning: no correlation for relp (resid_pre): ${reason}`]);
    const j = JSON.parse((await runCli(['compare', d, '--json'])).stdout) as { correlations: { rows: { cells: Record<string, unknown> }[] } };
    expect(j.correlations.rows[0]!.cells.relp).toEqual({ pearson: null, spearman: null, n: 6, kind: 'all-zero', reason });
  });

  it('names a missing or corrupt run file', async () => {
    const bad = join(dir, 'bad');
    const r = await runCli(['compare', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\/run\.json does not exist/);
  });

  // Corrupt and old-version files: each is refused naming the file, the field and the problem (no stack trace).
  const variant = (name: string, text: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'run.json'), text);
    return d;
  };
  const good = () => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  it.each([
    ['truncated JSON', () => JSON.stringify(good()).slice(0, 150), /truncated\/run\.json is not valid JSON: it ends early at line 1, column 151 \(truncated or partially written\?\)/],
    ['a missing field', () => JSON.stringify({ ...good(), labels: undefined }), /missing-field\/run\.json: labels is missing \(expected an array\)/],
    ['a wrong type', () => JSON.stringify({ ...good(), metric: { ...good().metric, clean: 'high' } }), /wrong-type\/run\.json: metric\.clean is a string, expected a finite number/],
    ['an unknown version', () => JSON.stringify({ ...good(), version: 9, written_by: 'relp 4.2.0' }), /unknown-version\/run\.json: version is 9: this run file was written by relp 4\.2\.0 and this relp reads versions 1, 2/],
  ])('names %s in run.json', async (what, text, expected) => {
    const d = variant(what.replace(/^an? /, '').replace(/ /g, '-').replace('JSON', '').replace(/-$/, '') || 'x', text());
    const r = await runCli(['compare', d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(expected);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('names a corrupt faithfulness.json instead of parsing it bare', async () => {
    const d = join(dir, 'bad-faith');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'run.json'), readFileSync(join(dir, 'run.json')));
    writeFileSync(join(d, 'faithfulness.json'), JSON.stringify([{ method: 'eap', curve: [{ edges: 1, recovered: 'x' }] }]));
    const r = await runCli(['compare', d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-faith\/faithfulness\.json: \[0\]\.curve\[0\]\.recovered is a string, expected a finite number/);
  });
});
