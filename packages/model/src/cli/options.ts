import { InvalidArgumentError } from 'commander';

export function intOption(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n <= 0 || String(n) !== value.trim()) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function listOption(value: string): number[] {
  return value.split(',').map((v) => intOption(v));
}
