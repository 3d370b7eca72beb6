#!/usr/bin/env node
// Launcher: runs the compiled CLI in dist/ (built by `npm install`/`npm ci` through `prepare`,
// or `npm run build`); no TypeScript loader at run time.
import { readFileSync } from 'node:fs';

// `relp --help` prints the text the build rendered from the same program (dist/cli/help.txt, 80
// columns), without loading the command modules and TensorFlow.js behind them. A terminal
// narrower than that gets the live, re-wrapped help.
const args = process.argv.slice(2);
const narrow = process.stdout.isTTY && process.stdout.columns < 80;
if (args.length === 1 && ['--help', '-h', 'help'].includes(args[0]) && !narrow) {
  let text;
  try {
    text = readFileSync(new URL('../dist/cli/help.txt', import.meta.url), 'utf8');
  } catch {
    // not cached (or not built): fall through to the CLI
  }
  if (text !== undefined) {
    process.stdout.write(text);
    process.exit(0);
  }
}

let main;
try {
  ({ main } = await import('../dist/cli/main.js'));
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    // The CLI's one error format (src/cli/errors.ts), written here because the CLI cannot load.
    process.stderr.write('relp: error: dist/ is not built\nrelp: hint: run `npm run build` (npm install does it through `prepare`)\n');
    process.exit(1);
  }
  throw err;
}
await main(process.argv);
