import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { wasmPeakBytesDuring } from '../../src/backend/wasm-peak.ts';

describe('wasmPeakBytesDuring', () => {
  it('counts the bytes of buffers alive at the peak, once per shared buffer', () => {
    const { result, peakBytes } = wasmPeakBytesDuring(() => {
      const a = tf.zeros([100, 10]); // 4000 bytes
      const b = tf.reshape(a, [1000]); // shares a's buffer
      const c = tf.ones([50]); // 200 bytes
      a.dispose();
      b.dispose();
      c.dispose();
      return 7;
    });
    expect(result).toBe(7);
    expect(peakBytes).toBe(4200);
  });

  it('restores the backend after the call, also when fn throws', () => {
    expect(() => wasmPeakBytesDuring(() => { throw new Error('boom'); })).toThrow('boom');
    const t = tf.ones([3]);
    expect(Array.from(t.dataSync())).toEqual([1, 1, 1]);
    t.dispose();
  });
});
