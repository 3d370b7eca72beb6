/**
 * Score tensors per component: the typed result of every patching method, ready for run.json.
 */
import type { ScoreTensor } from '../contracts/score-tensor.ts';
import type { ComponentName } from './components.ts';

/** Scores of one method, per component. */
export type MethodScores = Partial<Record<ComponentName, ScoreTensor>>;

/** Build a tensor's nested values ([L][T], [L][H] or [L][H][T]) from a flat row-major array. */
export function nest(flat: ArrayLike<number>, shape: number[]): ScoreTensor['values'] {
  const build = (offset: number, dims: number[]): number | unknown[] => {
    if (dims.length === 0) return flat[offset];
    const [n, ...rest] = dims;
    const stride = rest.reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => build(offset + i * stride, rest));
  };
  return build(0, shape) as ScoreTensor['values'];
}
