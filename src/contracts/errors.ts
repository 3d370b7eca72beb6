/**
 * The one error the file contracts throw: it names the file, the field (a JSON path such as
 * `scores["atp*"].z.values[0][2]`, or `null` for the file as a whole) and the problem, so a
 * person can act on it without a stack trace.
 */
export class ContractError extends Error {
  /** Label of the file, e.g. `runs/ioi-16/run.json`. */
  readonly file: string;
  /** JSON path of the offending value, or null for the whole file (unreadable, not JSON, wrong version). */
  readonly field: string | null;
  /** What is wrong, e.g. `is a string, expected a number`. */
  readonly problem: string;

  constructor(file: string, field: string | null, problem: string) {
    super(field === null ? `${file} ${problem}` : `${file}: ${field} ${problem}`);
    this.name = 'ContractError';
    this.file = file;
    this.field = field;
    this.problem = problem;
  }
}
