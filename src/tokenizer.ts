/**
 * Tokenizer wrapper: loads a Hugging Face `tokenizer.json` from a local model directory with
 * `@xenova/transformers` and exposes the TransformerLens-style helpers the rest of relp uses
 * (`toTokens`, `toStrTokens`, `toSingleToken`).
 *
 * Loading never touches the network: the JSON files are read from disk here and handed straight
 * to the tokenizer class constructor, bypassing transformers.js' hub/cache resolution entirely
 * (whose `from_pretrained` resolves names relative to `env.localModelPath` and may fall back to
 * remote downloads).
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AutoTokenizer, PreTrainedTokenizer } from '@xenova/transformers';

/** Options for {@link Tokenizer.toTokens} and {@link Tokenizer.toStrTokens}. */
export interface ToTokensOptions {
  /** Put the BOS token id in front of every sequence. Default false. */
  prependBos?: boolean;
}

/** The JSON object shape we read from `tokenizer_config.json` (only the fields we use). */
interface TokenizerConfigJSON {
  tokenizer_class?: string;
  bos_token?: string | { content?: string } | null;
  [key: string]: unknown;
}

/** The JSON object shape we read from `config.json` (only the fields we use). */
interface ModelConfigJSON {
  bos_token_id?: number | null;
  [key: string]: unknown;
}

type TokenizerClass = new (tokenizerJSON: unknown, tokenizerConfig: unknown) => PreTrainedTokenizer;

/**
 * A loaded tokenizer. Encoding never adds special tokens by itself; BOS is only added by
 * `toTokens`/`toStrTokens` when `prependBos` is set. The tokenizer's "clean up tokenization
 * spaces" post-processing is switched off, so `decode(encode(s)) === s` for byte-level BPE
 * (GPT-2). Word-level vocabularies decode as their decoder says: the embedded model's puts a
 * space before every word (`decode([Mary]) === " Mary"`, as for GPT-2 words), so a text without a
 * leading space comes back with one.
 */
export class Tokenizer {
  /** The underlying transformers.js tokenizer (escape hatch; prefer the methods below). */
  readonly inner: PreTrainedTokenizer;
  /** Id of the beginning-of-sequence token, or undefined when the tokenizer defines none. */
  readonly bosTokenId: number | undefined;
  /** Number of token ids (base vocabulary plus added tokens): ids lie in [0, vocabSize). */
  readonly vocabSize: number;

  constructor(inner: PreTrainedTokenizer, bosTokenId: number | undefined) {
    this.inner = inner;
    this.bosTokenId = bosTokenId;
    this.vocabSize = inner.model.vocab.length;
  }

