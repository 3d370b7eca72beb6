/**
 * Word lists for the IOI task (Wang et al. 2022 style prompts).
 *
 * Plain words without a leading space. Every name here was checked to be a single GPT-2
 * token when preceded by a space (" Mary" -> [5335]); the same holds for the places and
 * objects. Generators still filter at run time against the actual tokenizer, so a custom
 * tokenizer with a smaller vocabulary just gets a shorter list.
 */

/** 100 common English first names (50 + 50), each a single GPT-2 token as " Name". */
export const NAMES: readonly string[] = [
  'Mary', 'John', 'James', 'Robert', 'Michael', 'William', 'David', 'Richard', 'Joseph', 'Thomas',
  'Charles', 'Christopher', 'Daniel', 'Matthew', 'Anthony', 'Mark', 'Paul', 'Steven', 'Andrew', 'Kevin',
  'Brian', 'George', 'Edward', 'Timothy', 'Jason', 'Ryan', 'Jacob', 'Gary', 'Eric', 'Jonathan',
  'Stephen', 'Justin', 'Scott', 'Samuel', 'Frank', 'Patrick', 'Jack', 'Tyler', 'Aaron', 'Adam',
  'Henry', 'Nathan', 'Peter', 'Kyle', 'Sean', 'Arthur', 'Jesse', 'Bruce', 'Albert', 'Alan',
  'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Nancy',
  'Lisa', 'Betty', 'Margaret', 'Sandra', 'Ashley', 'Emily', 'Michelle', 'Carol', 'Amanda', 'Melissa',
  'Stephanie', 'Rebecca', 'Laura', 'Amy', 'Angela', 'Helen', 'Anna', 'Nicole', 'Emma', 'Samantha',
  'Katherine', 'Christine', 'Rachel', 'Catherine', 'Ruth', 'Maria', 'Heather', 'Julie', 'Victoria', 'Olivia',
  'Kelly', 'Lauren', 'Megan', 'Andrea', 'Hannah', 'Alice', 'Julia', 'Grace', 'Rose', 'Sophia',
];

/** 20 places ("went to the [PLACE]"), each a single GPT-2 token as " place". */
export const PLACES: readonly string[] = [
  'store', 'garden', 'restaurant', 'school', 'hospital', 'office', 'station', 'park', 'house', 'market',
  'library', 'church', 'beach', 'museum', 'bank', 'hotel', 'airport', 'theater', 'farm', 'river',
];

/** 20 objects ("gave a [OBJECT] to"), each a single GPT-2 token as " object". */
export const OBJECTS: readonly string[] = [
  'drink', 'book', 'ring', 'kiss', 'bone', 'basketball', 'computer', 'necklace', 'snack', 'letter',
  'gift', 'flower', 'key', 'ball', 'bag', 'bottle', 'hat', 'cake', 'ticket', 'candle',
];
