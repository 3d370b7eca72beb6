/**
 * The CLI on an HF-layout GPT-2 folder (GPT-2 BPE tokenizer) against an independent PyTorch
 * implementation: `relp logits --json` (issue 2) and `relp patch` activation / atp / relp scores
 * on a JSONL dataset (issues 3 and 4), to 1e-3 relative.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import { runTorchReference, torchAvailable, type ReferencePatchResult, type ReferenceLogitsResult } from '../helpers/torch-reference.ts';
import { runCli } from './run-cli.ts';
import type { RunFile } from '../../src/contracts/run.ts';

const TOK = new URL('../fixtures/gpt2-tokenizer/', import.meta.url).pathname;

/** max |a − b| ≤ tol · max(|b|) over a grid (relative to the grid's scale). */
function expectClose(got: number[][], want: number[][], tol: number, what: string): void {
  const g = got.flat();
  const w = want.flat();
  expect(g.length, what).toBe(w.length);
  const scale = Math.max(1e-6, ...w.map(Math.abs));
  const err = Math.max(...g.map((v, i) => Math.abs(v - w[i])));
  expect(err / scale, `${what}: max abs err ${err} vs scale ${scale}`).toBeLessThan(tol);
}

describe.skipIf(!torchAvailable())('CLI vs PyTorch reference on an HF-layout GPT-2 folder', () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'relp-cli-torch-'));
    model = join(dir, 'model');
    writeTinyGPT2(model, { nLayer: 2, nHead: 2, nEmbd: 32, vocab: 50257, nPositions: 64, seed: 7, std: 0.2 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(TOK, f), join(model, f));
    writeFileSync(
      join(dir, 'data.jsonl'),
      [
        { clean: 'When Mary and John went to the store, John gave a drink to', corrupt: 'When Mary and John went to the store, Paul gave a drink to', answer: ' Mary', wrong: ' John' },
        { clean: 'When Sarah and David went to the school, David gave a book to', corrupt: 'When Sarah and David went to the school, Peter gave a book to', answer: ' Sarah', wrong: ' David' },
        { clean: 'When Anna and James went to the park, James gave a ring to', corrupt: 'When Anna and James went to the park, Henry gave a ring to', answer: ' Anna', wrong: ' James' },
      ]
        .slice(0, 3)
        .map((o) => JSON.stringify(o))
        .join('\n') + '\n',
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('relp logits --json equals PyTorch logits to 1e-3 relative', async () => {
    const r = await runCli(['logits', '--model', model, '--text', 'Hello world, this is relp', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const got = JSON.parse(lines[0]) as { ids: number[]; logits: number[] };
    expect(got.ids.slice(0, 2)).toEqual([15496, 995]);
    const ref = (await runTorchReference('logits', ['--model', model, '--ids', got.ids.join(',')])) as ReferenceLogitsResult;
    expectClose([got.logits], [ref.logits as number[]], 1e-3, 'logits');
  });

  for (const rules of ['relp', 'relp-ah'] as const) {
    it(`relp patch (activation, atp, relp --rules ${rules}) equals PyTorch on resid_pre, attn_out, mlp_out`, async () => {
      const out = join(dir, `run-${rules}`);
      const r = await runCli(['patch', '--model', model, '--dataset', join(dir, 'data.jsonl'), '--methods', 'activation,atp,relp', '--rules', rules, '--components', 'resid_pre,attn_out,mlp_out', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunFile;
      expect(run.dataset.pairs).toHaveLength(3);
      const pairsFile = join(dir, `pairs-${rules}.json`);
      writeFileSync(pairsFile, JSON.stringify({ pairs: run.dataset.pairs }));
      const ref = (await runTorchReference('patch', ['--model', model, '--pairs', pairsFile, '--methods', 'activation,atp,relp', '--rules', rules, '--components', 'resid_pre,attn_out,mlp_out'])) as ReferencePatchResult;
      expect(Math.abs(run.metric.clean! - ref.metric.clean)).toBeLessThan(1e-3 * Math.max(1, Math.abs(ref.metric.clean)));
      for (const method of ['activation', 'atp', 'relp']) {
        for (const comp of ['resid_pre', 'attn_out', 'mlp_out']) {
          const got = run.scores[method][comp as 'resid_pre']!.values as number[][];
          expectClose(got, ref.scores[method][comp], 1e-3, `${method}/${comp}`);
        }
      }
    });
  }
});
