/**
 * `relp patch` reports: under KL noising the metric's gradient vanishes at the base run (KL is 0,
 * its minimum, on the clean run), so every AtP, AtP* and RelP score is rounding noise. The table must
 * print no correlation for them, say why, and `relp compare` must warn in one line.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run-cli.ts';
import type { RunFile } from '../../src/contracts/run.ts';

describe('relp patch --metric kl --direction noising (embedded model)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-patch-kl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'run');
  const components = ['resid_post', 'k'];
  const gradientMethods = ['atp', 'atp*', 'relp'];
  // The table's rows: the lines of stdout that start with a component name.
  const rowsOf = (stdout: string) => stdout.split('\n').filter((l) => components.some((c) => l.startsWith(`${c} `)));

  it('prints no correlation for AtP, AtP* and RelP, with the reason, and compare warns in one line', { timeout: 120_000 }, async () => {
    const args = ['patch', '--task', 'ioi', '--n', '4', '--direction', 'noising', '--metric', 'kl', '--methods', 'activation,atp,atp*,relp', '--components', components.join(','), '--workers', '1', '--out', out];
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);

    // The scores really are noise next to activation patching's (what made the old table mislead).
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunFile;
    const flat = (m: string, c: string) => (run.scores[m]![c]!.values as unknown[]).flat(3) as number[];
    const actMax = Math.max(...components.flatMap((c) => flat('activation', c).map(Math.abs)));
    expect(actMax).toBeGreaterThan(0.01);
    for (const m of gradientMethods) for (const c of components) expect(Math.max(...flat(m, c).map(Math.abs)), `${m}/${c}`).toBeLessThan(1e-5 * actMax);

    const rows = rowsOf(r.stdout);
    expect(rows.map((l) => l.split(/\s/)[0])).toEqual(components);
    for (const row of rows) {
      // Every method column says why, and the row holds nothing else: no number.
      expect(row.match(/– \(no gradient\)/g), row).toHaveLength(gradientMethods.length);
      expect(row.replace(/– \(no gradient\)/g, '').trim(), row).toBe(row.split(' ')[0]);
      expect(row, row).not.toMatch(/\d/);
    }
    expect(r.stdout).toContain("note: – (no gradient) atp, atp*, relp (every component): no correlation: the metric's gradient vanishes at the base run");
    expect(r.stdout).toMatch(/atp\* vs \|activation\| r \(ρ\)/);

    const c = await runCli(['compare', out]);
    expect(c.code, c.stderr).toBe(0);
    expect(rowsOf(c.stdout)).toEqual(rows);
    const warnings = c.stderr.split('\n').filter((l) => l.includes('warning'));
    expect(warnings).toEqual([expect.stringMatching(/^relp: warning: no correlation for atp, atp\*, relp \(every component\): the metric's gradient vanishes at the base run/)]);

    const j = await runCli(['compare', out, '--json']);
    expect(j.code, j.stderr).toBe(0);
    const table = (JSON.parse(j.stdout) as { correlations: { rows: { cells: Record<string, { pearson: number | null; spearman: number | null; reason?: string }> }[] } }).correlations;
    for (const row of table.rows) {
      for (const m of gradientMethods) expect(row.cells[m]).toMatchObject({ pearson: null, spearman: null, kind: 'vanishing-gradient', reason: expect.stringMatching(/KL to the clean distribution/) });
    }
  });
});
