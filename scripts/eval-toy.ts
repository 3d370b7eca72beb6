/**
 * Evaluates a toy IOI model (default models/ioi-toy) on held-out IOI prompts built from the
 * Wang-style templates of src/tasks/ioi-templates.ts, which the training corpus never contains.
 *
 *   npx tsx scripts/eval-toy.ts [--model models/ioi-toy] [--n 500] [--seed 12345]
 *
 * Prints JSON to stdout: per split (held-out names = never in a multi-name training sentence;
 * training names; all names mixed) accuracy (clean LD > 0), mean/min clean LD and the ABC-corrupted LD, once
 * without BOS (as src/tasks/ioi.ts tokenizes prompts) and once with BOS prepended.
 */
import * as tf from '@tensorflow/tfjs';
import { Command, InvalidArgumentError } from 'commander';
import { initBackend } from '../src/backend.ts';
import { loadModelWithTokenizer } from '../src/hooks/load-model.ts';
import { evaluateByOrder, evaluateIoi, ioiEvalSets } from '../src/training/ioi-eval.ts';
import { HELD_OUT_NAMES } from '../src/training/corpus.ts';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

const program = new Command()
  .name('eval-toy')
  .description('Held-out IOI accuracy and logit differences of the toy model.')
  .option('--model <dir>', 'model folder (default: the embedded models/ioi-toy)')
  .option('--n <n>', 'prompts per split', int('--n'), 500)
  .option('--seed <n>', 'seed of the evaluation prompts', int('--seed'), 12345)
  .option('--batch <n>', 'prompt pairs per forward pass', int('--batch'), 128);
program.parse();
const opts = program.opts<{ model?: string; n: number; seed: number; batch: number }>();

const backend = await initBackend();
const t0 = Date.now();
const { model, tokenizer, path, sha256 } = await loadModelWithTokenizer(opts.model);
const bosId = tokenizer.bosTokenId;
const sets = ioiEvalSets(tokenizer, opts.n, opts.seed);
const forward = (rows: number[][]) => tf.tidy(() => model.forward(rows));
const noBos = evaluateIoi(forward, sets, { batchSize: opts.batch });
const withBos = bosId === undefined ? undefined : evaluateIoi(forward, sets, { bosId, batchSize: opts.batch });
// Per name order (no BOS): a model that prefers one position shows opposite ABC signs here.
const byOrder = {
  heldOutNames: evaluateByOrder(forward, sets.heldOutNames, { batchSize: opts.batch }),
  trainNames: evaluateByOrder(forward, sets.trainNames, { batchSize: opts.batch }),
};
model.dispose();
process.stdout.write(
  JSON.stringify(
    {
      model: path,
      sha256,
      backend,
      promptsPerSplit: opts.n,
      seed: opts.seed,
      heldOutNames: HELD_OUT_NAMES,
      noBos,
      withBos,
      byOrder,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    },
    null,
    2,
  ) + '\n',
);
