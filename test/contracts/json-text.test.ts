import { describe, expect, it } from 'vitest';
import { findJsonErrorOffset, lineColumn, parseJsonText } from '../../src/contracts/json-text.ts';
import { ContractError } from '../../src/contracts/errors.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

describe('lineColumn', () => {
  it('counts lines and columns from 1', () => {
    const text = 'ab\ncde\n\nf';
    expect(lineColumn(text, 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn(text, 4)).toEqual({ line: 2, column: 2 }); // 'd'
    expect(lineColumn(text, 8)).toEqual({ line: 4, column: 1 }); // 'f'
  });
});

describe('findJsonErrorOffset', () => {
  it('agrees with JSON.parse on whether random mutations of valid JSON are valid', () => {
    const base = JSON.stringify({ a: [1, -2.5e-3, true, null, 'x\\"y\u00e9'], b: { c: 'd', e: [] }, f: 0 }, null, 1);
    const rand = mulberry32(3);
    const alphabet = '{}[]",:0123456789-+.eEtrufalsn \n\\x';
    let invalid = 0;
    for (let trial = 0; trial < 600; trial++) {
      const chars = base.split('');
      const edits = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rand() * chars.length);
        const op = rand();
        if (op < 0.33) chars.splice(at, 1);
        else if (op < 0.66) chars.splice(at, 0, alphabet[Math.floor(rand() * alphabet.length)]!);
        else chars[at] = alphabet[Math.floor(rand() * alphabet.length)]!;
      }
      const text = chars.join('');
      let ok = true;
      try {
        JSON.parse(text);
      } catch {
        ok = false;
        invalid++;
      }
      const off = findJsonErrorOffset(text);
      expect(off === -1, `${JSON.stringify(text)} -> ${off}`).toBe(ok);
    }
    expect(invalid).toBeGreaterThan(100);
  });

  it('points at the offending character', () => {
    expect(findJsonErrorOffset('{"a": 1,\n "b": tru}')).toBe(18);
    expect(findJsonErrorOffset('[1, 2')).toBe(5);
  });
});

describe('parseJsonText', () => {
  it('returns the parsed value for valid JSON', () => {
    expect(parseJsonText('{"x": [1, 2]}', 'f.json')).toEqual({ x: [1, 2] });
  });

  it('names the file, line and column of a syntax error', () => {
    const err = catchErr(() => parseJsonText('{\n  "a": 1,\n  "b": }\n', 'runs/x/run.json'));
    expect(err).toBeInstanceOf(ContractError);
    expect(err.field).toBeNull();
    expect(err.message).toBe('runs/x/run.json is not valid JSON: unexpected "}" at line 3, column 8');
  });

  it('says a truncated file ends early (a partial write)', () => {
    const err = catchErr(() => parseJsonText('{"scores": {"relp": [1, 2', 'r.json'));
    expect(err.message).toMatch(/^r\.json is not valid JSON: it ends early at line 1, column 26 \(truncated or partially written\?\)$/);
  });

  it('reports an empty file', () => {
    expect(catchErr(() => parseJsonText('  \n', 'r.json')).message).toMatch(/r\.json is empty/);
  });
});

function catchErr(f: () => unknown): ContractError {
  try {
    f();
  } catch (e) {
    return e as ContractError;
  }
  throw new Error('expected an error');
}
