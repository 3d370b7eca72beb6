/**
 * Tests run the real `bin/relp.js`, which runs the compiled dist/: rebuild it first when any
 * source is newer than the last build (dist/.build-stamp), so no test runs a stale CLI.
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

export default function setup(): void {
  if (!distIsStale()) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed before the tests:\n${r.stdout}${r.stderr}`);
}
