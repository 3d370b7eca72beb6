import { describe, expect, it } from 'vitest';
import { DIVERGING_STOPS, divergingRgb, edgeColor, hexToRgb } from '../../../src/viz/pages/shared/colors.js';
import { fmt, formatBytes, formatDate, plotlyText } from '../../../src/viz/pages/shared/format.js';

describe('colours', () => {
  it('centres the diverging scale on the middle stop at 0, blue below, red above', () => {
    expect(divergingRgb(0)).toEqual(hexToRgb(DIVERGING_STOPS[3]!));
    expect(divergingRgb(-1)).toEqual([0x21, 0x66, 0xac]);
    expect(divergingRgb(1)).toEqual([0xb2, 0x18, 0x2b]);
    expect(divergingRgb(5)).toEqual(divergingRgb(1));
    const [r, , b] = divergingRgb(0.5);
    expect(r).toBeGreaterThan(b);
    expect(edgeColor(-1, 1, 0.5)).toBe('rgba(33,102,172,0.5)');
  });
});

describe('formatting', () => {
  it('formats numbers, sizes and dates', () => {
    expect(fmt(0.123456)).toBe('0.1235');
    expect(fmt(1.5e-7)).toBe('1.50e-7');
    expect(fmt(null)).toBe('–');
    expect(fmt(NaN)).toBe('–');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4.5 * 1024 * 1024)).toBe('4.5 MB');
    expect(formatDate('2025-03-01T10:05:00.000Z')).toBe('2025-03-01 10:05');
    expect(formatDate('garbage')).toBe('–');
    expect(plotlyText('<br>&')).toBe('&lt;br&gt;&amp;');
  });
});
