// Entry of the prefetching reader thread when relp runs from its TypeScript sources (tsx,
// vitest): registers tsx in this thread, then loads the reader. The compiled build starts
// prefetch-thread.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./prefetch-thread.ts');
