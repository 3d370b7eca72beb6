/**
 * Fetching one repo file into the target dir: skip it when a verified copy is there, resume an
 * `.incomplete` partial with a `Range` request, check size and hash, and only then rename it into
 * place, so a finished file is never half-written.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkFileName, headFile, HubDownloadError, notFoundError, request, statusError, type HubContext } from './hub-api.ts';
import { humanBytes, makeBar } from './progress-bar.ts';
import { gitSha1Of, matches, sha256Of, type Expected } from './verify.ts';

/** Progress of one file, reported after every received chunk. */
export interface DownloadProgress {
  /** File name inside the repo. */
  file: string;
  /** Bytes of this file on disk so far (including a resumed prefix). */
  bytes: number;
  /** Expected size of the file, when the hub told us. */
  total: number | undefined;
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

/** A {@link HubContext} plus where the files go and how progress is shown. */
export interface FetchContext extends HubContext {
  dir: string;
  onProgress: ((p: DownloadProgress) => void) | undefined;
  progress: boolean;
}

/**
 * Fetch one file into ctx.dir. `listed` is what the file listing said about it (may be empty).
 * Returns null when the file does not exist (404) and `optional` is set.
 */
export async function downloadFile(ctx: FetchContext, name: string, listed: Expected, optional: boolean): Promise<DownloadedFile | null> {
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
  ctx: FetchContext,
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
  const bar = makeBar(ctx.progress, name, total, offset);
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
