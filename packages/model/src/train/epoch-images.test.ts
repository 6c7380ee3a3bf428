import { describe, expect, it } from 'vitest';
import { createRandom, shuffleInPlace } from '../util/random.js';
import { epochImages, imagesPerEpoch } from './training-loop.js';

describe('epochImages', () => {
  const train = Array.from({ length: 20 }, (_, i) => i);
  const extra = Array.from({ length: 50 }, (_, i) => 100 + i);

  it('without sampled images, orders the training images exactly as a plain shuffle', () => {
    expect(epochImages(train, undefined, createRandom(7))).toEqual(shuffleInPlace([...train], createRandom(7)));
  });

  it('keeps every training image once and adds perEpoch distinct sampled ones, drawn afresh each epoch', () => {
    const sampled = { indices: extra, perEpoch: 10 };
    const draws = [1, 2].map((epoch) => epochImages(train, sampled, createRandom(epoch)));
    for (const order of draws) {
      expect(order).toHaveLength(30);
      expect(order.filter((i) => i < 100).sort((a, b) => a - b)).toEqual(train);
      const drawn = order.filter((i) => i >= 100);
      expect(new Set(drawn).size).toBe(10);
      expect(drawn.every((i) => extra.includes(i))).toBe(true);
    }
    const [first, second] = draws.map((order) => order.filter((i) => i >= 100).sort((a, b) => a - b));
    expect(first).not.toEqual(second);
    // Mixed in, not appended: some sampled image comes before the last training image.
    expect(draws[0]!.findIndex((i) => i >= 100)).toBeLessThan(draws[0]!.findLastIndex((i) => i < 100));
  });

  it('counts the images of an epoch, at most the whole pool when perEpoch exceeds it', () => {
    expect(imagesPerEpoch(train, undefined)).toBe(20);
    expect(imagesPerEpoch(train, { indices: extra, perEpoch: 10 })).toBe(30);
    expect(imagesPerEpoch(train, { indices: extra, perEpoch: 80 })).toBe(70);
    expect(epochImages(train, { indices: extra, perEpoch: 80 }, createRandom(3))).toHaveLength(70);
  });
});
