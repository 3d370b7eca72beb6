// Worker-thread entry of the local pool (plain JS so Node can start it without a loader):
// registers tsx in this thread, then loads the TypeScript handler. Works under `node bin/relp.js`
// and under vitest alike, since neither passes its loader to new threads.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./shard-thread.ts');
export default mod.default;
