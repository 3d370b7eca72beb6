import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleCorrelation } from 'simple-statistics';
import { runCli } from './run-cli.ts';
import { RUN_VERSION, writeRunFile, type RunFile } from '../../src/patching/run-file.ts';

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
  const run: RunFile = {
    version: RUN_VERSION,
    created: '2026-11-24T00:00:00Z',
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

  it('--json gives Pearson r equal to an independent computation, with the preset named', async () => {
    const r = await runCli(['compare', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { rules: string; correlations: Record<string, Record<string, { pearson: number }>> };
    expect(j.rules).toBe('relp-ah');
    expect(j.correlations.resid_pre.atp.pearson).toBeCloseTo(sampleCorrelation(act.flat(), atp.flat()), 10);
  });

  it('prints the Table-1 layout and the circuit methods side by side', async () => {
    const r = await runCli(['compare', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/relp rules: relp-ah/);
    expect(r.stdout).toMatch(/resid_pre/);
    expect(r.stdout).toMatch(/eap-relp\s+auc 0\.910/);
  });

  it('names a missing or corrupt run file', async () => {
    const bad = join(dir, 'bad');
    const r = await runCli(['compare', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read run file/);
  });
});
