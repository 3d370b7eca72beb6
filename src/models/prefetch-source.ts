/**
 * A streamed checkpoint whose next block is read and converted on a second thread while the
 * current block computes. A streamed pass otherwise alternates reading (positional reads,
 * widening BF16/F16, the converters' transposes: seconds per block on an 8B model) and
 * computing; on two cores the two overlap.
 *
 * The engine's calls stay synchronous: the main thread waits for a block with `Atomics.wait` on a
 * shared flag and takes it with `receiveMessageOnPort`; the block's arrays are transferred, not
 * copied. The caller names the block it reads next (the streamed engine knows its direction of
 * travel and which blocks it keeps), and that one is requested at once. At most one block waits
 * in memory.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { BlockSource } from './block-source.ts';
import type { StateDict } from './state-dict.ts';

/** What the reading thread sends back for one block. */
export interface PrefetchReply {
  l: number;
  /** [name, shape, data] per canonical tensor (data transferred). */
  tensors?: [string, number[], Float32Array][];
  error?: string;
}

/** The thread's entry: compiled next to this file, or (from sources) a tsx-registering shim. */
const ENTRY = import.meta.url.endsWith('.ts') ? new URL('./prefetch-entry.js', import.meta.url) : new URL('./prefetch-thread.js', import.meta.url);

/** How long one wait for the reading thread may take before relp gives up (ms). */
const WAIT_MS = 10 * 60_000;

class PrefetchingSource implements BlockSource {
  readonly config;
  readonly files;
  readonly bytesOnDisk;
  private worker?: Worker;
  private port?: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  /** The block requested and not yet taken. */
  private pending?: number;

  constructor(
    private readonly dir: string,
    private readonly inner: BlockSource,
  ) {
    this.config = inner.config;
    this.files = inner.files;
    this.bytesOnDisk = inner.bytesOnDisk;
  }

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    this.worker = new Worker(ENTRY, { workerData: { dir: this.dir, port: port2, flag: this.flag }, transferList: [port2] });
    this.worker.unref();
    this.port = port1;
    return port1;
  }

  private request(l: number): void {
    Atomics.store(this.flag, 0, 0);
    this.start().postMessage(l);
    this.pending = l;
  }

  /** Wait for the pending block's reply (synchronously). */
  private take(): PrefetchReply {
    const t0 = Date.now();
    for (;;) {
      const got = receiveMessageOnPort(this.port!);
      if (got) {
        this.pending = undefined;
        return got.message as PrefetchReply;
      }
      if (Date.now() - t0 > WAIT_MS) throw new Error(`reading block ${this.pending} of ${this.dir} took over ${WAIT_MS / 60_000} minutes`);
      Atomics.wait(this.flag, 0, 0, 1000);
    }
  }

  readBlock(l: number, next?: number): StateDict {
    if (this.pending !== undefined && this.pending !== l) this.take(); // named as next, then not asked for: drop it
    if (this.pending === undefined) this.request(l);
    const reply = this.take();
    if (reply.error !== undefined) throw new Error(reply.error);
    if (reply.l !== l) throw new Error(`internal: asked for block ${l}, the reading thread sent ${reply.l}`);
    if (next !== undefined && next >= 0 && next < this.config.nLayers) this.request(next);
    return new Map(reply.tensors!.map(([name, shape, data]) => [name, { shape, data }]));
  }

  readGlobals(): StateDict {
    return this.inner.readGlobals();
  }

  readEmbeddingRows(ids: readonly number[]): Float32Array {
    return this.inner.readEmbeddingRows(ids);
  }

  readUnembedRows(v0: number, v1: number): Float32Array {
    return this.inner.readUnembedRows(v0, v1);
  }

  hash(): string {
    return this.inner.hash();
  }

  close(): void {
    this.port?.close();
    void this.worker?.terminate();
    this.worker = undefined;
    this.port = undefined;
    this.pending = undefined;
    this.inner.close();
  }
}

/**
 * Wrap `inner` (an open streamed checkpoint of folder `dir`) so blocks are read on a second thread,
 * one block ahead of the engine. Everything but blocks is read by `inner` in this thread.
 */
export function prefetchingSource(dir: string, inner: BlockSource): BlockSource {
  return new PrefetchingSource(dir, inner);
}
