/** The per-file download progress bar (cli-progress, on stderr). */
import cliProgress from 'cli-progress';

/** `123 B`, `1.5 MiB`, ... */
export function humanBytes(n: number): string {
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

/** A per-file cli-progress bar on stderr, or a no-op when `enabled` is false. */
export function makeBar(enabled: boolean, file: string, total: number | undefined, start: number): { update(n: number): void; stop(): void } {
  if (!enabled || (total !== undefined && total < MIN_BAR_BYTES)) return { update() {}, stop() {} };
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
