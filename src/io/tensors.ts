/**
 * Framework-free tensors: what checkpoint readers return and writers take.
 */

/** A dense float32 array with its shape (row-major). */
export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

/** Tensors keyed by name. */
export type StateDict = Map<string, NamedArray>;
