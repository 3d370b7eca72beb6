/**
 * Random HF checkpoints (test/helpers/hf-checkpoint.ts) loaded as models, for the circuit tests
 * on non-GPT-2 architectures. Folders are removed by `cleanupHFModels`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import type { CanonicalWeights } from '../../src/models/canonical.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { writeWordTokenizer, words } from '../helpers/word-tokenizer.ts';
import { runCli } from '../cli/run-cli.ts';
import { buildGraph, type GqaConvention } from '../../src/circuits/graph.ts';
import type { PromptPair } from '../../src/tasks/types.ts';

const dirs: string[] = [];

/** Write a random checkpoint of `o` to a temp folder and load it; returns the model and its folder. */
export async function hfModel(o: HFCheckpointOptions): Promise<{ model: HookedTransformer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `relp-circ-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  const ck = await loadCheckpoint(dir);
  return { model: HookedTransformer.fromStateDict(ck.config, ck.stateDict), dir };
}

/** Remove every folder {@link hfModel} wrote. */
export function cleanupHFModels(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The same model with every kv head repeated for the query heads of its group (HF repeat_kv order). */
export function asMha(model: HookedTransformer): HookedTransformer {
  const { nHeads: H, nKvHeads: KV, nLayers: L } = model.cfg;
  const g = H / KV;
  const w: CanonicalWeights = model.canonicalWeights();
  for (let l = 0; l < L; l++) {
    for (const n of ['W_K', 'W_V', 'b_K', 'b_V']) {
      const key = `blocks.${l}.attn.${n}`;
      const t = w.get(key);
      if (!t) continue; // no k / v biases
      const per = t.data.length / KV; // one kv head's block, [d, dh] or [dh]
      const data = new Float32Array(H * per);
      for (let h = 0; h < H; h++) data.set(t.data.subarray(Math.floor(h / g) * per, (Math.floor(h / g) + 1) * per), h * per);
      w.set(key, { shape: [H, ...t.shape.slice(1)], data });
    }
  }
  return HookedTransformer.fromCanonical({ ...model.cfg, nKvHeads: H }, w);
}

/** max |a − b| / max |b|. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** Write `pairs` (ids below the word tokenizer's vocabulary − 2) as DIR/data.jsonl in words; returns its path. */
export function writeWordDataset(dir: string, pairs: readonly PromptPair[]): string {
  const path = join(dir, 'data.jsonl');
  const line = (p: PromptPair) => JSON.stringify({ clean: words(p.cleanIds.map((i) => i + 2)), corrupt: words(p.corruptIds.map((i) => i + 2)), answer: ' w3', wrong: ' w7' });
  writeFileSync(path, pairs.map(line).join('\n') + '\n');
  return path;
}

/** The summary `relp circuit --json` prints, as the tests read it. */
export interface CircuitCliSummary {
  edges_total: number;
  circuit_edges: number;
  methods: Record<string, { auc: number }>;
}

/**
 * A random checkpoint of `o` with the word tokenizer, and `relp circuit` on it over `dataset`
 * (top 10 edges, 2 curve points, 2 IG steps, one worker, plus `extra` flags) into `out`.
 * Expects exit 0 and returns the model's graph in convention `gqa` and the JSON summary.
 */
export async function runCircuitCli(o: HFCheckpointOptions, vocab: number, dataset: string, out: string, methods: string, gqa: GqaConvention = 'grouped', extra: string[] = []) {
  const { model, dir } = await hfModel({ ...o, vocab });
  writeWordTokenizer(dir, vocab);
  const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads, { ...model.topology(), gqa });
  model.dispose();
  const r = await runCli(['circuit', '--model', dir, '--dataset', dataset, '--method', methods, '--ig-steps', '2', '--edges', '10', '--curve-points', '2',
    '--reference', 'none', '--workers', '1', '--no-progress', '--json', '--out', out, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  const summary = JSON.parse(r.stdout) as CircuitCliSummary;
  expect(summary.edges_total).toBe(graph.nEdges);
  expect(Object.keys(summary.methods)).toEqual(methods.split(','));
  for (const m of Object.values(summary.methods)) expect(Number.isFinite(m.auc)).toBe(true);
  return { graph, summary };
}
