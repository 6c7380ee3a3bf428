import { InvalidArgumentError } from 'commander';

/** A commander parser for a whole number in `[min, max]`, the range the API accepts for the option. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (!Number.isSafeInteger(n) || n < min || n > max || value.trim() === '') {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}
