/**
 * Trains the embedded toy IOI model (REFERENCE §6) and writes it to models/ioi-toy:
 * config.json (model_type gpt2), model.safetensors (F32), tokenizer.json, tokenizer_config.json.
 *
 *   npm run train:toy -- --steps 2500 --seed 0
 *
 * Progress goes to stderr; a JSON summary (with the final held-out IOI metrics) to stdout.
 * A checkpoint is written every --checkpoint-every steps so a crash does not lose the run.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { initBackend } from '../src/backend.ts';
import { configToHF, type BaseConfig } from '../src/models/config.ts';
import { randomStateDict, mulberry32, type StateDict } from '../src/models/state-dict.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { HookedTransformer } from '../src/hooks/hooked-transformer.ts';
import { CorpusGenerator } from '../src/training/corpus.ts';
import { buildVocab, collectVocabulary, tokenizerConfigJson, tokenizerJson, vocabEncoder } from '../src/training/word-tokenizer.ts';
import { bucketedBatches, type TokenBatch } from '../src/training/batches.ts';
import { AdamW } from '../src/training/adamw.ts';
import { learningRate } from '../src/training/schedule.ts';
import { trainStep, trainableParams } from '../src/training/train-step.ts';
import { heldOutBatches, heldOutLoss, plateaued } from '../src/training/held-out.ts';
import { evaluateIoi, ioiEvalSets, type IoiSplitMetrics, type IoiSplit } from '../src/training/ioi-eval.ts';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
}
function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}

const program = new Command()
  .name('train-toy')
  .description('Train the embedded toy IOI model (4 layers, 4 heads, d_model 128) on the synthetic corpus.')
  .option('--steps <n>', 'maximum training steps (the cosine schedule spans them)', int('--steps'), 2500)
  .option('--patience <n>', 'stop when held-out loss has not improved by --min-improvement for this many evaluations (0 = never stop early)', int('--patience'), 3)
  .option('--min-improvement <x>', 'relative held-out loss improvement that counts as progress', num('--min-improvement'), 0.005)
  .option('--held-out-batches <n>', 'batches of the fixed held-out stream', int('--held-out-batches'), 8)
  .option('--seed <n>', 'seed for init, corpus and batch order', int('--seed'), 0)
  .option('--out <dir>', 'output model directory', 'models/ioi-toy')
  .option('--batch <n>', 'sequences per step', int('--batch'), 64)
  .option('--lr <x>', 'peak learning rate', num('--lr'), 1e-3)
  .option('--min-lr <x>', 'final learning rate (cosine floor)', num('--min-lr'), 1e-4)
  .option('--warmup <n>', 'linear warmup steps', int('--warmup'), 300)
  .option('--bucket-groups <n>', 'batches drawn at once and bucketed by length (1 = no bucketing)', int('--bucket-groups'), 4)
  .option('--eval-every <n>', 'evaluate held-out IOI every n steps (0 = only at the end)', int('--eval-every'), 250)
  .option('--eval-n <n>', 'prompts per evaluation split', int('--eval-n'), 200)
  .option('--checkpoint-every <n>', 'write a checkpoint every n steps (0 = only at the end)', int('--checkpoint-every'), 250)
  .option('--no-progress', 'no progress bar');
program.parse();
const opts = program.opts<{
  steps: number;
  patience: number;
  minImprovement: number;
  heldOutBatches: number;
  seed: number;
  out: string;
  batch: number;
  lr: number;
  minLr: number;
  warmup: number;
  bucketGroups: number;
  evalEvery: number;
  evalN: number;
  checkpointEvery: number;
  progress: boolean;
}>();
if (opts.batch < 1) program.error('--batch must be at least 1');
if (opts.bucketGroups < 1) program.error('--bucket-groups must be at least 1');

const log = (msg: string) => process.stderr.write(msg + '\n');

const backend = await initBackend();
const vocab = buildVocab(collectVocabulary());
const cfg: BaseConfig = {
  nLayers: 4,
  nHeads: 4,
  dModel: 128,
  dHead: 32,
  dMlp: 512,
  nCtx: 32,
  dVocab: vocab.tokens.length,
  eps: 1e-5,
  act: 'gelu_new',
  bosTokenId: vocab.bosId,
  eosTokenId: vocab.eosId,
};

/** GPT-2 initialisation: N(0, 0.02) matrices, zero biases, unit LN gains, residual projections scaled by 1/√(2·n_layers). */
function initialWeights(seed: number): StateDict {
  const sd = randomStateDict(cfg, { seed, std: 0.02, biasStd: 0, lnGainStd: 0 });
  const scale = 1 / Math.sqrt(2 * cfg.nLayers);
  for (const [name, t] of sd) if (/\.c_proj\.weight$/.test(name)) t.data.forEach((x, i) => (t.data[i] = x * scale));
  return sd;
}

