// Every test file starts on the backend relp would pick (wasm here), or RELP_BACKEND.
import { initBackend } from '../src/backend.ts';

await initBackend();
