/**
 * Tests run the real `bin/relp.js`, which runs the compiled dist/: rebuild it first when any
 * source is newer than the last build (dist/.build-stamp), so no test runs a stale CLI.
 */
import { ensureFreshDist } from '../scripts/fresh-dist.ts';

export { distIsStale } from '../scripts/fresh-dist.ts';

export default function setup(): void {
  ensureFreshDist();
}