  /** Token ids of `text`, without any special tokens. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    if (text.length === 0) return [];
    return this.inner.encode(text, null, { add_special_tokens: false });
  }

  /** Text of a sequence of token ids (special tokens kept, no whitespace clean-up). */
  decode(ids: number[]): string {
    if (ids.length === 0) return '';
    this.checkIds(ids);
    return this.inner.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /**
   * Token ids of one or several texts. Returns one row per text: `[batch][pos]`. Rows are not
   * padded, so texts of different token lengths give rows of different lengths.
   */
  toTokens(text: string | string[], opts: ToTokensOptions = {}): number[][] {
    const texts = Array.isArray(text) ? text : [text];
    const bos = opts.prependBos ? [this.requireBos()] : [];
    return texts.map((t) => [...bos, ...this.encode(t)]);
  }

  /**
   * The text of each token, e.g. `["Hello", " world"]` for GPT-2. Accepts a text (tokenized
   * with `toTokens`) or a list of token ids (then `opts.prependBos` adds BOS in front).
   */
  toStrTokens(input: string | number[], opts: ToTokensOptions = {}): string[] {
    let ids: number[];
    if (typeof input === 'string') {
      ids = this.toTokens(input, opts)[0];
    } else {
      ids = opts.prependBos ? [this.requireBos(), ...input] : input;
    }
    this.checkIds(ids);
    // Decode each id on its own, as TransformerLens does; a byte-level token holding part of a
    // multi-byte character comes out as U+FFFD.
    return ids.map((id) => this.inner.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
  }

  /**
   * The id of `s`, which must be exactly one token (mind the leading space for GPT-2: `" Mary"`).
   * Throws naming the pieces when `s` splits into several tokens, when it gives none, or when it
   * is an out-of-vocabulary word that maps to the unknown token.
   */
  toSingleToken(s: string): number {
    const ids = this.encode(s);
    if (ids.length === 1) {
      // A word-level vocabulary maps unknown words to UNK silently; that is never what a caller
      // asking for "the token of s" wants.
      const unk = this.inner.unk_token_id;
      if (unk !== undefined && ids[0] === unk && s.trim() !== this.inner.unk_token) {
        throw new Error(`toSingleToken: ${JSON.stringify(s)} is not in the vocabulary (it maps to the unknown token ${JSON.stringify(this.inner.unk_token)})`);
      }
      return ids[0];
    }
    if (ids.length === 0) throw new Error(`toSingleToken: ${JSON.stringify(s)} gives no tokens`);
    const pieces = ids.map((id) => JSON.stringify(this.decode([id])));
    throw new Error(
      `toSingleToken: ${JSON.stringify(s)} is ${ids.length} tokens, not one: [${pieces.join(', ')}] (ids ${ids.join(', ')})`,
    );
  }

  private requireBos(): number {
    if (this.bosTokenId === undefined) {
      throw new Error('prependBos: this tokenizer defines no BOS token (no bos_token_id in config.json, no bos_token in tokenizer_config.json, no <|endoftext|>)');
    }
    return this.bosTokenId;
  }

  private checkIds(ids: number[]): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`token id ${id} at index ${i} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
  }
}

async function readJSON<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${what} ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Content of a `bos_token` entry, which HF writes either as a string or as an AddedToken object. */
function tokenContent(t: TokenizerConfigJSON['bos_token']): string | undefined {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof t.content === 'string') return t.content;
  return undefined;
}

/**
 * Older `tokenizers` releases wrote `model` without its `type` (GPT-2's hub tokenizer.json is one).
 * transformers.js then silently uses a "legacy" model that looks whole pre-tokens up in the vocab,
 * mapping every word that needs merges to UNK. Fill the type in from the fields that are present,
 * the way the Rust deserializer tells the variants apart.
 */
function inferModelType(tokenizerJSON: Record<string, unknown>, path: string): void {
  const model = tokenizerJSON.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== 'object') throw new Error(`${path} has no "model" section`);
  if (typeof model.type === 'string') return;
  if (Array.isArray(model.merges)) model.type = 'BPE';
  else if (Array.isArray(model.vocab)) model.type = 'Unigram';
  else if (typeof model.continuing_subword_prefix === 'string' && 'max_input_chars_per_word' in model) model.type = 'WordPiece';
  else if (model.vocab && typeof model.vocab === 'object') model.type = 'WordLevel';
  else throw new Error(`${path}: cannot tell the tokenizer model type (no "type", "merges" or "vocab" in "model")`);
}

/**
 * Load the tokenizer of a local model directory holding `tokenizer.json` (required),
 * `tokenizer_config.json` and `config.json` (both optional). Reads only local files.
 *
 * BOS id: `config.json` `bos_token_id`, else the id of `tokenizer_config.json` `bos_token`,
 * else the id of `<|endoftext|>` (GPT-2's BOS), else undefined.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const root = resolve(dir);
  const tokPath = join(root, 'tokenizer.json');
  if (!existsSync(tokPath)) {
    throw new Error(`no tokenizer.json in ${root} (relp needs a "fast" tokenizer.json; vocab.json/merges.txt alone are not enough)`);
  }
  const tokenizerJSON = await readJSON<Record<string, unknown>>(tokPath, 'tokenizer file');
  const cfgPath = join(root, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(cfgPath) ? await readJSON<TokenizerConfigJSON>(cfgPath, 'tokenizer config') : {};
  const modelCfgPath = join(root, 'config.json');
  const modelConfig = existsSync(modelCfgPath) ? await readJSON<ModelConfigJSON>(modelCfgPath, 'model config') : {};

  // transformers.js expects added_tokens to be an array.
  if (!Array.isArray(tokenizerJSON.added_tokens)) tokenizerJSON.added_tokens = [];
  inferModelType(tokenizerJSON, tokPath);

  const name = tokenizerConfig.tokenizer_class?.replace(/Fast$/, '') ?? 'PreTrainedTokenizer';
  const mapping = AutoTokenizer.TOKENIZER_CLASS_MAPPING as unknown as Record<string, TokenizerClass | undefined>;
  // Unknown classes fall back to the base class, which handles every tokenizer.json pipeline.
  const Cls: TokenizerClass = mapping[name] ?? (PreTrainedTokenizer as unknown as TokenizerClass);
  let inner: PreTrainedTokenizer;
  try {
    inner = new Cls(tokenizerJSON, tokenizerConfig);
  } catch (err) {
    const modelType = (tokenizerJSON.model as { type?: string } | undefined)?.type;
    throw new Error(
      `cannot build tokenizer from ${tokPath} (model type ${modelType ?? 'unknown'}): ${(err as Error).message}` +
        (modelType === 'WordLevel' ? ' — @xenova/transformers 2.x has no WordLevel model; ship the word vocabulary as a WordPiece model instead' : ''),
    );
  }

  const ids = inner.model.tokens_to_ids;
  let bos: number | undefined;
  if (typeof modelConfig.bos_token_id === 'number') bos = modelConfig.bos_token_id;
  else {
    const content = tokenContent(tokenizerConfig.bos_token);
    bos = (content !== undefined ? ids.get(content) : undefined) ?? ids.get('<|endoftext|>');
  }
  return new Tokenizer(inner, bos);
}
