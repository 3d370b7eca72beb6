/**
 * Tokenizer wrapper: loads a Hugging Face `tokenizer.json` from a local model directory with
 * `@huggingface/tokenizers` (the tokenizer-only package of transformers.js; zero dependencies, see
 * docs/tokenizer-choice.md) and exposes the TransformerLens-style helpers the rest of relp uses
 * (`toTokens`, `toStrTokens`, `toSingleToken`).
 *
 * Supported: every `tokenizer.json` pipeline the package implements; tested on GPT-2 and
 * GPT-NeoX (Pythia) byte-level BPE, Llama SentencePiece-BPE (`▁`, byte fallback), Qwen2 byte-level
 * BPE and the embedded model's WordPiece word vocabulary.
 *
 * Loading never touches the network: the JSON files are read from disk here and handed straight
 * to the tokenizer constructor.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';

/** Options for {@link Tokenizer.toTokens} and {@link Tokenizer.toStrTokens}. */
export interface ToTokensOptions {
  /**
   * Put BOS in front of every sequence. Default for texts: {@link Tokenizer.prependBos} (the
   * tokenizer's own template: nothing for GPT-2/NeoX/Qwen2, `<s>` for Llama). Default for id
   * lists given to `toStrTokens`: false (the ids are shown as they are).
   */
  prependBos?: boolean;
}

/** One word of a text that the tokenizer maps to its unknown token (see {@link Tokenizer.unknownWords}). */
export interface UnknownWord {
  /** The word as the pre-tokenizer cut it out of the (normalized) text. */
  word: string;
  /** Its pieces after the tokenizer model, e.g. `["[UNK]"]`. */
  pieces: string[];
}

/**
 * Thrown by {@link Tokenizer.toSingleToken} (and the embedded vocabulary's encoder): `text` is not
 * exactly one known token. `pieces` are the tokens it gives, as {@link Tokenizer.tokenStr} shows them.
 */
export class SingleTokenError extends Error {
  constructor(
    message: string,
    readonly text: string,
    readonly reason: 'several' | 'none' | 'unknown',
    readonly ids: number[],
    readonly pieces: string[],
  ) {
    super(message);
    this.name = 'SingleTokenError';
  }
}

/** The JSON object shape we read from `tokenizer_config.json` (only the fields we use). */
interface TokenizerConfigJSON {
  tokenizer_class?: string;
  bos_token?: string | { content?: string } | null;
  unk_token?: string | { content?: string } | null;
  add_bos_token?: unknown;
  [key: string]: unknown;
}

/** The JSON object shape we read from `config.json` (only the fields we use). */
interface ModelConfigJSON {
  bos_token_id?: number | null;
  [key: string]: unknown;
}

/** Where the default BOS decision came from (reported by {@link Tokenizer.bosSource}). */
export type BosSource = 'tokenizer_config add_bos_token' | 'post_processor template' | 'none' | 'override';

/** What {@link loadTokenizer} works out besides the pipeline itself. */
export interface TokenizerSpecials {
  /** Id of the beginning-of-sequence token, or undefined when the tokenizer defines none. */
  bosTokenId: number | undefined;
  /** Special ids the tokenizer's own template puts in front of a single text (`[]` or `[bos]`). */
  templatePrefix: number[];
  /** Where `templatePrefix` came from. */
  bosSource: BosSource;
}

/** A plain-letter text whose tokens never merge with a following space-led word (see `inContext`). */
const CONTEXT = 'a';

/**
 * A loaded tokenizer. `encode` never adds special tokens; `toTokens` and `encodePrompt` add BOS
 * as the tokenizer's template does (or as {@link withPrependBos} overrides). The tokenizer's
 * "clean up tokenization spaces" post-processing is switched off, so `decode(encode(s)) === s`
 * for byte-level BPE (GPT-2, NeoX, Qwen2).
 */
export class Tokenizer {
  /** The underlying `@huggingface/tokenizers` tokenizer (escape hatch; prefer the methods below). */
  readonly inner: HFTokenizer;
  /** Id of the beginning-of-sequence token, or undefined when the tokenizer defines none. */
  readonly bosTokenId: number | undefined;
  /** Number of token ids (base vocabulary plus added tokens): ids lie in [0, vocabSize). */
  readonly vocabSize: number;
  /** Id that out-of-vocabulary input maps to, or undefined when the model has none (byte-level BPE). */
  readonly unkTokenId: number | undefined;
  /** Text of the unknown token, e.g. `"[UNK]"`. */
  readonly unkToken: string | undefined;
  /** Special ids the tokenizer's own template puts in front of a text: `[]` for GPT-2, `[1]` (`<s>`) for Llama. */
  readonly templatePrefix: readonly number[];
  /** Whether texts get BOS in front by default (`toTokens`, `encodePrompt`). */
  readonly prependBos: boolean;
  /** Why `prependBos` has its value. */
  readonly bosSource: BosSource;
  /** Id of `CONTEXT`'s only token, used to render a token with its leading space; undefined if CONTEXT is not one token. */
  private readonly contextId: number | undefined;

