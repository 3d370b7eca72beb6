/**
 * Checking a downloaded file against what the hub announced: size, sha256 (LFS files) or the
 * git blob sha1 (small files).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';

/** Expected identity of a file, from the listing and/or the resolve headers. */
export interface Expected {
  sha256?: string;
  /** Git blob sha1 (the hub's ETag for small, non-LFS files). */
  gitSha1?: string;
  size?: number;
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** The sha256 of a file's bytes, hex. */
export async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  await hashFile(path, h);
  return h.digest('hex');
}

/** Git's blob id: sha1 of `blob <size>\0<content>`. */
export async function gitSha1Of(path: string): Promise<string> {
  const h = createHash('sha1');
  h.update(`blob ${statSync(path).size}\0`);
  await hashFile(path, h);
  return h.digest('hex');
}

/** Does the file at `path` match what the hub announced? Undefined when nothing is known. */
export async function matches(path: string, exp: Expected): Promise<boolean | undefined> {
  const size = statSync(path).size;
  if (exp.size !== undefined && size !== exp.size) return false;
  if (exp.sha256) return (await sha256Of(path)) === exp.sha256;
  if (exp.gitSha1) return (await gitSha1Of(path)) === exp.gitSha1;
  return undefined;
}
