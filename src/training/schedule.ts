/**
 * Learning-rate schedule: linear warmup, then cosine decay to a floor (REFERENCE §6).
 */

/** Parameters of {@link learningRate}. */
export interface ScheduleOptions {
  /** Peak learning rate reached at the end of warmup. */
  peak: number;
  /** Final learning rate at `total` steps. */
  min: number;
  /** Warmup steps (linear from peak/warmup to peak). */
  warmup: number;
  /** Total number of steps. */
  total: number;
}

/**
 * Learning rate at 0-based `step`: `peak·(step+1)/warmup` during warmup, then
 * `min + (peak − min)·(1 + cos(π·t))/2` with `t = (step − warmup)/(total − warmup)` in [0, 1].
 */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (!(o.peak > 0) || o.min < 0 || o.min > o.peak) throw new Error(`learningRate: need 0 <= min (${o.min}) <= peak (${o.peak}), peak > 0`);
  if (o.warmup < 0 || o.total <= 0) throw new Error(`learningRate: need warmup >= 0 (${o.warmup}) and total > 0 (${o.total})`);
  if (step < o.warmup) return (o.peak * (step + 1)) / o.warmup;
  const span = Math.max(1, o.total - o.warmup);
  const t = Math.min(1, (step - o.warmup) / span);
  return o.min + ((o.peak - o.min) * (1 + Math.cos(Math.PI * t))) / 2;
}