mkdirSync(opts.out, { recursive: true });
const writeJson = (file: string, obj: unknown) => writeFileSync(join(opts.out, file), JSON.stringify(obj, null, 2) + '\n');
writeJson('tokenizer.json', tokenizerJson(vocab));
writeJson('tokenizer_config.json', tokenizerConfigJson(cfg.nCtx));

function saveCheckpoint(model: HookedTransformer): void {
  const tmp = join(opts.out, 'model.safetensors.tmp');
  writeSafetensors(tmp, model.toStateDict(), { metadata: { format: 'pt' } });
  renameSync(tmp, join(opts.out, 'model.safetensors')); // atomic: a crash never leaves half a file
  writeJson('config.json', configToHF(cfg));
}

const model = HookedTransformer.fromStateDict(cfg, initialWeights(opts.seed), { trainable: true });
const params = trainableParams(model);
const nParams = [...params.values()].reduce((a, p) => a + p.size, 0);
const adam = new AdamW(params, { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 });
const corpus = new CorpusGenerator({ seed: opts.seed, maxTokens: cfg.nCtx });
const batchRand = mulberry32(opts.seed + 1);
const encoder = vocabEncoder(vocab);
const evalSets = ioiEvalSets(encoder, opts.evalN, 1000 + opts.seed);
const forward = (rows: number[][]) => tf.tidy(() => model.forward(rows));
const heldOut = heldOutBatches(vocab, { trainSeed: opts.seed, batches: opts.heldOutBatches, batchSize: opts.batch, maxTokens: cfg.nCtx });
const heldOutNow = () => heldOutLoss((t) => tf.tidy(() => model.forward(t)), heldOut);

function evaluate(): { noBos: Record<IoiSplit, IoiSplitMetrics>; bos: Record<IoiSplit, IoiSplitMetrics> } {
  return { noBos: evaluateIoi(forward, evalSets), bos: evaluateIoi(forward, evalSets, { bosId: vocab.bosId }) };
}
const fmt = (m: IoiSplitMetrics) => `acc ${m.accuracy.toFixed(3)} LD ${m.meanLd.toFixed(2)} (min ${m.minLd.toFixed(2)}) ABC ${m.meanAbcLd.toFixed(2)}`;

log(`backend ${backend}; ${nParams} parameters, vocab ${cfg.dVocab}; ${opts.steps} steps × batch ${opts.batch}, seed ${opts.seed}`);

