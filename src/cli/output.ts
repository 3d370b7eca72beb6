/**
 * Terminal output rules shared by every command: colour only when the stream is a terminal and
 * `NO_COLOR` is not set (https://no-color.org), and a human summary unless `--json` asks for
 * one machine-readable JSON object.
 */

/** True when ANSI colours may be written to `stream`. */
export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** Remove ANSI escape sequences (for text that must not carry colour). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** Print a number with fixed decimals, or `–` when it is not a finite number. */
export function num(x: number | null | undefined, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}
