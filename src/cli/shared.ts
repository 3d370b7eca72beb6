/**
 * Helpers shared by CLI commands: option parsers, model loading, output.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { IOI_DEFAULTS, type DatasetSpec } from '../tasks/dataset.ts';
import type { IoiCorruption } from '../tasks/ioi.ts';
import { initBackend } from '../backend.ts';
import { loadModelWithTokenizer, type LoadedModel } from '../hooks/load-model.ts';
import { wasmHeapBytes } from '../backend/wasm-peak.ts';
import type { Tokenizer } from '../tokenizer.ts';
import type { PromptPair } from '../tasks/types.ts';

/** commander parser for a positive integer option. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
}

/** commander parser for an integer option (seeds). */
export function integer(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}"`);
  return n;
}

/** commander parser for a finite number. */
export function finite(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
  return n;
}

/** Parsed `--stream-weights` / `--no-stream-weights` (undefined: relp decides from the model's size). */
export interface ExecutionCliOptions {
  streamWeights?: boolean;
}

/** Add `--stream-weights` / `--no-stream-weights` to a command that loads a model. */
export function addExecutionOptions(cmd: Command): Command {
  return cmd
    .option('--stream-weights', 'keep weights on disk and upload one block at a time (default: when the whole model would not fit the 4 GB wasm heap)')
    .option('--no-stream-weights', 'load the whole model onto the heap');
}

/**
 * Load a model with its tokenizer under the command's `--stream-weights` setting, which also goes
 * to RELP_STREAM_WEIGHTS so worker threads load the same way.
 */
export function loadForCli(modelDir: string | undefined, o: ExecutionCliOptions): Promise<LoadedModel & { tokenizer: Tokenizer }> {
  if (o.streamWeights !== undefined) process.env.RELP_STREAM_WEIGHTS = o.streamWeights ? '1' : '0';
  return loadModelWithTokenizer(modelDir, { stream: o.streamWeights });
}

/**
 * Start the backend and load a model with its tokenizer (default: the embedded model), saying on
 * stderr how it runs (whole or streamed) and why.
 */
export async function setup(modelDir: string | undefined, o: ExecutionCliOptions = {}): Promise<LoadedModel & { tokenizer: Tokenizer }> {
  const backend = await initBackend();
  const m = await loadForCli(modelDir, o);
  process.stderr.write(`relp: model ${m.path} (${m.model.cfg.nLayers} layers, ${m.model.cfg.nHeads} heads, d_model ${m.model.cfg.dModel}) on ${backend}\n`);
  process.stderr.write(`relp: execution: ${m.execution.reason}\n`);
  return m;
}

/** One stderr line with where a streamed model spent its time (nothing for a whole model). */
export function reportStreaming(m: LoadedModel): void {
  const s = m.model.streamStats();
  if (!s) return;
  const heap = wasmHeapBytes();
  const heapNote = heap === undefined ? '' : `; wasm heap ${(heap / 1e9).toFixed(2)} GB`;
  process.stderr.write(`relp: streamed: ${s.blocksUploaded} blocks and ${s.chunksUploaded} vocabulary chunks uploaded, ${s.cacheHits} uses of kept blocks; reading ${s.readSeconds.toFixed(1)} s, uploading ${s.uploadSeconds.toFixed(1)} s (in this process)${heapNote}\n`);
}

/** Print one JSON object on stdout. */
export function printJson(x: unknown): void {
  process.stdout.write(JSON.stringify(x) + '\n');
}

/** Parsed `--prepend-bos` / `--no-prepend-bos` / `--strict` (see {@link addTokenizerOptions}). */
export interface TokenizerCliOptions {
  /** undefined: the tokenizer's own template decides. */
  prependBos?: boolean;
  strict?: boolean;
}

