/**
 * Garbage collection on demand, for code that frees large typed arrays in bursts.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | undefined | null;

/**
 * Run V8's garbage collector now, when it can be had (it is not exposed by default: the flag is
 * set at run time and the function taken from a fresh context). Streamed models call it after
 * each large block: a block's float32 arrays are garbage once uploaded, and V8 would otherwise let
 * several blocks' worth (0.9 GB each on an 8B model) pile up before collecting.
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}
