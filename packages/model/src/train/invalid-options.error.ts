/**
 * Thrown when options, or a combination of them, cannot make a run (or a manifest). They are
 * refused before any work is done, and would be refused again: a caller should not retry them.
 */
export class InvalidOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOptionsError';
  }
}