/** Add `--prepend-bos`, `--no-prepend-bos` and `--strict` to a command that tokenizes text. */
export function addTokenizerOptions(cmd: Command): Command {
  // Both forms defined: commander then leaves prependBos undefined unless one is given.
  return cmd
    .option('--prepend-bos', "put BOS in front of every prompt (default: as the tokenizer's template says: nothing for GPT-2/Pythia/Qwen2, <s> for Llama)")
    .option('--no-prepend-bos', 'never put BOS in front of a prompt')
    .option('--strict', 'fail, instead of warning, when a text has words the vocabulary does not know');
}

/** The tokenizer with the command's BOS override applied. */
export function cliTokenizer(tokenizer: Tokenizer, o: TokenizerCliOptions): Tokenizer {
  return tokenizer.withPrependBos(o.prependBos);
}

/**
 * Warn on stderr about words of `texts` that the vocabulary maps to its unknown token, naming
 * each word and where it occurs; under `strict`, throw instead. Byte-level tokenizers have no
 * unknown token, so this is silent for them.
 */
export function checkUnknownWords(tokenizer: Tokenizer, texts: { text: string; where: string }[], strict: boolean | undefined): void {
  if (tokenizer.unkTokenId === undefined) return;
  const found: string[] = [];
  for (const { text, where } of texts) {
    const words = tokenizer.unknownWords(text);
    if (words.length) found.push(`${where}: ${words.map((w) => JSON.stringify(w.word)).join(', ')}`);
  }
  if (found.length === 0) return;
  const shown = found.slice(0, 5).join('; ') + (found.length > 5 ? `; and ${found.length - 5} more texts` : '');
  const msg = `words not in the vocabulary (${tokenizer.vocabSize} tokens) become the unknown token ${JSON.stringify(tokenizer.unkToken)}: ${shown}`;
  if (strict) throw new Error(`${msg} (--strict)`);
  process.stderr.write(`relp: warning: ${msg}; pass --strict to make this an error\n`);
}

/** {@link checkUnknownWords} over the clean and corrupt prompts of a dataset. */
export function checkUnknownPairs(tokenizer: Tokenizer, pairs: readonly PromptPair[], strict: boolean | undefined): void {
  if (tokenizer.unkTokenId === undefined) return;
  checkUnknownWords(
    tokenizer,
    pairs.flatMap((p, i) => [
      { text: p.clean, where: `pair ${i + 1} clean` },
      { text: p.corrupt, where: `pair ${i + 1} corrupt` },
    ]),
    strict,
  );
}

/** Options shared by commands that take a dataset. */
export interface DatasetCliOptions {
  task?: string;
  dataset?: string;
  n: number;
  seed: number;
  corruption: IoiCorruption;
}

/** Add the IOI task's --n/--seed/--corruption, with the one set of defaults (IOI_DEFAULTS), to a command. */
export function addIoiOptions(cmd: Command): Command {
  return cmd
    .option('--n <n>', 'number of IOI prompt pairs', positiveInt, IOI_DEFAULTS.n)
    .option('--seed <s>', 'seed of the IOI generator', integer, IOI_DEFAULTS.seed)
    .addOption(new Option('--corruption <kind>', 'IOI corruption: swap the names so the answer flips (as in the RelP paper), or abc (a third name)').choices(['swap', 'abc']).default(IOI_DEFAULTS.corruption));
}

/** Add --task/--dataset and the IOI options ({@link addIoiOptions}) to a command. */
export function addDatasetOptions(cmd: Command): Command {
  return addIoiOptions(
    cmd
      .addOption(new Option('--task <task>', 'built-in task').choices(['ioi']))
      .option('--dataset <file.jsonl>', 'JSONL dataset: one {"clean","corrupt","answer","wrong"} per line'),
  );
}

/** Resolve --task / --dataset into a dataset spec (IOI by default). */
export function datasetSpec(o: DatasetCliOptions): DatasetSpec {
  if (o.task && o.dataset) throw new Error('give either --task or --dataset, not both');
  if (o.task !== undefined && o.task !== 'ioi') throw new Error(`unknown task "${o.task}" (only "ioi"; use --dataset FILE for others)`);
  if (o.dataset) return { kind: 'jsonl', path: o.dataset };
  return { kind: 'ioi', n: o.n, seed: o.seed, corruption: o.corruption };
}

