/**
 * `--stream-weights` and the memory budget from the command line: a streamed run gives the same
 * numbers as a whole-model run, says how it runs, and a model or batch that cannot fit the
 * budget (RELP_HEAP_LIMIT_GB, here made tiny) is refused with one line naming the reason and the
 * largest batch that fits, before anything is computed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromHF } from '../../src/models/architectures/index.ts';
import { estimateBytes } from '../../src/backend/memory-guard.ts';
import { EMBEDDED_MODEL_DIR } from '../../src/hooks/load-model.ts';
import { runCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-stream-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CFG = configFromHF(JSON.parse(readFileSync(join(EMBEDDED_MODEL_DIR, 'config.json'), 'utf8')));
const ARGS = ['--task', 'ioi', '--n', '8', '--methods', 'atp,relp', '--components', 'resid_pre,mlp_out', '--workers', '1', '--force'];

type Run = { scores: Record<string, Record<string, { values: number[][] }>> };

describe('relp patch --stream-weights', () => {
  it('gives the whole-model scores and says how the model runs', async () => {
    const a = await runCli(['patch', ...ARGS, '--out', join(dir, 'whole')]);
    const b = await runCli(['patch', ...ARGS, '--stream-weights', '--out', join(dir, 'streamed')]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stderr).toMatch(/relp: execution: whole model on the heap/);
    expect(b.stderr).toMatch(/relp: execution: weights streamed from disk block by block \(--stream-weights/);
    expect(b.stderr).toMatch(/relp: streamed: \d+ blocks/);
    const ra = JSON.parse(readFileSync(join(dir, 'whole', 'run.json'), 'utf8')) as Run;
    const rb = JSON.parse(readFileSync(join(dir, 'streamed', 'run.json'), 'utf8')) as Run;
    for (const m of ['atp', 'relp']) {
      for (const c of ['resid_pre', 'mlp_out']) {
        const x = ra.scores[m][c].values.flat();
        const y = rb.scores[m][c].values.flat();
        const scale = Math.max(...x.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]))) / scale, `${m}/${c}`).toBeLessThan(1e-5);
      }
    }
  });

  it('refuses a model whose single block does not fit the budget, before loading, in one line', async () => {
    const tiny = estimateBytes(CFG, { batch: 1, pos: 64, backward: true, lastPositionOnly: true, streamed: true }) / 2;
    const r = await runCli(['patch', ...ARGS, '--out', join(dir, 'refused')], { env: { RELP_HEAP_LIMIT_GB: String(tiny / 1e9) } });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('relp: error'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/even streamed, one block of this model .* over the heap budget .*nothing was loaded/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('streams a model that does not fit whole, and names the largest batch that fits when the sweep does not', async () => {
    // A budget between one streamed 64-token pass and the whole model's: streamed without asking.
    const streamed1 = estimateBytes(CFG, { batch: 1, pos: 64, backward: true, lastPositionOnly: true, streamed: true });
    const whole1 = estimateBytes(CFG, { batch: 1, pos: 64, backward: true, lastPositionOnly: true });
    expect(whole1).toBeGreaterThan(1.2 * streamed1);
    const env = { RELP_HEAP_LIMIT_GB: String((1.2 * streamed1) / 1e9) };
    const r = await runCli(['patch', ...ARGS, '--shard-prompts', '8', '--out', join(dir, 'auto')], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/relp: execution: weights streamed from disk block by block: the whole model needs about/);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('relp: error'));
    expect(lines).toHaveLength(1);
    const k = Number(/from 8 to at most (\d+) sequences per forward/.exec(lines[0])?.[1]);
    expect(k).toBeGreaterThan(0);
    expect(k).toBeLessThan(8);
    // The batch it names really runs under the same budget.
    const ok = await runCli(['patch', ...ARGS, '--shard-prompts', String(k), '--out', join(dir, 'auto-ok')], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(dir, 'auto-ok', 'run.json'), 'utf8')).toContain('"relp"');
  });
});
