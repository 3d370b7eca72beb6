/**
 * Issue acceptance on the embedded model: `relp circuit --task ioi --n 32 --method eap-relp`
 * reaches 80% of the normalised logit difference with at most 20% of the edges, and the
 * written faithfulness curve holds measured (not constant) endpoints.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli/run-cli.ts';
import { readFaithfulnessFile } from '../../src/contracts/faithfulness.ts';

describe('circuits on the embedded IOI model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-circuit-accept-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('eap-relp recovers ≥ 80% of the normalised LD with ≤ 20% of the edges', async () => {
    const out = join(dir, 'c');
    const r = await runCli(['circuit', '--task', 'ioi', '--n', '32', '--method', 'eap-relp', '--out', out, '--no-progress', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { edges_total: number; methods: Record<string, { edges_for_80: number | null; auc: number }> };
    const m = summary.methods['eap-relp'];
    expect(m.edges_for_80).not.toBeNull();
    expect(m.edges_for_80!).toBeLessThanOrEqual(0.2 * summary.edges_total);
    const f = readFaithfulnessFile(out).curves[0]!;
    // m(full) and m(∅) are measured by running the model: clean-like and corrupt-like, not 1 and 0 constants.
    expect(f.full).not.toBe(f.empty);
    const reach = f.curve.find((p) => p.recovered >= 0.8);
    expect(reach && reach.fraction_edges! <= 0.2).toBe(true);
  });
});
