// Worker-thread entry of the local pool (plain JS so Node can start it without a loader).
// From the build (dist/), the compiled handler sits next to this file. From the sources (vitest,
// dev scripts), tsx is registered in this thread first: neither passes its loader to new threads.
import { existsSync } from 'node:fs';

const compiled = new URL('./shard-thread.js', import.meta.url);
let mod;
if (existsSync(compiled)) {
  mod = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('./shard-thread.ts');
}
export default mod.default;
