/**
 * IOI prompt templates in the style of Wang et al. 2022 (arXiv 2211.00593).
 *
 * Templates are plain data. Placeholders:
 * - `[A]`: the indirect object (IO), i.e. the answer;
 * - `[B]`: the subject (S), mentioned twice (S1 and S2);
 * - `[PLACE]`, `[OBJECT]`: filled from the place/object lists (may repeat; same value each time).
 *
 * A template is the prompt up to, not including, the answer: the answer is always the next token
 * " [A]" after the prompt. Every name placeholder is preceded by a space, so a name fills in as
 * the single token " Name".
 *
 * The list below is written in BABA order (S1, IO, S2); the ABBA mirrors (IO, S1, S2) come from
 * {@link mirrorTemplate}, which swaps the first two name mentions.
 */

/** Name-mention order of an IOI template: BABA = S IO S, ABBA = IO S S. */
export type IoiOrder = 'BABA' | 'ABBA';

/** A template with its name order. */
export interface IoiTemplate {
  text: string;
  order: IoiOrder;
}

/** BABA templates (S1 = [B], IO = [A], S2 = [B]); the answer is " [A]". */
export const BABA_TEMPLATES: readonly string[] = [
  'Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to',
  'Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to',
  'Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to',
  'Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to',
  'Then, [B] and [A] had a long argument, and afterwards [B] said to',
  'After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to',
  'When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to',
  'When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to',
  'While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to',
  'While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to',
  'After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to',
  'Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to',
  'Then, [B] and [A] had a long argument. Afterwards [B] said to',
  'The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to',
  'Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to',
  'Yesterday, [B] and [A] walked to the [PLACE]. [B] handed a [OBJECT] to',
  'Later that day, [B] and [A] met at the [PLACE]. [B] passed a [OBJECT] to',
  'On Sunday, [B] and [A] visited the [PLACE], and [B] brought a [OBJECT] to',
];

const NAME_RE = /\[(A|B)\]/g;
const ALLOWED_RE = /\[(A|B|PLACE|OBJECT)\]/g;

/**
 * Checks that `text` is a valid IOI template of the given order and throws a specific error if not:
 * exactly three name mentions in the order of `order` (BABA: B A B, ABBA: A B B), each preceded by a
 * space, no unknown placeholders, and no trailing space (the answer token carries its own space).
 */
export function validateTemplate(text: string, order: IoiOrder = 'BABA'): void {
  const names = [...text.matchAll(NAME_RE)];
  const seq = names.map((m) => m[1]).join('');
  const want = order === 'BABA' ? 'BAB' : 'ABB';
  if (seq !== want) {
    throw new Error(
      `IOI template ${JSON.stringify(text)}: name mentions are [${names.map((m) => m[1]).join('],[')}] ` +
        `but a ${order} template needs ${want.split('').map((c) => `[${c}]`).join(',')}`,
    );
  }
  for (const m of names) {
    if (m.index === undefined || m.index === 0 || text[m.index - 1] !== ' ') {
      throw new Error(
        `IOI template ${JSON.stringify(text)}: [${m[1]}] at offset ${m.index} must be preceded by a space ` +
          `(names are filled in as single tokens " Name")`,
      );
    }
  }
  const stripped = text.replace(ALLOWED_RE, '');
  const unknown = stripped.match(/\[[^\]]*\]/);
  if (unknown) {
    throw new Error(`IOI template ${JSON.stringify(text)}: unknown placeholder ${unknown[0]}`);
  }
  if (/\s$/.test(text)) {
    throw new Error(`IOI template ${JSON.stringify(text)}: must not end with whitespace (the answer token carries its leading space)`);
  }
}

/**
 * ABBA mirror of a BABA template: swaps the first two name mentions ("Then, [B] and [A] ..." ->
 * "Then, [A] and [B] ..."). The S2 mention and the answer are unchanged.
 */
export function mirrorTemplate(baba: string): string {
  validateTemplate(baba, 'BABA');
  let k = 0;
  return baba.replace(NAME_RE, (m, who: string) => {
    k++;
    if (k > 2) return m;
    return who === 'A' ? '[B]' : '[A]';
  });
}

/** BABA templates and their ABBA mirrors, alternating (BABA_0, ABBA_0, BABA_1, ...). */
export function ioiTemplates(baba: readonly string[] = BABA_TEMPLATES): IoiTemplate[] {
  const out: IoiTemplate[] = [];
  for (const t of baba) {
    validateTemplate(t, 'BABA');
    out.push({ text: t, order: 'BABA' }, { text: mirrorTemplate(t), order: 'ABBA' });
  }
  return out;
}

/** Values substituted into a template. */
export interface IoiFill {
  /** Indirect object name (plain word, no leading space). */
  io: string;
  /** Subject name for S1. */
  s1: string;
  /** Subject name for S2 (equals s1 in a clean prompt; a third name C in the ABC corruption). */
  s2: string;
  place: string;
  object: string;
}

/** Substitutes `fill` into `template` (which must already be validated). */
export function fillTemplate(template: string, fill: IoiFill): string {
  let bSeen = 0;
  return template.replace(/\[(A|B|PLACE|OBJECT)\]/g, (_m, key: string) => {
    switch (key) {
      case 'A':
        return fill.io;
      case 'B':
        bSeen++;
        return bSeen === 1 ? fill.s1 : fill.s2;
      case 'PLACE':
        return fill.place;
      default:
        return fill.object;
    }
  });
}
