/**
 * Download a GPT-2-style model from the Hugging Face Hub (or a mirror speaking the same HTTP
 * layout): config, tokenizer files and safetensors weights, with sha256 verification and resume.
 *
 * Hub layout used (the same one `huggingface_hub` relies on):
 * - `GET  {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` lists files (`siblings`, with
 *   `lfs: {sha256, size}` for LFS files).
 * - `HEAD {endpoint}/{repo}/resolve/{rev}/{file}` answers 200 for small (git) files, with the git
 *   blob sha1 as ETag, or a 302 to a CDN for LFS files, carrying `X-Linked-Etag` (the sha256)
 *   and `X-Linked-Size`.
 *
 * Files are written to `<file>.incomplete` and renamed once complete and verified, so an
 * interrupted run resumes with a `Range` request and a finished file is never half-written.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import cliProgress from 'cli-progress';

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

/** Progress of one file, reported after every received chunk. */
export interface DownloadProgress {
  /** File name inside the repo. */
  file: string;
  /** Bytes of this file on disk so far (including a resumed prefix). */
  bytes: number;
  /** Expected size of the file, when the hub told us. */
  total: number | undefined;
}

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

/** One file of a finished download. */
export interface DownloadedFile {
  /** File name inside the repo. */
  name: string;
  /** Absolute path on disk. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Verified sha256 (LFS files), when the hub published one. */
  sha256?: string;
  /** `downloaded` fresh, `resumed` from a `.incomplete` partial, `skipped` (already complete). */
  status: 'downloaded' | 'resumed' | 'skipped';
}

/** What {@link downloadModel} did. */
export interface DownloadResult {
  repoId: string;
  revision: string;
  /** Absolute directory holding the files. */
  dir: string;
  files: DownloadedFile[];
}

/** A download failure with an actionable message; `status` is the HTTP status when there was one. */
export class HubDownloadError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'HubDownloadError';
    this.status = status;
  }
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

function checkRepoId(repoId: string): void {
  if (!REPO_ID.test(repoId) || repoId.includes('..')) {
    throw new HubDownloadError(`invalid Hugging Face model id ${JSON.stringify(repoId)}: expected "name" or "owner/name" (letters, digits, "-", "_", ".")`);
  }
}

/** A repo file name is written under the target dir: refuse anything that could escape it. */
function checkFileName(name: string, where: string): void {
  const bad = name.length === 0 || name.startsWith('/') || name.includes('\\') || name.split('/').some((s) => s === '..' || s === '' || s === '.');
  if (bad) throw new HubDownloadError(`refusing unsafe file name ${JSON.stringify(name)} from ${where}`);
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

/** Expected identity of a file, from the listing and/or the resolve headers. */
interface Expected {
  sha256?: string;
  /** Git blob sha1 (the hub's ETag for small, non-LFS files). */
  gitSha1?: string;
  size?: number;
}

interface Sibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256?: string; size?: number };
}

interface Ctx {
  repoId: string;
  revision: string;
  endpoint: string;
  origin: string;
  token: string | undefined;
  dir: string;
  onProgress: ((p: DownloadProgress) => void) | undefined;
  progress: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX40 = /^[0-9a-f]{40}$/;

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

function resolveUrl(ctx: Ctx, file: string): string {
  return `${ctx.endpoint}/${encodePath(ctx.repoId)}/resolve/${encodeURIComponent(ctx.revision)}/${encodePath(file)}`;
}

/** Headers for a request; the token goes only to the hub's own origin, never to a CDN. */
function headersFor(ctx: Ctx, url: string, extra: Record<string, string> = {}): Record<string, string> {
  // identity: sizes and hashes refer to the stored bytes, not a gzip transfer encoding.
  const h: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'relp', ...extra };
  if (ctx.token && new URL(url).origin === ctx.origin) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

function networkError(ctx: Ctx, url: string, err: unknown): HubDownloadError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message ?? e.message;
  return new HubDownloadError(
    `cannot reach ${ctx.endpoint} (${cause}) while requesting ${url}. Check the network connection, or set HF_ENDPOINT to a reachable Hugging Face mirror.`,
  );
}

