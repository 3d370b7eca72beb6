/**
 * Progress bars (stderr) and resumable sweep checkpoints.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';

/** A minimal progress reporter. */
export interface Progress {
  start(total: number, label: string): void;
  increment(n?: number): void;
  stop(): void;
}

/** No-op progress (library default). */
export const silentProgress: Progress = { start() {}, increment() {}, stop() {} };

/** A cli-progress bar on stderr. */
export function barProgress(): Progress {
  const bar = new cliProgress.SingleBar(
    { format: '{label} [{bar}] {value}/{total} | {eta_formatted} left', stream: process.stderr, hideCursor: false, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total, label) => bar.start(total, 0, { label }),
    increment: (n = 1) => bar.increment(n),
    stop: () => bar.stop(),
  };
}

/** A sweep checkpoint: finished units with their flat values, bound to a key of the inputs. */
export interface Checkpoint {
  key: string;
  done: Record<string, number[]>;
}

/** Load a checkpoint if it exists and was made for the same inputs (`key`); otherwise empty. */
export function loadCheckpoint(path: string | undefined, key: string): Checkpoint {
  if (!path || !existsSync(path)) return { key, done: {} };
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Checkpoint;
    if (c.key === key && c.done && typeof c.done === 'object') return c;
  } catch {
    // A torn or foreign file: start over rather than trust it.
  }
  return { key, done: {} };
}

/** Save a checkpoint atomically (write then rename), so a kill never leaves a torn file. */
export function saveCheckpoint(path: string | undefined, c: Checkpoint): void {
  if (!path) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(c));
  renameSync(tmp, path);
}
