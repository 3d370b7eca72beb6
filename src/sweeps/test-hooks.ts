/**
 * Fault injection for the fault tests, off unless their environment variables are set:
 * - RELP_TEST_SHARD_DELAY_MS: block each shard this long before computing (so a kill lands mid-shard);
 * - RELP_TEST_CRASH_ONCE=FILE: the first shard to see FILE missing creates it and ends its thread
 *   (a crashed worker), once per FILE.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

/** Apply the fault hooks at the start of shard `key`. */
export function testHooks(key: string): void {
  const delay = Number(process.env.RELP_TEST_SHARD_DELAY_MS ?? 0);
  if (delay > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
  const crash = process.env.RELP_TEST_CRASH_ONCE;
  if (crash && threadId !== 0 && !existsSync(crash)) {
    writeFileSync(crash, key);
    process.exit(3); // in a worker thread this ends the thread only
  }
}
