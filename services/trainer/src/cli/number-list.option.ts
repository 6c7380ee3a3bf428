import { InvalidArgumentError } from 'commander';

/** A commander parser for one number; the API checks its range. */
export function decimal(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number, e.g. 0.9');
  return n;
}

/** A commander parser for numbers separated by commas, e.g. `-5,5`; the API checks their range. */
export function numberList(value: string): number[] {
  try {
    return value.split(',').map(decimal);
  } catch {
    throw new InvalidArgumentError('expected numbers separated by commas, e.g. -5,5');
  }
}