  constructor(inner: HFTokenizer, specials: TokenizerSpecials, prependBos?: boolean) {
    this.inner = inner;
    this.bosTokenId = specials.bosTokenId;
    const model = inner.model;
    if (!model) throw new Error('tokenizer has no model');
    this.vocabSize = model.vocab.length;
    this.unkTokenId = model.unk_token_id ?? undefined;
    this.unkToken = this.unkTokenId === undefined ? undefined : (model.vocab[this.unkTokenId] ?? model.unk_token);
    this.templatePrefix = specials.templatePrefix;
    this.prependBos = prependBos ?? specials.templatePrefix.length > 0;
    this.bosSource = prependBos === undefined ? specials.bosSource : 'override';
    const ctx = this.encode(CONTEXT);
    this.contextId = ctx.length === 1 && ctx[0] !== this.unkTokenId ? ctx[0] : undefined;
  }

  /**
   * The same tokenizer with BOS forced on (`true`) or off (`false`) for texts; `undefined` keeps
   * the template's choice. This is what `--prepend-bos` / `--no-prepend-bos` set.
   */
  withPrependBos(prependBos: boolean | undefined): Tokenizer {
    if (prependBos === undefined) return this;
    if (prependBos) this.requireBos();
    return new Tokenizer(this.inner, { bosTokenId: this.bosTokenId, templatePrefix: [...this.templatePrefix], bosSource: this.bosSource }, prependBos);
  }

  /** Token ids of `text`, without any special tokens. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    if (text.length === 0) return [];
    return this.inner.encode(text, { add_special_tokens: false }).ids;
  }

  /** Token ids of a whole prompt: the BOS prefix this tokenizer uses by default, then `encode(text)`. */
  encodePrompt(text: string): number[] {
    return [...this.bosPrefix(this.prependBos), ...this.encode(text)];
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
    const bos = this.bosPrefix(opts.prependBos ?? this.prependBos);
    return texts.map((t) => [...bos, ...this.encode(t)]);
  }

  /**
   * The text of each token, e.g. `["Hello", " world"]` for GPT-2 and `["<s>", " Hello", " world"]`
   * for Llama. Accepts a text (tokenized with `toTokens`) or a list of token ids (then only
   * `opts.prependBos: true` adds BOS in front). See {@link tokenStr}.
   */
  toStrTokens(input: string | number[], opts: ToTokensOptions = {}): string[] {
    let ids: number[];
    if (typeof input === 'string') {
      ids = this.toTokens(input, opts)[0];
    } else {
      ids = opts.prependBos ? [this.requireBos(), ...input] : input;
    }
    this.checkIds(ids);
    return ids.map((id) => this.tokenStr(id));
  }

  /**
   * The text of one token as it reads inside a text, with its leading space: `" Mary"` for GPT-2's
   * `ĠMary` and for Llama's `▁Mary` (whose decoder strips a leading space at the start of a text).
   * Words of a WordPiece vocabulary, which carries no spaces, read `" Mary"`; continuation pieces
   * `"##ing"` read `"ing"`. A byte-level token holding part of a multi-byte character comes out as
   * U+FFFD, as TransformerLens shows it.
   */
  tokenStr(id: number): string {
    this.checkIds([id]);
    const opts = { skip_special_tokens: false, clean_up_tokenization_spaces: false };
    if (this.contextId !== undefined) {
      // Decode after a plain word, then drop that word: decoders that strip the first space of a
      // text (SentencePiece) or join words with spaces (WordPiece) then show the token in context.
      const before = this.inner.decode([this.contextId], opts);
      const both = this.inner.decode([this.contextId, id], opts);
      if (both.startsWith(before)) return both.slice(before.length);
    }
    return this.inner.decode([id], opts);
  }

