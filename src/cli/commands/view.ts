/**
 * `relp view [RUNS_DIR] [--port P] [--host H]`: serve the local, read-only viewer over a runs
 * directory. Prints the URL (only) to stdout; notes go to stderr. Runs until interrupted.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { isLoopback, startViewer, type RunningViewer } from '../../viz/server.ts';

/** Default port of the CLI (the library's `startViewer` defaults to 0, a free port). */
export const DEFAULT_VIEW_PORT = 7878;

/** Parse a --port value: an integer 0–65535. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError(`expected an integer 0–65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Options of the `view` command after parsing. */
export interface ViewOptions {
  port: number;
  host: string;
  /** Print `{"url": ...}` instead of the bare URL. */
  json?: boolean;
}

/**
 * Start the viewer for the CLI and print its URL. Resolves once listening; the returned handle
 * closes it (the CLI itself closes on SIGINT/SIGTERM).
 */
export async function runView(runsDir: string, opts: ViewOptions, out: NodeJS.WritableStream = process.stdout): Promise<RunningViewer> {
  if (!isLoopback(opts.host)) {
    process.stderr.write(`relp view: warning: binding ${opts.host} makes your runs readable by other machines on the network\n`);
  }
  const viewer = await startViewer({ runsDir, port: opts.port, host: opts.host });
  out.write(opts.json ? `${JSON.stringify({ url: viewer.url, runsDir })}\n` : `${viewer.url}\n`);
  process.stderr.write(`relp view: serving ${runsDir} (read-only); press Ctrl+C to stop\n`);
  return viewer;
}

/** Register `view` on the program. */
export function register(program: Command): void {
  program
    .command('view')
    .description('Serve the local viewer (heatmaps, correlations, circuits) for a runs directory')
    .argument('[RUNS_DIR]', 'directory holding <run-id>/run.json (and circuit.json, faithfulness.json)', 'runs')
    .option('-p, --port <port>', `TCP port (0 = any free port)`, parsePort, DEFAULT_VIEW_PORT)
    .option('--host <host>', 'interface to bind (default loopback only)', '127.0.0.1')
    .option('--json', 'print one JSON object {"url", "runsDir"} instead of the URL', false)
    .action(async (runsDir: string, opts: ViewOptions) => {
      const viewer = await runView(runsDir, opts);
      const stop = () => {
        void viewer.close().finally(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Keep the command pending while the server runs, so the CLI does not exit.
      await new Promise<void>(() => {});
    });
}
