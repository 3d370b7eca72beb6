/**
 * Whether dist/ (the compiled package) is older than its sources, and a rebuild when it is. Used by
 * the test setup (the CLI tests run bin/relp.js on dist/) and by `npm run notebooks` (on the Deno
 * kernel the notebooks' `import … from 'relp'` resolves through package.json "exports" to dist/).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STAMP = join(ROOT, 'dist', '.build-stamp');

/** Newest modification time (ms) of a file or of any file under a folder. */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((m, name) => Math.max(m, newest(join(path, name))), st.mtimeMs);
}

/** True when dist/ is missing or older than src/, the build config or the build script. */
export function distIsStale(): boolean {
  if (!existsSync(STAMP)) return true;
  const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'package.json'].map((p) => join(ROOT, p));
  return Math.max(...inputs.map(newest)) > statSync(STAMP).mtimeMs;
}

/** Run `npm run build` (scripts/build.mjs) when dist/ is stale; throws with its output when it fails. */
export function ensureFreshDist(): void {
  if (!distIsStale()) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
}
