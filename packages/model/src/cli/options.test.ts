import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { augmentationOption, fractionOption, nonNegativeOption, positiveOption } from './options.js';

describe('augmentationOption', () => {
  it('reads numbers and booleans key by key', () => {
    expect(augmentationOption('rotateDeg=20, scale=0.15,flip=false')).toEqual({ rotateDeg: 20, scale: 0.15, flip: false });
    expect(augmentationOption('gamma=0.3,sharpen=0.5,noise=0.02')).toEqual({ gamma: 0.3, sharpen: 0.5, noise: 0.02 });
  });

  it('names the known keys when one is unknown', () => {
    expect(() => augmentationOption('rotation=20')).toThrow(/unknown augmentation "rotation"; known: flip, rotateDeg/);
  });

  it('refuses values of the wrong kind', () => {
    expect(() => augmentationOption('flip=1')).toThrow(InvalidArgumentError);
    expect(() => augmentationOption('shift=-0.1')).toThrow(/shift must be a number/);
    expect(() => augmentationOption('shift=')).toThrow(/shift must be a number/);
  });
});

describe('fractionOption', () => {
  it('accepts 0 up to 1 exclusive', () => {
    expect(fractionOption('0.4')).toBe(0.4);
    expect(fractionOption('0')).toBe(0);
    expect(() => fractionOption('1')).toThrow(InvalidArgumentError);
    expect(() => fractionOption('x')).toThrow(InvalidArgumentError);
  });
});

describe('nonNegativeOption', () => {
  it('accepts 0 and positive numbers, nothing else', () => {
    expect(nonNegativeOption('0.2')).toBe(0.2);
    expect(nonNegativeOption('0')).toBe(0);
    expect(() => nonNegativeOption('-0.2')).toThrow(InvalidArgumentError);
    expect(() => nonNegativeOption('')).toThrow(InvalidArgumentError);
    expect(() => nonNegativeOption('a')).toThrow(InvalidArgumentError);
  });
});

describe('positiveOption', () => {
  it('accepts numbers above 0, nothing else', () => {
    expect(positiveOption('0.002')).toBe(0.002);
    expect(positiveOption('2e-3')).toBe(0.002);
    for (const value of ['0', '-1', '', 'abc', '1e400', '0.002x']) expect(() => positiveOption(value)).toThrow(InvalidArgumentError);
  });
});
