/**
 * The Hugging Face Hub's HTTP API as relp uses it: repo-id and file-name checks, resolve URLs,
 * requests (with the token kept to the hub's own origin), actionable HTTP errors, the file
 * listing and the HEAD metadata of one file. The layout (the same one `huggingface_hub` relies on):
 *
 * - `GET  {endpoint}/api/models/{repo}/revision/{rev}?blobs=true` lists files (`siblings`, with
 *   `lfs: {sha256, size}` for LFS files).
 * - `HEAD {endpoint}/{repo}/resolve/{rev}/{file}` answers 200 for small (git) files, with the git
 *   blob sha1 as ETag, or a 302 to a CDN for LFS files, carrying `X-Linked-Etag` (the sha256)
 *   and `X-Linked-Size`.
 */
import type { Expected } from './verify.ts';

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

/** Throw unless `repoId` is `name` or `owner/name` (letters, digits, `-`, `_`, `.`). */
export function checkRepoId(repoId: string): void {
  if (!REPO_ID.test(repoId) || repoId.includes('..')) {
    throw new HubDownloadError(`invalid Hugging Face model id ${JSON.stringify(repoId)}: expected "name" or "owner/name" (letters, digits, "-", "_", ".")`);
  }
}

/** A repo file name is written under the target dir: refuse anything that could escape it. */
export function checkFileName(name: string, where: string): void {
  const bad = name.length === 0 || name.startsWith('/') || name.includes('\\') || name.split('/').some((s) => s === '..' || s === '' || s === '.');
  if (bad) throw new HubDownloadError(`refusing unsafe file name ${JSON.stringify(name)} from ${where}`);
}

/** One entry of the hub's file listing (`siblings`). */
export interface Sibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256?: string; size?: number };
}

/** Which repo, revision and hub a download talks to. */
export interface HubContext {
  repoId: string;
  revision: string;
  endpoint: string;
  origin: string;
  token: string | undefined;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX40 = /^[0-9a-f]{40}$/;

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** The `resolve` URL of a repo file at the context's revision. */
function resolveUrl(ctx: HubContext, file: string): string {
  return `${ctx.endpoint}/${encodePath(ctx.repoId)}/resolve/${encodeURIComponent(ctx.revision)}/${encodePath(file)}`;
}

/** Headers for a request; the token goes only to the hub's own origin, never to a CDN. */
function headersFor(ctx: HubContext, url: string, extra: Record<string, string> = {}): Record<string, string> {
  // identity: sizes and hashes refer to the stored bytes, not a gzip transfer encoding.
  const h: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'relp', ...extra };
  if (ctx.token && new URL(url).origin === ctx.origin) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

function networkError(ctx: HubContext, url: string, err: unknown): HubDownloadError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message ?? e.message;
  return new HubDownloadError(
    `cannot reach ${ctx.endpoint} (${cause}) while requesting ${url}. Check the network connection, or set HF_ENDPOINT to a reachable Hugging Face mirror.`,
  );
}

/** `fetch` with the hub headers; a network failure becomes a {@link HubDownloadError} naming HF_ENDPOINT. */
export async function request(ctx: HubContext, url: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Response> {
  try {
    return await fetch(url, { ...init, headers: headersFor(ctx, url, init.headers) });
  } catch (err) {
    throw networkError(ctx, url, err);
  }
}

function authError(ctx: HubContext, status: number, url: string, res: Response): HubDownloadError {
  const hubMsg = res.headers.get('x-error-message');
  const tokenHint = ctx.token
    ? 'The token in HF_TOKEN was refused or has no access to this repo (gated models need their terms accepted on the hub).'
    : 'Set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) if the repo is private or gated.';
  return new HubDownloadError(
    `${status} ${res.statusText || 'Unauthorized'} for ${url}${hubMsg ? ` (${hubMsg})` : ''}: ${ctx.repoId} may be private, gated or nonexistent. ${tokenHint}`,
    status,
  );
}

/** A 404 for `what`, suggesting to check the model id and revision. */
export function notFoundError(ctx: HubContext, what: string, res: Response): HubDownloadError {
  const hubMsg = res.headers.get('x-error-message');
  return new HubDownloadError(
    `${what} not found (404${hubMsg ? `: ${hubMsg}` : ''}): check that the model id "${ctx.repoId}" and revision "${ctx.revision}" exist on ${ctx.endpoint}`,
    404,
  );
}

/** An unexpected HTTP status (401/403 get the HF_TOKEN hint). */
export function statusError(ctx: HubContext, url: string, res: Response): HubDownloadError {
  if (res.status === 401 || res.status === 403) return authError(ctx, res.status, url, res);
  const hubMsg = res.headers.get('x-error-message');
  return new HubDownloadError(`unexpected HTTP ${res.status} ${res.statusText} for ${url}${hubMsg ? ` (${hubMsg})` : ''}`, res.status);
}

/** The repo's file list, or null when the endpoint has no usable listing API (some mirrors). */
export async function listFiles(ctx: HubContext): Promise<Map<string, Sibling> | null> {
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

/** What a listing entry says about a file's size and sha256. */
export function expectedFromSibling(s: Sibling | undefined): Expected {
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
export interface FileMeta {
  url: string;
  expected: Expected;
}

/**
 * HEAD the resolve URL without following redirects, so the `X-Linked-*` headers of the hub's
 * redirect to its CDN stay visible. Same-origin relative redirects (renamed repos) are followed.
 * Returns null on 404.
 */
export async function headFile(ctx: HubContext, file: string): Promise<FileMeta | null> {
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
