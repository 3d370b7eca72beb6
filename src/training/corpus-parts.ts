/**
 * Building blocks of the toy training corpus (see REFERENCE §6).
 *
 * IOI-like training sentences are composed from parts (opener × name clause verb phrase ×
 * connector × ending) instead of a few fixed templates, because fixed templates let a small
 * model learn shortcuts that break on new sentence structures. The Wang-style evaluation
 * templates in src/tasks/ioi-templates.ts are excluded from the compositions (see corpus.ts),
 * but their words are covered by the parts so no evaluation word has an untrained embedding.
 *
 * Placeholders: `[PLACE]` and `[OBJECT]` (same value each time within one sentence).
 */

/** Sentence openers before "X and Y ...", e.g. "Then," (empty string = no opener). */
export const OPENERS: readonly string[] = [
  '',
  'Then,',
  'Later,',
  'Afterwards,',
  'Yesterday,',
  'Today,',
  'One day,',
  'This morning,',
  'In the evening,',
  'After the lunch,',
  'After dinner,',
  'Later that day,',
  'On Sunday,',
  'Last week,',
  'At noon,',
  'Friends',
  'Neighbors',
];

/** Subordinating openers: "When X and Y went to the store, Y gave ...". */
export const SUBORDINATORS: readonly string[] = ['When', 'While', 'After', 'Before', 'Once', 'As soon as'];

/** What the two (or three) people did together; may mention the place or an object. */
export const VERB_PHRASES: readonly string[] = [
  'went to the [PLACE]',
  'walked to the [PLACE]',
  'drove to the [PLACE]',
  'ran to the [PLACE]',
  'were at the [PLACE]',
  'met at the [PLACE]',
  'arrived at the [PLACE]',
  'were working at the [PLACE]',
  'were commuting to the [PLACE]',
  'were thinking about going to the [PLACE]',
  'had a lot of fun at the [PLACE]',
  'spent the day at the [PLACE]',
  'were sitting in the [PLACE]',
  'stayed at the [PLACE]',
  'visited the [PLACE]',
  'cleaned the [PLACE]',
  'got a [OBJECT] at the [PLACE]',
  'found a [OBJECT] at the [PLACE]',
  'bought a [OBJECT] at the [PLACE]',
  'had a long argument',
  'had lunch together',
  'had a long talk',
  'were playing at the [PLACE]',
];

/** How the second clause attaches to the first in main-clause sentences. */
export const CONNECTORS: readonly string[] = ['.', '. Then', '. Afterwards', '. Later,', ', and', ', and then', ', and afterwards'];

/** What the subject did to the answer; the answer name follows directly. */
export const ENDINGS: readonly string[] = [
  'gave a [OBJECT] to',
  'gave the [OBJECT] to',
  'gave it to',
  'handed a [OBJECT] to',
  'handed the [OBJECT] to',
  'passed a [OBJECT] to',
  'passed the [OBJECT] to',
  'threw the [OBJECT] to',
  'sent a [OBJECT] to',
  'showed the [OBJECT] to',
  'brought a [OBJECT] to',
  'offered a [OBJECT] to',
  'sold the [OBJECT] to',
  'lent a [OBJECT] to',
  'returned the [OBJECT] to',
  'decided to give a [OBJECT] to',
  'decided to give it to',
  'decided to give the [OBJECT] to',
  'wanted to give a [OBJECT] to',
  'wanted to give the [OBJECT] to',
  'said to',
  'said goodbye to',
  'talked to',
  'waved to',
];

/** Foods for per-name facts ("Mary likes pizza."). */
export const FOODS: readonly string[] = [
  'pizza', 'pasta', 'soup', 'rice', 'bread', 'cheese', 'apples', 'bananas', 'chocolate', 'fish', 'salad', 'cookies',
];

/** Cities for per-name facts ("Mary lives in Paris."). */
export const CITIES: readonly string[] = [
  'Paris', 'London', 'Berlin', 'Rome', 'Madrid', 'Tokyo', 'Boston', 'Chicago', 'Dublin', 'Vienna', 'Oslo', 'Lisbon',
];

/** Name-free sentences put in front of half of the sequences so that positions vary. */
export const FILLERS: readonly string[] = [
  'It was a sunny day.',
  'The weather was cold.',
  'Everyone was happy.',
  'It rained all morning.',
  'The town was quiet.',
  'Nobody was at home.',
  'The sky was grey.',
  'It was late.',
  'The day was long.',
  'Music was playing.',
  'It was a busy week.',
  'The wind was strong.',
];
