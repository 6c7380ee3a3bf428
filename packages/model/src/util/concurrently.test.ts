import { describe, expect, it } from 'vitest';
import { forEachConcurrently } from './concurrently.js';

describe('forEachConcurrently', () => {
  it('runs every index once, never more than the limit at a time', async () => {
    const seen: number[] = [];
    let running = 0;
    let most = 0;
    await forEachConcurrently(20, 3, async (i) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
      seen.push(i);
      running -= 1;
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(most).toBe(3);
  });

  it('passes a failure on', async () => {
    await expect(forEachConcurrently(5, 2, async (i) => {
      if (i === 3) throw new Error('image 3 failed');
    })).rejects.toThrow('image 3 failed');
  });
});