const bar = opts.progress
  ? new cliProgress.SingleBar(
      { format: 'train [{bar}] {value}/{total} | loss {loss} | lr {lr} | {sps} s/step | eta {eta_formatted}', stream: process.stderr, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    )
  : undefined;
bar?.start(opts.steps, 0, { loss: '-', lr: '-', sps: '-' });

const t0 = Date.now();
let queue: TokenBatch[] = [];
let emaLoss = NaN;
let baselineTensors = -1;
let tokensSeen = 0;
let stoppedAt = opts.steps;
const history: { step: number; loss: number; heldOutLoss: number; heldOutAcc: number; heldOutLd: number; trainNamesAcc: number; abcLd: number }[] = [];
for (let step = 0; step < opts.steps; step++) {
  if (queue.length === 0) queue = bucketedBatches(corpus, vocab, opts.batch, opts.bucketGroups, batchRand);
  const batch = queue.shift()!;
  tokensSeen += batch.lengths.reduce((a, b) => a + b, 0);
  const lr = learningRate(step, { peak: opts.lr, min: opts.minLr, warmup: opts.warmup, total: opts.steps });
  const { loss } = trainStep(model, params, adam, batch, lr);
  if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${step}`);
  emaLoss = Number.isNaN(emaLoss) ? loss : 0.98 * emaLoss + 0.02 * loss;
  if (step === 0) baselineTensors = tf.memory().numTensors;
  const done = step + 1;
  bar?.update(done, { loss: emaLoss.toFixed(3), lr: lr.toExponential(2), sps: ((Date.now() - t0) / 1000 / done).toFixed(2) });
  const last = done === opts.steps;
  if ((opts.evalEvery > 0 && done % opts.evalEvery === 0) || last) {
    const r = evaluate();
    const hl = heldOutNow();
    const nt = tf.memory().numTensors;
    bar?.stop();
    log(
      `step ${done} loss ${emaLoss.toFixed(3)} held-out loss ${hl.toFixed(4)} | held-out names: ${fmt(r.noBos.heldOutNames)} | train names: ${fmt(r.noBos.trainNames)} | ` +
        `with BOS held-out: ${fmt(r.bos.heldOutNames)} | tensors ${nt} (after step 1: ${baselineTensors}) | ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    if (nt !== baselineTensors) log(`warning: tf.memory().numTensors moved from ${baselineTensors} to ${nt}`);
    history.push({ step: done, loss: emaLoss, heldOutLoss: hl, heldOutAcc: r.noBos.heldOutNames.accuracy, heldOutLd: r.noBos.heldOutNames.meanLd, trainNamesAcc: r.noBos.trainNames.accuracy, abcLd: r.noBos.heldOutNames.meanAbcLd });
    bar?.start(opts.steps, done, { loss: emaLoss.toFixed(3), lr: lr.toExponential(2), sps: ((Date.now() - t0) / 1000 / done).toFixed(2) });
  }
  const converged = opts.patience > 0 && !last && history.length > 0 && history[history.length - 1].step === done && plateaued(history.map((h) => h.heldOutLoss), { patience: opts.patience, minRelImprovement: opts.minImprovement });
  if ((opts.checkpointEvery > 0 && done % opts.checkpointEvery === 0) || last || converged) saveCheckpoint(model);
  if (converged) {
    stoppedAt = done;
    bar?.stop();
    log(`held-out loss plateaued (no ${(100 * opts.minImprovement).toFixed(1)}% improvement in ${opts.patience} evaluations): stopping at step ${done}`);
    break;
  }
}
bar?.stop();
const wallS = (Date.now() - t0) / 1000;
const final = evaluate();
adam.dispose();
model.dispose();
process.stdout.write(
  JSON.stringify(
    {
      command: `npm run train:toy -- ${process.argv.slice(2).join(' ')}`.trim(),
      backend,
      seed: opts.seed,
      maxSteps: opts.steps,
      steps: stoppedAt,
      stoppedEarly: stoppedAt < opts.steps,
      heldOutLoss: history.length ? history[history.length - 1].heldOutLoss : undefined,
      batch: opts.batch,
      params: nParams,
      vocab: cfg.dVocab,
      tokensSeen,
      wallSeconds: Math.round(wallS),
      secondsPerStep: wallS / Math.max(1, stoppedAt),
      finalLoss: emaLoss,
      eval: final,
      history,
    },
    null,
    2,
  ) + '\n',
);
