/**
 * Schema of one score tensor of `run.json`: named axes, a shape, and nested values of exactly
 * that shape (finite numbers, or null for a cell the producer could not compute).
 */
import { z } from 'zod';

/** Named axes of a score tensor; `pos` is indexed by token position (labels from `labels`). */
export const SCORE_AXES = ['layer', 'head', 'pos'] as const;
/** One axis name. */
export type ScoreAxis = (typeof SCORE_AXES)[number];

/** The axis layouts relp writes and the viewer draws. */
export const SCORE_LAYOUTS = [
  ['layer', 'pos'], // resid_pre, resid_mid, resid_post, attn_out, mlp_out
  ['layer', 'head'], // z, q, k, v, pattern
  ['layer', 'head', 'pos'], // z_pos
] as const satisfies readonly (readonly ScoreAxis[])[];

/** One cell: a finite number, or null for a gap. */
const Cell = z.number({ error: 'expected a finite number or null' }).nullable();

/** Schema of one score tensor (shape checked against `values` cell by cell). */
export const ScoreTensorSchema = z
  .object({
    axes: z.union(
      [
        z.tuple([z.literal('layer'), z.literal('pos')]),
        z.tuple([z.literal('layer'), z.literal('head')]),
        z.tuple([z.literal('layer'), z.literal('head'), z.literal('pos')]),
      ],
      { error: `expected one of ${SCORE_LAYOUTS.map((l) => JSON.stringify(l)).join(', ')}` },
    ),
    shape: z.array(z.number().int().positive()),
    /** Row-major nested values: [L][T], [L][H] or [L][H][T]. */
    values: z.array(z.array(z.union([Cell, z.array(Cell)], { error: 'expected a finite number or null' }))),
  })
  .superRefine((t, ctx) => {
    const axes = t.axes as readonly ScoreAxis[];
    if (t.shape.length !== axes.length) {
      ctx.addIssue({ code: 'custom', path: ['shape'], message: `is ${JSON.stringify(t.shape)}, expected ${axes.length} positive integers (axes ${JSON.stringify(axes)})` });
      return;
    }
    const walk = (v: unknown, depth: number, path: (string | number)[]): boolean => {
      if (depth === t.shape.length) {
        if (v === null || (typeof v === 'number' && Number.isFinite(v))) return true;
        ctx.addIssue({ code: 'custom', path, message: `is ${Array.isArray(v) ? 'an array' : typeof v}, expected a finite number or null` });
        return false;
      }
      if (!Array.isArray(v)) {
        ctx.addIssue({ code: 'custom', path, message: `is not an array, expected ${t.shape[depth]} entries` });
        return false;
      }
      if (v.length !== t.shape[depth]) {
        ctx.addIssue({ code: 'custom', path, message: `has ${v.length} entries, expected ${t.shape[depth]} (shape [${t.shape.join(', ')}])` });
        return false;
      }
      for (let k = 0; k < v.length; k++) if (!walk(v[k], depth + 1, [...path, k])) return false;
      return true;
    };
    walk(t.values, 0, ['values']);
  });

/**
 * One component's scores for one method: `values` is nested row-major of `shape` ([L][T], [L][H] or
 * [L][H][T] for `axes` [layer, pos], [layer, head] or [layer, head, pos]). The one score type of
 * relp: what the patching methods return (every cell a number) and what run.json holds (a cell may
 * be null where the producer could not compute it).
 *
 * @interface
 */
export type ScoreTensor = z.infer<typeof ScoreTensorSchema>;

/**
 * Flatten a score tensor row-major into plain numbers (so the result also goes into JSON and
 * plots as it is); a null cell (a gap in a file) becomes NaN. Output length = product of `t.shape`.
 */
export function flattenTensor(t: ScoreTensor): number[] {
  return (t.values as unknown[]).flat(t.shape.length).map((v) => (v === null ? NaN : (v as number)));
}
