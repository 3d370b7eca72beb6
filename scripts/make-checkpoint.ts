/**
 * Writes a random Hugging Face checkpoint of a named shape to disk, tensor by tensor, without
 * ever holding the model in memory (src/models/random-checkpoint.ts): for streamed-model work on
 * models larger than RAM or the wasm heap.
 *
 *   npx tsx scripts/make-checkpoint.ts --shape llama3-8b --out /data/llama3-8b-random
 *   npx tsx scripts/make-checkpoint.ts --shape gpt2-small --out /tmp/g --dtype BF16 --shards 3 --seed 7
 *   npx tsx scripts/make-checkpoint.ts --shape gemma2-2b --out /tmp/tiny --set num_hidden_layers=2 --set vocab_size=512
 *
 * Shapes: gpt2-small, gpt2-large (F32, 1 file), gemma2-2b (BF16, 1 file), llama3-8b (BF16, 4 shards).
 * `--set key=value` overrides any HF config.json field (value parsed as JSON when it parses).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { CHECKPOINT_SHAPES, writeRandomCheckpoint } from '../src/models/random-checkpoint.ts';
import type { SafetensorsDtype } from '../src/io/safetensors.ts';

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

/** `key=value` into a config override (JSON value when it parses, else the string). */
function override(v: string, prev: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = v.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError(`--set needs key=value, got "${v}"`);
  const raw = v.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string such as silu
  }
  return { ...prev, [v.slice(0, eq)]: value };
}

/** Parse the arguments and write the checkpoint; returns the process exit code. */
export function main(argv: string[]): number {
  const program = new Command()
    .name('make-checkpoint')
    .description('Write a random HF checkpoint (config.json + safetensors) of a named shape, streamed to disk.')
    .requiredOption('--shape <name>', `one of ${Object.keys(CHECKPOINT_SHAPES).join(', ')}`)
    .requiredOption('--out <dir>', 'folder to write (created; refused if it already holds a config.json, unless --force)')
    .option('--dtype <dtype>', 'F32, F16 or BF16 (default: as the shape is published)')
    .option('--shards <n>', 'number of safetensors files (default: as published)', positiveInt('--shards'))
    .option('--seed <n>', 'seed of the values', (v) => Number(v), 0)
    .option('--set <key=value>', 'override an HF config.json field (repeatable)', override)
    .option('--force', 'write into a folder that already holds a checkpoint')
    .parse(argv);
  const o = program.opts<{ shape: string; out: string; dtype?: string; shards?: number; seed: number; set?: Record<string, unknown>; force?: boolean }>();
  const shape = CHECKPOINT_SHAPES[o.shape];
  if (!shape) throw new Error(`--shape "${o.shape}" is not known (use one of: ${Object.keys(CHECKPOINT_SHAPES).join(', ')})`);
  const dtype = (o.dtype ?? shape.dtype).toUpperCase();
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`--dtype must be F32, F16 or BF16 (got "${o.dtype}")`);
  const out = resolve(o.out);
  if (existsSync(join(out, 'config.json')) && !o.force) throw new Error(`${out} already holds a checkpoint (config.json); pass --force to overwrite`);
  const t0 = Date.now();
  let last = 0;
  const r = writeRandomCheckpoint(out, {
    config: { ...shape.config, ...o.set },
    dtype: dtype as SafetensorsDtype,
    shards: o.shards ?? shape.shards,
    seed: o.seed,
    onProgress: (w, total) => {
      if (Date.now() - last < 2000 && w < total) return;
      last = Date.now();
      const s = (Date.now() - t0) / 1000;
      process.stderr.write(`  ${(w / 2 ** 30).toFixed(2)} / ${(total / 2 ** 30).toFixed(2)} GiB, ${s.toFixed(0)} s, ${(w / 2 ** 20 / Math.max(s, 1e-3)).toFixed(0)} MiB/s\n`);
    },
  });
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`${out}: ${o.shape}, ${(r.parameters / 1e9).toFixed(3)}B parameters, ${dtype}, ${(r.tensorBytes / 2 ** 30).toFixed(2)} GiB in ${r.files.filter((f) => f.endsWith('.safetensors')).length} file(s), ${s} s`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv);
  } catch (e) {
    console.error(`make-checkpoint: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