  /**
   * The id of `s`, which must be exactly one token. A leading space means "this word after a
   * space", whatever the tokenizer's whitespace scheme: `" Mary"` is GPT-2's `ĠMary`, Llama's
   * `▁Mary` and a WordPiece vocabulary's `Mary`, read from `s` encoded after a plain word (no decode
   * round-trip). Throws naming the pieces when `s` really is several tokens, when it gives none,
   * or when it maps to the unknown token.
   */
  toSingleToken(s: string): number {
    if (typeof s !== 'string') throw new TypeError(`toSingleToken: expected a string, got ${typeof s}`);
    const ids = this.singleTokenCandidates(s);
    if (ids.length === 1) {
      // A word-level vocabulary maps unknown words to UNK silently; that is never what a caller
      // asking for "the token of s" wants.
      if (this.unkTokenId !== undefined && ids[0] === this.unkTokenId && s.trim() !== this.unkToken) {
        const msg = `toSingleToken: ${JSON.stringify(s)} is not in the vocabulary (it maps to the unknown token ${JSON.stringify(this.unkToken)})`;
        throw new SingleTokenError(msg, s, 'unknown', ids, [this.unkToken ?? '']);
      }
      return ids[0];
    }
    if (ids.length === 0) throw new SingleTokenError(`toSingleToken: ${JSON.stringify(s)} gives no tokens`, s, 'none', [], []);
    const pieces = ids.map((id) => this.tokenStr(id));
    throw new SingleTokenError(
      `toSingleToken: ${JSON.stringify(s)} is ${ids.length} tokens, not one: [${pieces.map((p) => JSON.stringify(p)).join(', ')}] (ids ${ids.join(', ')})`,
      s,
      'several',
      ids,
      pieces,
    );
  }

  /** Alias of {@link toSingleToken}, the name the task generators' `TokenEncoder` uses. */
  singleToken(s: string): number {
    return this.toSingleToken(s);
  }

  /**
   * The words of `text` that map to the unknown token, in order (empty when the tokenizer has
   * no unknown token, e.g. byte-level BPE). `relp` warns about them, or fails under `--strict`.
   */
  unknownWords(text: string): UnknownWord[] {
    const unk = this.unkTokenId;
    if (unk === undefined || !this.encode(text).includes(unk)) return [];
    const model = this.inner.model!;
    const out: UnknownWord[] = [];
    // Re-run normalizer, pre-tokenizer and model word by word to find which word became UNK.
    const normalized = this.inner.normalizer ? this.inner.normalizer(text) : text;
    const words = this.inner.pre_tokenizer ? this.inner.pre_tokenizer(normalized) : [normalized];
    for (const word of words) {
      if (word === this.unkToken) continue; // the unknown token written out on purpose
      // A whole-word (WordLevel) model returns unknown words as they are; show them as UNK.
      const pieces = (model([word]) as string[]).map((p) => (model.tokens_to_ids.has(p) ? p : (this.unkToken ?? p)));
      if (pieces.some((p) => model.tokens_to_ids.get(p) === unk)) out.push({ word, pieces });
    }
    if (out.length === 0) out.push({ word: text, pieces: [this.unkToken ?? String(unk)] });
    return out;
  }

  /**
   * Ids of `s` for the single-token check: a text with leading whitespace is read in context
   * (after {@link CONTEXT}), so SentencePiece's extra `▁` at the start of a text does not count;
   * otherwise plain `encode`.
   */
  private singleTokenCandidates(s: string): number[] {
    if (/^\s/u.test(s)) {
      const inCtx = this.inContext(s);
      if (inCtx !== undefined) return inCtx;
    }
    return this.encode(s);
  }

  /** Ids that `s` adds after CONTEXT, or undefined when CONTEXT's tokens change (a merge across the boundary). */
  private inContext(s: string): number[] | undefined {
    const pre = this.encode(CONTEXT);
    const all = this.encode(CONTEXT + s);
    if (all.length < pre.length || pre.some((id, i) => all[i] !== id)) return undefined;
    return all.slice(pre.length);
  }

