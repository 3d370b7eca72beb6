/**
 * Write a tiny random GPT-2 checkpoint into a fresh temp folder, in any format the loader reads.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configToHF, type BaseConfig } from '../../src/models/config.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { roundThrough, writeSafetensors, writeShardedSafetensors, type SafetensorsDtype } from '../../src/io/safetensors.ts';
import { writeGpt2Onnx } from '../../src/io/onnx-write.ts';

/** Checkpoint layouts {@link makeTmpModelDir} can write. */
export type TmpModelFormat = 'safetensors' | 'sharded' | 'onnx' | 'onnx-anon';

/** Options for {@link makeTmpModelDir}. */
export interface TmpModelOptions {
  /** Model shape; defaults to {@link TINY_CONFIG} (or a 50257-token vocab with `withTokenizer`). */
  cfg?: BaseConfig;
  /** Seed for the random weights (default 0). */
  seed?: number;
  /** Default 'safetensors'. */
  format?: TmpModelFormat;
  /** Storage dtype for safetensors formats (default F32). */
  dtype?: SafetensorsDtype;
  /** Copy the GPT-2 tokenizer fixture (needs dVocab 50257). */
  withTokenizer?: boolean;
  /** Use these weights instead of random ones. */
  stateDict?: StateDict;
}

/** A temp checkpoint folder. */
export interface TmpModel {
  dir: string;
  cfg: BaseConfig;
  /** The weights as a loader should return them (already rounded through `dtype`). */
  stateDict: StateDict;
  /** Remove the folder. */
  cleanup: () => void;
}

/** A small config for fast tests: 2 layers, 2 heads, d_model 8, vocab 50. */
export const TINY_CONFIG: BaseConfig = {
  nLayers: 2,
  nHeads: 2,
  dModel: 8,
  dHead: 4,
  dMlp: 32,
  nCtx: 16,
  dVocab: 50,
  eps: 1e-5,
  act: 'gelu_new',
};

const GPT2_VOCAB = 50257;
const TOKENIZER_DIR = fileURLToPath(new URL('../fixtures/gpt2-tokenizer/', import.meta.url));
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

/** Write a random GPT-2 checkpoint (config.json + weights [+ tokenizer]) to a new temp folder. */
export function makeTmpModelDir(opts: TmpModelOptions = {}): TmpModel {
  const cfg: BaseConfig =
    opts.cfg ?? (opts.withTokenizer ? { ...TINY_CONFIG, dVocab: GPT2_VOCAB, bosTokenId: 50256, eosTokenId: 50256 } : TINY_CONFIG);
  if (opts.withTokenizer && cfg.dVocab !== GPT2_VOCAB) {
    throw new Error(`makeTmpModelDir: withTokenizer needs dVocab ${GPT2_VOCAB} (got ${cfg.dVocab})`);
  }
  const format = opts.format ?? 'safetensors';
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && (format === 'onnx' || format === 'onnx-anon')) {
    throw new Error(`makeTmpModelDir: dtype ${dtype} is only for safetensors formats`);
  }
  const raw = opts.stateDict ?? randomStateDict(cfg, { seed: opts.seed ?? 0 });
  const stateDict: StateDict = new Map([...raw].map(([k, v]) => [k, { shape: [...v.shape], data: roundThrough(v.data, dtype) }]));

  const dir = mkdtempSync(join(tmpdir(), 'relp-model-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHF(cfg), null, 2));
    if (format === 'safetensors') {
      writeSafetensors(join(dir, 'model.safetensors'), raw, { dtype });
    } else if (format === 'sharded') {
      // About three shards, whatever the model size.
      const bytes = [...raw.values()].reduce((a, t) => a + t.data.length, 0) * (dtype === 'F32' ? 4 : 2);
      writeShardedSafetensors(dir, raw, { dtype, maxShardBytes: Math.ceil(bytes / 3) });
    } else {
      mkdirSync(join(dir, 'onnx'));
      writeGpt2Onnx(join(dir, 'onnx', 'model.onnx'), cfg, raw, { anonymousInitializers: format === 'onnx-anon' });
    }
    if (opts.withTokenizer) {
      for (const f of TOKENIZER_FILES) copyFileSync(join(TOKENIZER_DIR, f), join(dir, f));
    }
  } catch (e) {
    cleanup();
    throw e;
  }
  return { dir, cfg, stateDict, cleanup };
}