async function request(ctx: Ctx, url: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Response> {
  try {
    return await fetch(url, { ...init, headers: headersFor(ctx, url, init.headers) });
  } catch (err) {
    throw networkError(ctx, url, err);
  }
}

function authError(ctx: Ctx, status: number, url: string, res: Response): HubDownloadError {
  const hubMsg = res.headers.get('x-error-message');
  const tokenHint = ctx.token
    ? 'The token in HF_TOKEN was refused or has no access to this repo (gated models need their terms accepted on the hub).'
    : 'Set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) if the repo is private or gated.';
  return new HubDownloadError(
    `${status} ${res.statusText || 'Unauthorized'} for ${url}${hubMsg ? ` (${hubMsg})` : ''}: ${ctx.repoId} may be private, gated or nonexistent. ${tokenHint}`,
    status,
  );
}

function notFoundError(ctx: Ctx, what: string, res: Response): HubDownloadError {
  const hubMsg = res.headers.get('x-error-message');
  return new HubDownloadError(
    `${what} not found (404${hubMsg ? `: ${hubMsg}` : ''}): check that the model id "${ctx.repoId}" and revision "${ctx.revision}" exist on ${ctx.endpoint}`,
    404,
  );
}

function statusError(ctx: Ctx, url: string, res: Response): HubDownloadError {
  if (res.status === 401 || res.status === 403) return authError(ctx, res.status, url, res);
  const hubMsg = res.headers.get('x-error-message');
  return new HubDownloadError(`unexpected HTTP ${res.status} ${res.statusText} for ${url}${hubMsg ? ` (${hubMsg})` : ''}`, res.status);
}

/** The repo's file list, or null when the endpoint has no usable listing API (some mirrors). */
async function listFiles(ctx: Ctx): Promise<Map<string, Sibling> | null> {
  const url = `${ctx.endpoint}/api/models/${encodePath(ctx.repoId)}/revision/${encodeURIComponent(ctx.revision)}?blobs=true`;
  const res = await request(ctx, url, { headers: { Accept: 'application/json' } });
  if (res.status === 401 || res.status === 403) throw authError(ctx, res.status, url, res);
  if (res.status >= 500) throw statusError(ctx, url, res);
  if (!res.ok) {
    await res.body?.cancel();
    return null; // 404 etc.: fall back to probing the known file names; a missing repo fails there
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    return null;
  }
  const siblings = (body as { siblings?: unknown } | null)?.siblings;
  if (!Array.isArray(siblings)) return null;
  const map = new Map<string, Sibling>();
  for (const s of siblings as Sibling[]) if (s && typeof s.rfilename === 'string') map.set(s.rfilename, s);
  return map;
}

function expectedFromSibling(s: Sibling | undefined): Expected {
  if (!s) return {};
  const sha = s.lfs?.sha256?.toLowerCase();
  return {
    sha256: sha && HEX64.test(sha) ? sha : undefined,
    size: typeof s.lfs?.size === 'number' ? s.lfs.size : typeof s.size === 'number' ? s.size : undefined,
  };
}

/** `"abc"`, `W/"abc"` -> `abc` (lower case). */
function normalizeEtag(raw: string | null): string | undefined {
  if (!raw) return undefined;
  return raw.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
}

/** Metadata of a file from HEAD requests on its resolve URL, and the URL to GET it from. */
interface FileMeta {
  url: string;
  expected: Expected;
}

/**
 * HEAD the resolve URL without following redirects, so the `X-Linked-*` headers of the hub's
 * redirect to its CDN stay visible. Same-origin relative redirects (renamed repos) are followed.
 * Returns null on 404.
 */
async function headFile(ctx: Ctx, file: string): Promise<FileMeta | null> {
  let url = resolveUrl(ctx, file);
  for (let hop = 0; hop < 10; hop++) {
    const res = await request(ctx, url, { method: 'HEAD', redirect: 'manual' });
    if (res.status === 404) return null;
    if (res.status === 405 || res.status === 501) return { url, expected: {} }; // no HEAD: just GET it
    const linked = normalizeEtag(res.headers.get('x-linked-etag'));
    const etag = linked ?? normalizeEtag(res.headers.get('etag'));
    const linkedSize = res.headers.get('x-linked-size');
    const expected: Expected = {};
    if (etag && HEX64.test(etag)) expected.sha256 = etag;
    else if (etag && HEX40.test(etag)) expected.gitSha1 = etag;
    if (linkedSize !== null && /^\d+$/.test(linkedSize)) expected.size = Number(linkedSize);
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get('location');
      if (!loc) throw new HubDownloadError(`HTTP ${res.status} without Location for ${url}`, res.status);
      const next = new URL(loc, url).toString();
      if (linked !== undefined || linkedSize !== null || new URL(next).origin !== ctx.origin) return { url: next, expected };
      url = next;
      continue;
    }
    if (!res.ok) throw statusError(ctx, url, res);
    const len = res.headers.get('content-length');
    if (expected.size === undefined && len !== null && /^\d+$/.test(len)) expected.size = Number(len);
    return { url, expected };
  }
  throw new HubDownloadError(`too many redirects for ${resolveUrl(ctx, file)}`);
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  await hashFile(path, h);
  return h.digest('hex');
}

