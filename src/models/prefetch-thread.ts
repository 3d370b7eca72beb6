/**
 * The reading thread of a prefetching checkpoint (prefetch-source.ts): opens the checkpoint
 * itself and answers each requested block number with the block's canonical float32 tensors,
 * transferring their buffers, then raises the shared flag the main thread waits on.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { openStreamedCheckpoint } from './streamed-checkpoint.ts';
import type { PrefetchReply } from './prefetch-source.ts';
import { collectGarbage } from '../io/gc.ts';

const { dir, port, flag } = workerData as { dir: string; port: MessagePort; flag: Int32Array };
const source = await openStreamedCheckpoint(dir);

function reply(r: PrefetchReply, transfer: ArrayBuffer[]): void {
  port.postMessage(r, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

port.on('message', (l: number) => {
  try {
    const sd = source.readBlock(l);
    const tensors: [string, number[], Float32Array][] = [...sd].map(([name, t]) => [name, t.shape, t.data]);
    // Arrays that view a shared buffer are copied once so each buffer is transferred alone.
    const own = tensors.map(([n, s, d]) => [n, s, d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice()] as [string, number[], Float32Array]);
    reply({ l, tensors: own }, [...new Set(own.map(([, , d]) => d.buffer as ArrayBuffer))]);
    collectGarbage(); // the converter's intermediate arrays
  } catch (err) {
    reply({ l, error: err instanceof Error ? err.message : String(err) }, []);
  }
});
port.on('close', () => source.close());
