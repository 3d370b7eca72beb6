/**
 * The prefetching checkpoint (blocks read one ahead on a second thread) serves exactly what the
 * plain streamed checkpoint serves, in forward order, backward order and out of order; errors
 * from the reading thread arrive as one-line errors; closing stops the thread.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStreamedCheckpoint } from '../../src/models/streamed-checkpoint.ts';
import { prefetchingSource } from '../../src/models/prefetch-source.ts';
import { writeHFCheckpoint } from '../helpers/hf-checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-prefetch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prefetchingSource', () => {
  it('serves the same blocks as the plain reader in any order, and relays errors', async () => {
    writeHFCheckpoint(dir, { modelType: 'llama', seed: 3, nLayers: 4, nHeads: 4, nKvHeads: 2 });
    const plain = await openStreamedCheckpoint(dir);
    const pre = prefetchingSource(dir, await openStreamedCheckpoint(dir));
    try {
      for (const l of [0, 1, 2, 3, 3, 2, 1, 0, 2, 0, 3]) {
        const a = plain.readBlock(l);
        const b = pre.readBlock(l);
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const [n, t] of a) {
          expect(b.get(n)!.shape, n).toEqual(t.shape);
          expect(Buffer.from(b.get(n)!.data.buffer, b.get(n)!.data.byteOffset, b.get(n)!.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${n} of block ${l}`).toBe(true);
        }
      }
      expect(() => pre.readBlock(9)).toThrow(/block 9/);
      expect(pre.readBlock(1).size).toBe(plain.readBlock(1).size); // still usable after an error
      expect(pre.hash()).toBe(plain.hash());
    } finally {
      plain.close();
      pre.close();
    }
  });
});
