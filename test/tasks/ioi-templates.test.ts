import { describe, expect, it } from 'vitest';
import {
  BABA_TEMPLATES,
  fillTemplate,
  ioiTemplates,
  mirrorTemplate,
  validateTemplate,
} from '../../src/tasks/ioi-templates.ts';

describe('ioi templates', () => {
  it('has at least 15 BABA templates, all valid', () => {
    expect(BABA_TEMPLATES.length).toBeGreaterThanOrEqual(15);
    expect(new Set(BABA_TEMPLATES).size).toBe(BABA_TEMPLATES.length);
    for (const t of BABA_TEMPLATES) expect(() => validateTemplate(t, 'BABA')).not.toThrow();
  });

  it('mirrors swap the first two name mentions only', () => {
    expect(mirrorTemplate('Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to')).toBe(
      'Then, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to',
    );
    expect(mirrorTemplate('The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to')).toBe(
      'The [PLACE] [A] and [B] went to had a [OBJECT]. [B] gave it to',
    );
    for (const t of BABA_TEMPLATES) expect(() => validateTemplate(mirrorTemplate(t), 'ABBA')).not.toThrow();
  });

  it('ioiTemplates alternates BABA and ABBA', () => {
    const all = ioiTemplates();
    expect(all).toHaveLength(2 * BABA_TEMPLATES.length);
    all.forEach((t, i) => expect(t.order).toBe(i % 2 === 0 ? 'BABA' : 'ABBA'));
  });

  it('fills S1/S2 from the [B] mentions in order, IO from [A], places/objects everywhere', () => {
    const t = 'When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to';
    expect(fillTemplate(t, { io: 'Mary', s1: 'John', s2: 'Paul', place: 'store', object: 'ring' })).toBe(
      'When John and Mary got a ring at the store, Paul decided to give the ring to',
    );
    expect(fillTemplate(mirrorTemplate(t), { io: 'Mary', s1: 'John', s2: 'Paul', place: 'store', object: 'ring' })).toBe(
      'When Mary and John got a ring at the store, Paul decided to give the ring to',
    );
  });

  it('rejects malformed templates with specific messages', () => {
    expect(() => validateTemplate('Then, [B] and [A] went. [A] gave it to')).toThrow(/name mentions are \[B\],\[A\],\[A\]/);
    expect(() => validateTemplate('[B] and [A] went. [B] gave it to')).toThrow(/\[B\] at offset 0 must be preceded by a space/);
    expect(() => validateTemplate('Then, [B] and [A] went to the [CITY]. [B] gave it to')).toThrow(/unknown placeholder \[CITY\]/);
    expect(() => validateTemplate('Then, [B] and [A] went. [B] gave it to ')).toThrow(/must not end with whitespace/);
    expect(() => validateTemplate('Then, [B] and [A] went. [B] gave it to', 'ABBA')).toThrow(/ABBA template needs \[A\],\[B\],\[B\]/);
  });
});
