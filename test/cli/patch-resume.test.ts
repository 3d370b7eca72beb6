/**
 * A sweep killed mid-way and started again with the same --out resumes from progress.json
 * and gives the same result as an uninterrupted run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import { RELP_BIN, runCli } from './run-cli.ts';
import type { RunFile } from '../../src/contracts/run.ts';

const TOK = new URL('../fixtures/gpt2-tokenizer/', import.meta.url).pathname;

describe('relp patch resume', () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'relp-resume-'));
    model = join(dir, 'model');
    writeTinyGPT2(model, { nLayer: 6, nHead: 2, nEmbd: 32, vocab: 50257, nPositions: 64, seed: 3, std: 0.2 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(TOK, f), join(model, f));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const args = (out: string) => ['patch', '--model', model, '--task', 'ioi', '--n', '4', '--methods', 'activation', '--components', 'resid_pre,attn_out,mlp_out', '--batch', '8', '--out', out];

  it('resumes after SIGKILL and matches an uninterrupted run', async () => {
    const full = join(dir, 'full');
    const r1 = await runCli(args(full));
    expect(r1.code, r1.stderr).toBe(0);

    const out = join(dir, 'killed');
    const progress = join(out, 'progress.json');
    // Shards of this tiny model take milliseconds: slow each one so the kill lands mid-run.
    const child = spawn(process.execPath, [RELP_BIN, ...args(out)], { stdio: 'ignore', env: { ...process.env, RELP_TEST_SHARD_DELAY_MS: '150' } });
    let partial = 0;
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(progress)) {
          try {
            partial = Object.keys((JSON.parse(readFileSync(progress, 'utf8')) as { done: object }).done).length;
          } catch {
            return; // being renamed into place
          }
          if (partial >= 2) {
            child.kill('SIGKILL');
            clearInterval(poll);
          }
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(poll);
        resolve();
      });
    });
    expect(existsSync(join(out, 'run.json'))).toBe(false); // it really was interrupted
    expect(partial).toBeGreaterThanOrEqual(2);
    expect(partial).toBeLessThan(18); // 3 components × 6 layers

    const r2 = await runCli(args(out));
    expect(r2.code, r2.stderr).toBe(0);
    const a = JSON.parse(readFileSync(join(full, 'run.json'), 'utf8')) as RunFile;
    const b = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunFile;
    // The resumed run says what it reused: whole (component, layer) shards of T cells each, at least
    // the shards saved before the kill, out of 3 components × 6 layers (× T positions).
    const T = b.labels.length;
    const m = /resumed from .*progress\.json: reused (\d+) of (\d+) shards \((\d+) of (\d+) units[^)]*\), computed (\d+)/.exec(r2.stdout);
    expect(m, r2.stdout).not.toBeNull();
    const [reused, total, cells, totalCells, computed] = m!.slice(1).map(Number) as [number, number, number, number, number];
    expect(total).toBe(18);
    expect(totalCells).toBe(18 * T);
    expect(cells).toBe(reused * T);
    expect(reused).toBeGreaterThanOrEqual(partial);
    expect(reused).toBeLessThan(total);
    expect(computed).toBe(total - reused);
    // An uninterrupted run reuses nothing and says nothing about resuming.
    expect(r1.stdout).not.toMatch(/resumed/);
    for (const c of ['resid_pre', 'attn_out', 'mlp_out'] as const) {
      const x = (a.scores.activation[c]!.values as number[][]).flat();
      const y = (b.scores.activation[c]!.values as number[][]).flat();
      x.forEach((v, i) => expect(Math.abs(v - y[i])).toBeLessThan(1e-6));
    }
  });
});
