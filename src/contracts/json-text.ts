/**
 * JSON.parse with an error that names the file, line and column, so a corrupt or half-written
 * run file gets a message a person can act on. V8's own messages do not always carry a position,
 * so on failure a small scanner finds where the syntax first goes wrong.
 */
import { ContractError } from './errors.ts';

/** 1-based line and column of a character offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/**
 * Offset of the first JSON syntax error in `text` (`text.length` when the text ends early),
 * or -1 when `text` is valid JSON. Only used after JSON.parse has failed.
 */
export function findJsonErrorOffset(text: string): number {
  let i = 0;
  class Stop {
    constructor(readonly at: number) {}
  }
  const fail = (at: number): never => {
    throw new Stop(at);
  };
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++, i++) if (text[i] !== word[k]) fail(i);
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail(i);
      const c = text.charCodeAt(i);
      if (c === 34) return void i++;
      if (c < 32) fail(i);
      if (c === 92) {
        i++;
        if (i >= text.length) fail(i);
        const e = text[i]!;
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) fail(i + k);
          i += 5;
        } else if ('"\\/bfnrt'.includes(e)) i++;
        else fail(i);
      } else i++;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (!m || m[0] === '-' || m[0] === '') fail(i);
    i += m![0].length;
    // A number cut short at its end (`1.`, `2e`) is a truncation, not a bad character.
    if (i === text.length - 1 && '.eE'.includes(text[i]!)) fail(text.length);
  };
  const value = (): void => {
    ws();
    if (i >= text.length) fail(i);
    const c = text[i]!;
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i);
        str();
        ws();
        if (text[i] !== ':') fail(i);
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail(i);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail(i);
      }
    } else if (c === '"') str();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c >= '0' && c <= '9')) num();
    else fail(i);
  };
  try {
    value();
    ws();
    return i < text.length ? i : -1;
  } catch (e) {
    if (e instanceof Stop) return Math.min(e.at, text.length);
    return -2; // too deeply nested to scan
  }
}

/**
 * Parse `text` as JSON.
 * @throws ContractError naming `fileLabel`, the line/column of the syntax error, and whether the
 *   file looks truncated (a partial write).
 */
export function parseJsonText(text: string, fileLabel: string): unknown {
  if (text.trim() === '') throw new ContractError(fileLabel, null, 'is empty (a partial write?)');
  try {
    return JSON.parse(text);
  } catch (err) {
    const off = findJsonErrorOffset(text);
    if (off < 0) throw new ContractError(fileLabel, null, `is not valid JSON: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`);
    const { line, column } = lineColumn(text, off);
    if (off >= text.length) {
      throw new ContractError(fileLabel, null, `is not valid JSON: it ends early at line ${line}, column ${column} (truncated or partially written?)`);
    }
    const ch = JSON.stringify(text[off]);
    throw new ContractError(fileLabel, null, `is not valid JSON: unexpected ${ch} at line ${line}, column ${column}`);
  }
}
