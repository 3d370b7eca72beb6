/**
 * Download a model repo (GPT-2, GPT-NeoX, Llama, Qwen2 and Gemma-2 layouts alike) from the Hugging
 * Face Hub (or a mirror speaking the same HTTP layout): config, tokenizer files and safetensors
 * weights, with sha256 verification and resume.
 *
 * The parts live in src/io/download/: `hub-api.ts` (the hub's HTTP layout, the same one
 * `huggingface_hub` relies on), `fetch-file.ts` (one file: resume, verify, rename), `verify.ts`
 * (size and hash checks) and `progress-bar.ts`.
 *
 * Files are written to `<file>.incomplete` and renamed once complete and verified, so an
 * interrupted run resumes with a `Range` request and a finished file is never half-written.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { downloadFile, type DownloadedFile, type DownloadProgress, type FetchContext } from './download/fetch-file.ts';
import { checkFileName, checkRepoId, expectedFromSibling, HubDownloadError, listFiles, type Sibling } from './download/hub-api.ts';
import type { Expected } from './download/verify.ts';

export { HubDownloadError } from './download/hub-api.ts';
export type { DownloadedFile, DownloadProgress } from './download/fetch-file.ts';

/** The public Hugging Face Hub. */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Non-weight files fetched when the repo has them (config.json is required). */
export const CONFIG_FILES: readonly string[] = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
];

const SAFETENSORS_FILE = 'model.safetensors';
const SAFETENSORS_INDEX = 'model.safetensors.index.json';
/** Weight formats relp cannot read; only named in the "no safetensors" error. */
const OTHER_WEIGHTS = /\.(bin|h5|msgpack|ckpt|pt|pth|onnx|gguf)$/;

/** Options for {@link downloadModel}. */
export interface DownloadOptions {
  /** Target directory (default {@link defaultModelDir}). Created if missing. */
  dir?: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Hub base URL (default `$HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Access token sent as `Authorization: Bearer` (default `$HF_TOKEN`). */
  token?: string;
  /**
   * Exact list of repo files to fetch instead of the automatic selection (config, tokenizer and
   * safetensors weights). Every listed file must exist.
   */
  files?: string[];
  /** Called as bytes arrive. */
  onProgress?: (p: DownloadProgress) => void;
  /** Draw a cli-progress bar on stderr (default: only when stderr is a TTY). */
  progress?: boolean;
}

/** What {@link downloadModel} did. */
export interface DownloadResult {
  repoId: string;
  revision: string;
  /** Absolute directory holding the files. */
  dir: string;
  files: DownloadedFile[];
}

/**
 * Where `relp download` puts a model by default:
 * `$RELP_CACHE_DIR/models/<owner>__<name>` (with `@<revision>` appended for revisions other than
 * `main`), where `RELP_CACHE_DIR` defaults to `$XDG_CACHE_HOME/relp`, else `~/.cache/relp`.
 * A user-level cache (rather than `./models`) lets every working directory reuse one download.
 */
export function defaultModelDir(repoId: string, revision = 'main', env: NodeJS.ProcessEnv = process.env): string {
  checkRepoId(repoId);
  const cache = env.RELP_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'relp');
  const rev = revision === 'main' ? '' : `@${revision.replace(/[^\w.-]/g, '_')}`;
  return resolve(cache, 'models', repoId.replace('/', '__') + rev);
}

/** Shard file names of a `model.safetensors.index.json`, in order of first appearance. */
async function shardsOf(indexPath: string, repoId: string): Promise<string[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new HubDownloadError(`${SAFETENSORS_INDEX} of ${repoId} is not valid JSON: ${(err as Error).message}`);
  }
  const wm = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new HubDownloadError(`${SAFETENSORS_INDEX} of ${repoId} has no "weight_map" object`);
  }
  const shards = [...new Set(Object.values(wm as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string') throw new HubDownloadError(`${SAFETENSORS_INDEX} of ${repoId}: weight_map values must be file names`);
    checkFileName(s, `${SAFETENSORS_INDEX} of ${repoId}`);
  }
  return shards as string[];
}

function noSafetensorsError(ctx: FetchContext, listing: Map<string, Sibling> | null): HubDownloadError {
  const others = listing ? [...listing.keys()].filter((f) => OTHER_WEIGHTS.test(f)) : [];
  return new HubDownloadError(
    `${ctx.repoId} (revision "${ctx.revision}") has no safetensors weights (${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX})` +
      (others.length ? `; it only has ${others.join(', ')}, which relp cannot read. Convert them to safetensors first` : ''),
  );
}

/**
 * Download a model repo's config, tokenizer files and safetensors weights into a local dir.
 *
 * Files already present and matching the hub's size/hash are skipped; an interrupted file
 * resumes from its `.incomplete` partial. LFS files (the weights) are verified against the
 * sha256 the hub publishes. Throws {@link HubDownloadError} with a specific message on auth
 * failures (401/403, mentioning HF_TOKEN), missing repos/revisions (404), network failures
 * (mentioning HF_ENDPOINT) and repos without safetensors weights.
 */
export async function downloadModel(repoId: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  checkRepoId(repoId);
  const revision = opts.revision ?? 'main';
  if (!revision) throw new HubDownloadError('revision must be a non-empty branch, tag or commit');
  const endpointRaw = opts.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  let origin: string;
  try {
    origin = new URL(endpointRaw).origin;
  } catch {
    throw new HubDownloadError(`invalid hub endpoint ${JSON.stringify(endpointRaw)} (from ${opts.endpoint ? 'the endpoint option' : 'HF_ENDPOINT'}): expected a URL like https://huggingface.co`);
  }
  const ctx: FetchContext = {
    repoId,
    revision,
    endpoint: endpointRaw.replace(/\/+$/, ''),
    origin,
    token: opts.token ?? (process.env.HF_TOKEN || undefined),
    dir: resolve(opts.dir ?? defaultModelDir(repoId, revision)),
    onProgress: opts.onProgress,
    progress: opts.progress ?? Boolean(process.stderr.isTTY),
  };
  // A failed download must not leave empty folders behind (e.g. a mistyped model id under the
  // cache). Partial `.incomplete` files stay, so that a rerun resumes; their folder stays with them.
  const created = missingDirs(ctx.dir);
  mkdirSync(ctx.dir, { recursive: true });
  try {
    return await fetchRepo(ctx, opts);
  } catch (err) {
    removeEmptyDirs(created);
    throw err;
  }
}