/** Git's blob id: sha1 of `blob <size>\0<content>`. */
async function gitSha1Of(path: string): Promise<string> {
  const h = createHash('sha1');
  h.update(`blob ${statSync(path).size}\0`);
  await hashFile(path, h);
  return h.digest('hex');
}

/** Does the file at `path` match what the hub announced? Undefined when nothing is known. */
async function matches(path: string, exp: Expected): Promise<boolean | undefined> {
  const size = statSync(path).size;
  if (exp.size !== undefined && size !== exp.size) return false;
  if (exp.sha256) return (await sha256Of(path)) === exp.sha256;
  if (exp.gitSha1) return (await gitSha1Of(path)) === exp.gitSha1;
  return undefined;
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Files smaller than this download too fast for a bar to be worth its lines. */
const MIN_BAR_BYTES = 256 * 1024;

/** A per-file cli-progress bar on stderr, or a no-op. */
function makeBar(ctx: Ctx, file: string, total: number | undefined, start: number): { update(n: number): void; stop(): void } {
  if (!ctx.progress || (total !== undefined && total < MIN_BAR_BYTES)) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${file} [{bar}] {percentage}% | {done}/{size}`,
      hideCursor: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 2000,
    },
    cliProgress.Presets.shades_classic,
  );
  const sizeStr = total === undefined ? '?' : humanBytes(total);
  bar.start(total ?? Math.max(start, 1), start, { done: humanBytes(start), size: sizeStr });
  return {
    update(n: number) {
      if (total === undefined && n > bar.getTotal()) bar.setTotal(n);
      bar.update(n, { done: humanBytes(n), size: sizeStr });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * Fetch one file into ctx.dir. `listed` is what the file listing said about it (may be empty).
 * Returns null when the file does not exist (404) and `optional` is set.
 */
async function downloadFile(ctx: Ctx, name: string, listed: Expected, optional: boolean): Promise<DownloadedFile | null> {
  checkFileName(name, ctx.repoId);
  const meta = await headFile(ctx, name);
  if (!meta) {
    if (optional) return null;
    throw new HubDownloadError(
      `${name} not found in ${ctx.repoId} at revision "${ctx.revision}" (404 from ${ctx.endpoint}); check the model id and revision`,
      404,
    );
  }
  const exp: Expected = {
    sha256: listed.sha256 ?? meta.expected.sha256,
    gitSha1: listed.sha256 ? undefined : meta.expected.gitSha1,
    size: listed.size ?? meta.expected.size,
  };
  const dest = join(ctx.dir, name);
  const partial = `${dest}.incomplete`;
  mkdirSync(dirname(dest), { recursive: true });

  if (existsSync(dest) && (await matches(dest, exp))) {
    return { name, path: dest, size: statSync(dest).size, sha256: exp.sha256, status: 'skipped' };
  }

  let start = existsSync(partial) ? statSync(partial).size : 0;
  if (exp.size !== undefined && start > exp.size) {
    await rm(partial, { force: true });
    start = 0;
  }
  let resumed = start > 0;
  // A partial that already has every byte (e.g. killed between download and rename) needs no request.
  const complete = exp.size !== undefined && start === exp.size && start > 0;
  if (!complete) {
    const received = await fetchBody(ctx, name, meta.url, partial, start, exp.size);
    if (received.restarted) resumed = false;
  }

  const size = statSync(partial).size;
  if (exp.size !== undefined && size !== exp.size) {
    // Shorter: keep it for a resume. Longer: it can never become right.
    if (size > exp.size) await rm(partial, { force: true });
    throw new HubDownloadError(
      `${name}: got ${size} bytes but the hub announced ${exp.size}` +
        (size < exp.size ? `; the partial file is kept at ${partial}, run the download again to resume` : ''),
    );
  }
  if (exp.sha256 || exp.gitSha1) {
    const [kind, want, got] = exp.sha256
      ? ['sha256', exp.sha256, await sha256Of(partial)]
      : ['git blob sha1', exp.gitSha1 as string, await gitSha1Of(partial)];
    if (got !== want) {
      await rm(partial, { force: true });
      throw new HubDownloadError(
        `${name}: ${kind} mismatch — expected ${want}, got ${got}. The corrupt download was deleted; run the download again to retry.`,
      );
    }
  }
  await rename(partial, dest);
  return { name, path: dest, size, sha256: exp.sha256, status: resumed ? 'resumed' : 'downloaded' };
}

/**
 * GET `url` into `partial`, appending from byte `start` with a Range request when start > 0.
 * Throws (keeping the partial) when the connection breaks midway.
 */
async function fetchBody(
  ctx: Ctx,
  name: string,
  url: string,
  partial: string,
  start: number,
  total: number | undefined,
): Promise<{ restarted: boolean }> {
  let offset = start;
  let res = await request(ctx, url, { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {} });
  let restarted = false;
  if (res.status === 416 && offset > 0) {
    // The partial does not fit the remote file (it changed, or the partial is corrupt): start over.
    await res.body?.cancel();
    await rm(partial, { force: true });
    offset = 0;
    restarted = true;
    res = await request(ctx, url, {});
  }
  if (res.status === 404) throw notFoundError(ctx, `${name} (${url})`, res);
  if (!res.ok) throw statusError(ctx, url, res);
  if (res.status === 206) {
    const cr = res.headers.get('content-range');
    const m = cr ? /^bytes (\d+)-/.exec(cr) : null;
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      throw new HubDownloadError(`${name}: asked for bytes from ${offset} but the server sent Content-Range ${cr ?? '(none)'}`);
    }
  } else if (offset > 0) {
    offset = 0; // 200 to a Range request: the server ignores ranges, so the body is the whole file
    restarted = true;
  }
  if (!res.body) throw new HubDownloadError(`${name}: empty response body from ${url}`);

  const fh = await open(partial, offset > 0 ? 'a' : 'w');
  const bar = makeBar(ctx, name, total, offset);
  let bytes = offset;
  try {
    for await (const chunk of res.body) {
      await fh.write(chunk);
      bytes += chunk.byteLength;
      bar.update(bytes);
      ctx.onProgress?.({ file: name, bytes, total });
    }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const cause = e.cause?.code ?? e.cause?.message ?? e.message;
    throw new HubDownloadError(
      `download of ${name} was interrupted after ${humanBytes(bytes)}${total !== undefined ? ` of ${humanBytes(total)}` : ''} (${cause}). ` +
        `The partial file is kept at ${partial}; run the download again to resume. If ${ctx.endpoint} is unreliable, set HF_ENDPOINT to a mirror.`,
    );
  } finally {
    bar.stop();
    await fh.close();
  }
  return { restarted };
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

function noSafetensorsError(ctx: Ctx, listing: Map<string, Sibling> | null): HubDownloadError {
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
    throw new HubDownloadError(`invalid hub endpoint ${JSON.stringify(endpointRaw)} (from ${opts.endpoint ? '--endpoint' : 'HF_ENDPOINT'}): expected a URL like https://huggingface.co`);
  }
  const ctx: Ctx = {
    repoId,
    revision,
    endpoint: endpointRaw.replace(/\/+$/, ''),
    origin,
    token: opts.token ?? (process.env.HF_TOKEN || undefined),
    dir: resolve(opts.dir ?? defaultModelDir(repoId, revision)),
    onProgress: opts.onProgress,
    progress: opts.progress ?? Boolean(process.stderr.isTTY),
  };
  mkdirSync(ctx.dir, { recursive: true });

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
