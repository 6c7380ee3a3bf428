import { InvalidArgumentError } from 'commander';
import { DEFAULT_AUGMENTATION, type AugmentationConfig } from '../train/augmentation.js';

export function intOption(value: string): number {
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n <= 0 || String(n) !== value.trim()) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function listOption(value: string): number[] {
  return value.split(',').map((v) => intOption(v));
}

export function fractionOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a number from 0 up to (not including) 1');
  return n;
}

export function nonNegativeOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

/** `rotateDeg=20,scale=0.15,flip=false`: changes to the default augmentation, key by key. */
export function augmentationOption(value: string): Partial<AugmentationConfig> {
  const config: Record<string, number | boolean> = {};
  for (const pair of value.split(',')) {
    const [key = '', raw = ''] = pair.split('=').map((s) => s.trim());
    const current = (DEFAULT_AUGMENTATION as unknown as Record<string, number | boolean>)[key];
    if (current === undefined) throw new InvalidArgumentError(`unknown augmentation "${key}"; known: ${Object.keys(DEFAULT_AUGMENTATION).join(', ')}`);
    if (typeof current === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new InvalidArgumentError(`${key} must be true or false`);
      config[key] = raw === 'true';
    } else {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${key} must be a number ≥ 0, not "${raw}"`);
      config[key] = n;
    }
  }
  return config as Partial<AugmentationConfig>;
}
