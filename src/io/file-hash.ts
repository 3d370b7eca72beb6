/**
 * The sha256 of a checkpoint, streamed and cached: weight files can be many GiB, so they are
 * read in 16 MiB pieces (never whole), and the digest is remembered in `.relp-hash.json` beside
 * the checkpoint, keyed by every file's path, size and mtime, so a second open reads nothing.
 *
 * Definition: sha256 over the bytes of `files[1..]` (the weight files, in order) followed by
 * `files[0]` (config.json). Where the folder is not writable the cache is skipped silently.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Name of the cache file written beside a checkpoint's config.json. */
export const HASH_CACHE_NAME = '.relp-hash.json';

/** Options for {@link checkpointSha256}. */
export interface CheckpointHashOptions {
  /** Folder of the cache file (default: config.json's folder). */
  cacheDir?: string;
  /**
   * Only files totalling at least this many bytes are cached (default 64 MiB): smaller ones hash
   * in milliseconds, and a folder such as the embedded model stays untouched.
   */
  cacheMinBytes?: number;
}

const CHUNK = 16 * 1024 * 1024;
const MAX_ENTRIES = 8;
const DEFAULT_CACHE_MIN = 64 * 1024 * 1024;

/** sha256 (hex) over files' bytes in order, read in 16 MiB pieces. */
export function streamedSha256(files: readonly string[]): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      for (let pos = 0; ; ) {
        const n = readSync(fd, buf, 0, CHUNK, pos);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        pos += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}

/**
 * The checkpoint hash of `files` (config.json first, then the weight files in the order they
 * are read): sha256 over the weight files, then config.json. Cached (see the module doc).
 */
export function checkpointSha256(files: readonly string[], opts: CheckpointHashOptions = {}): string {
  if (files.length === 0) throw new Error('checkpointSha256: no files (config.json first, then the weight files)');
  const ordered = [...files.slice(1), files[0]];
  const cacheDir = opts.cacheDir ?? dirname(files[0]);
  const stats = ordered.map((f) => statSync(f));
  const total = stats.reduce((a, s) => a + s.size, 0);
  if (total < (opts.cacheMinBytes ?? DEFAULT_CACHE_MIN)) return streamedSha256(ordered);
  const key = JSON.stringify(ordered.map((f, i) => [relative(cacheDir, f), stats[i].size, stats[i].mtimeMs]));
  const cachePath = join(cacheDir, HASH_CACHE_NAME);
  const cache = readCache(cachePath);
  const hit = cache.find((e) => e.key === key);
  if (hit) return hit.sha256;
  const sha256 = streamedSha256(ordered);
  writeCache(cachePath, [{ key, sha256 }, ...cache.filter((e) => e.key !== key)].slice(0, MAX_ENTRIES));
  return sha256;
}

interface CacheEntry {
  key: string;
  sha256: string;
}

function readCache(path: string): CacheEntry[] {
  try {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as { version?: number; entries?: unknown };
    if (raw.version !== 1 || !Array.isArray(raw.entries)) return [];
    return raw.entries.filter(
      (e): e is CacheEntry => typeof e?.key === 'string' && typeof e?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256),
    );
  } catch {
    return []; // absent, unreadable or foreign: hash again
  }
}

function writeCache(path: string, entries: CacheEntry[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ version: 1, entries }, null, 1));
    renameSync(tmp, path);
  } catch {
    // A read-only folder (or a cache path that is not a file): work without the cache.
  }
}