  private bosPrefix(prepend: boolean): number[] {
    if (!prepend) return [];
    return this.templatePrefix.length > 0 ? [...this.templatePrefix] : [this.requireBos()];
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

/** Content of a special-token entry, which HF writes either as a string or as an AddedToken object. */
function tokenContent(t: TokenizerConfigJSON['bos_token']): string | undefined {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof t.content === 'string') return t.content;
  return undefined;
}

/**
 * Older `tokenizers` releases wrote `model` without its `type` (GPT-2's hub tokenizer.json is one).
 * The package then falls back to a "legacy" model that looks whole pre-tokens up in the vocab,
 * mapping every word that needs merges to UNK, unless the fields happen to look like BPE. Fill the
 * type in from the fields that are present, the way the Rust deserializer tells the variants apart.
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

/** One item of a TemplateProcessing `single` list. */
type TemplateItem = { SpecialToken?: { id?: string }; Sequence?: { id?: string } };

/** The TemplateProcessing of a post_processor (itself, or inside a Sequence), if any. */
function templateOf(pp: unknown): { single?: TemplateItem[]; special_tokens?: Record<string, { ids?: number[] }> } | undefined {
  if (!pp || typeof pp !== 'object') return undefined;
  const p = pp as { type?: string; processors?: unknown[] };
  if (p.type === 'TemplateProcessing') return pp as ReturnType<typeof templateOf>;
  if (p.type === 'Sequence' && Array.isArray(p.processors)) {
    for (const q of p.processors) {
      const t = templateOf(q);
      if (t) return t;
    }
  }
  return undefined;
}

/**
 * The special ids a tokenizer puts in front of a single text, as transformers does:
 * `tokenizer_config.json`'s `add_bos_token`, when it is a boolean, decides (LlamaTokenizerFast,
 * GPTNeoXTokenizerFast and Gemma rebuild their post-processor from it); otherwise the leading
 * special tokens of tokenizer.json's TemplateProcessing (Llama `<s> $A`, BERT `[CLS] $A [SEP]`).
 * Trailing specials (`</s>`, `[SEP]`) are left out on purpose: relp reads the next-token logits
 * at the last position, and an EOS there would change what is measured.
 */
function templatePrefixOf(
  tokenizerJSON: Record<string, unknown>,
  cfg: TokenizerConfigJSON,
  bos: number | undefined,
  idOf: (t: string) => number | undefined,
  path: string,
): { templatePrefix: number[]; bosSource: BosSource } {
  if (typeof cfg.add_bos_token === 'boolean') {
    if (cfg.add_bos_token && bos === undefined) throw new Error(`${path}: add_bos_token is true but the tokenizer defines no BOS token`);
    return { templatePrefix: cfg.add_bos_token ? [bos!] : [], bosSource: 'tokenizer_config add_bos_token' };
  }
  const t = templateOf(tokenizerJSON.post_processor);
  const prefix: number[] = [];
  for (const item of t?.single ?? []) {
    const name = item.SpecialToken?.id;
    if (name === undefined) break; // reached $A
    const ids = t?.special_tokens?.[name]?.ids ?? [idOf(name)];
    for (const id of ids) {
      if (typeof id !== 'number') throw new Error(`${path}: post_processor template names special token ${JSON.stringify(name)}, which is not in the vocabulary`);
      prefix.push(id);
    }
  }
  return { templatePrefix: prefix, bosSource: prefix.length ? 'post_processor template' : 'none' };
}

/**
 * Load the tokenizer of a local model directory holding `tokenizer.json` (required),
 * `tokenizer_config.json` and `config.json` (both optional). Reads only local files.
 *
 * BOS id: `config.json` `bos_token_id`, else the id of `tokenizer_config.json` `bos_token`,
 * else the id of `<|endoftext|>` (GPT-2's BOS), else undefined. Whether texts get it by default
 * follows the tokenizer's own template (see {@link Tokenizer.prependBos}).
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
  if (typeof tokenizerJSON !== 'object' || tokenizerJSON === null || Array.isArray(tokenizerJSON)) {
    throw new Error(`tokenizer file ${tokPath} is not a JSON object`);
  }

  // The package expects added_tokens to be an array and every pipeline key present (null = none);
  // hand-written or older files leave some out.
  if (!Array.isArray(tokenizerJSON.added_tokens)) tokenizerJSON.added_tokens = [];
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(k in tokenizerJSON)) tokenizerJSON[k] = null;
  inferModelType(tokenizerJSON, tokPath);
  const model = tokenizerJSON.model as Record<string, unknown>;
  // A WordLevel model is built as the package's whole-word lookup, whose unknown token comes from
  // the config rather than from the model section: hand it over.
  const cfgForPackage: TokenizerConfigJSON = { ...tokenizerConfig };
  if (model.type === 'WordLevel' && typeof model.unk_token === 'string') cfgForPackage.unk_token = model.unk_token;

  let inner: HFTokenizer;
  try {
    inner = new HFTokenizer(tokenizerJSON, cfgForPackage);
  } catch (err) {
    throw new Error(`cannot build tokenizer from ${tokPath} (model type ${String(model.type)}): ${(err as Error).message}`);
  }

  const idOf = (t: string): number | undefined => inner.token_to_id(t);
  let bos: number | undefined;
  if (typeof modelConfig.bos_token_id === 'number') bos = modelConfig.bos_token_id;
  else {
    const content = tokenContent(tokenizerConfig.bos_token);
    bos = (content !== undefined ? idOf(content) : undefined) ?? idOf('<|endoftext|>');
  }
  const { templatePrefix, bosSource } = templatePrefixOf(tokenizerJSON, tokenizerConfig, bos, idOf, tokPath);
  return new Tokenizer(inner, { bosTokenId: bos, templatePrefix, bosSource });
}
