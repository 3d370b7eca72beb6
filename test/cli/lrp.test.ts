/**
 * Newcomer finding: `relp lrp` on the default `relp` preset printed Σ relevance 24.3 for an
 * output of 8.78 with no hint that other presets conserve, and wrote ANSI colours into pipes and
 * under NO_COLOR. Now it states the gap, measures every preset and names the closest; colours only
 * on a terminal without NO_COLOR.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RELP_BIN, runCli } from './run-cli.ts';
import { useColor } from '../../src/cli/output.ts';

const ARGS = ['lrp', '--text', 'When Mary and John went to the store, John gave a drink to', '--target', ' Mary', '--contrast', ' John'];
const ESC = '\u001b[';

describe('relp lrp', () => {
  it('states the conservation gap of each preset, measured, and names the closest', async () => {
    const j = await runCli([...ARGS, '--json']);
    expect(j.code, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout) as { relevance: number[]; output: number; total: number; conservation: { output: number; presets: Record<string, { total: number; gap: number; relative: number }>; closest: string } };
    // Σ relevance is the sum of the per-token relevances, and the gap is Σ − output (recomputed here).
    expect(Math.abs(r.relevance.reduce((a, b) => a + b, 0) - r.total)).toBeLessThan(1e-6 * Math.max(1, Math.abs(r.total)));
    const c = r.conservation;
    expect(Object.keys(c.presets).sort()).toEqual(['attnlrp', 'relp', 'relp-ah']);
    expect(c.presets.relp!.total).toBeCloseTo(r.total, 10);
    for (const v of Object.values(c.presets)) {
      expect(v.gap).toBeCloseTo(v.total - r.output, 10);
      expect(v.relative).toBeCloseTo((v.total - r.output) / Math.abs(r.output), 10);
    }
    const closest = Object.entries(c.presets).sort((a, b) => Math.abs(a[1].gap) - Math.abs(b[1].gap))[0]![0];
    expect(c.closest).toBe(closest);
    // The finding itself: relp is far from conserving here (Σ ≈ 24.3 vs output ≈ 8.78).
    expect(Math.abs(c.presets.relp!.relative)).toBeGreaterThan(0.5);
    expect(c.closest).not.toBe('relp');

    const text = await runCli(ARGS);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/conservation \(relp\): Σ relevance − output = \+\d+\.\d{4} \(\+\d+% of the output\)/);
    expect(text.stdout).toContain(`--rules ${closest} comes closest`);
    // A pipe gets no colour codes.
    expect(text.stdout).not.toContain(ESC);
  });

  it('colours only a terminal, and never under NO_COLOR', () => {
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true); // no-color.org: set and non-empty
    expect(useColor({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });

  it.skipIf(spawnSync('script', ['--version']).status !== 0)('on a real terminal (a pty): heat line in colour, none with NO_COLOR=1', () => {
    const cmd = [process.execPath, RELP_BIN, ...ARGS].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const run = (env: NodeJS.ProcessEnv) => spawnSync('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    const { NO_COLOR: _n, ...base } = process.env;
    const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: { ...base, TERM: 'xterm' }, encoding: 'utf8', timeout: 120_000 });
    expect(tty.status, tty.stderr).toBe(0);
    expect(tty.stdout).toContain(`${ESC}48;2;`);
    const plain = run({ NO_COLOR: '1', TERM: 'xterm' });
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('conservation (relp)');
    expect(plain.stdout).not.toContain(`${ESC}48;2;`);
  });
});