/** The folders `mkdirSync(dir, { recursive: true })` will create, outermost first. */
function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) break;
  }
  return out;
}

/** Remove `dirs` (innermost first) and any empty folders inside them, keeping every folder that holds a file. */
function removeEmptyDirs(dirs: string[]): void {
  const prune = (d: string): boolean => {
    if (!existsSync(d) || !statSync(d).isDirectory()) return false;
    let empty = true;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!(e.isDirectory() && prune(join(d, e.name)))) empty = false;
    }
    if (empty) rmdirSync(d);
    return empty;
  };
  for (const d of [...dirs].reverse()) {
    try {
      prune(d);
    } catch {
      // Best effort: never hide the download error behind a clean-up error.
    }
  }
}

/** Everything after the target folder exists: listing, config, tokenizer files, weights. */
async function fetchRepo(ctx: FetchContext, opts: DownloadOptions): Promise<DownloadResult> {
  const { repoId, revision } = ctx;
  const listing = await listFiles(ctx);
  const listed = (f: string): Expected => expectedFromSibling(listing?.get(f));
  const out: DownloadedFile[] = [];
  const get = async (f: string, optional: boolean): Promise<DownloadedFile | null> => {
    const r = await downloadFile(ctx, f, listed(f), optional);
    if (r) out.push(r);
    return r;
  };

  if (opts.files) {
    for (const f of opts.files) {
      checkFileName(f, 'the files option');
      if (listing && !listing.has(f)) throw new HubDownloadError(`${f} is not a file of ${repoId} at revision "${revision}"`);
      await get(f, false);
    }
    return { repoId, revision, dir: ctx.dir, files: out };
  }

  // config.json first: it is small and its absence means this is not a usable model repo.
  if (listing && !listing.has('config.json')) {
    throw new HubDownloadError(`${repoId} (revision "${revision}") has no config.json, so it is not a transformers model repo relp can load`);
  }
  if (!(await get('config.json', listing === null))) {
    // Without a listing, a missing config.json most likely means the repo or revision does not exist.
    throw new HubDownloadError(
      `${repoId} at revision "${revision}" not found on ${ctx.endpoint} (no listing and config.json is 404): check the model id and revision`,
      404,
    );
  }
  for (const f of CONFIG_FILES) {
    if (f === 'config.json') continue;
    if (listing && !listing.has(f)) continue;
    await get(f, true);
  }

  let index: DownloadedFile | null = null;
  if (!listing || listing.has(SAFETENSORS_FILE)) {
    if (await get(SAFETENSORS_FILE, listing === null)) return { repoId, revision, dir: ctx.dir, files: out };
  }
  if (!listing || listing.has(SAFETENSORS_INDEX)) index = await get(SAFETENSORS_INDEX, listing === null);
  if (!index) throw noSafetensorsError(ctx, listing);
  for (const shard of await shardsOf(index.path, repoId)) {
    if (listing && !listing.has(shard)) throw new HubDownloadError(`${SAFETENSORS_INDEX} of ${repoId} names shard ${shard}, which the repo does not have`);
    await get(shard, false);
  }
  return { repoId, revision, dir: ctx.dir, files: out };
}
