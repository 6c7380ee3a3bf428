import { describe, expect, it } from 'vitest';
import { outlineTarget } from './train-locator.js';

describe('outline targets for the locator', () => {
  // A 120×120 square of the model input starts at (-10, 20) in the original image.
  const geometry = { originalWidth: 100, originalHeight: 160, squareX: -10, squareY: 20, squareSide: 120 };

  it('puts all target mass in the cells the outline covers, summing to one', () => {
    // Cells are 10×10 original pixels on a 12×12 grid; this box covers cells (4..5, 2..3).
    const entry = { regions: [{ name: 'polygon' as const, all_points_x: [30, 50, 50, 30], all_points_y: [40, 40, 60, 60] }] };
    const target = outlineTarget(entry, geometry, 12);
    expect(target.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    const covered = [2 * 12 + 4, 2 * 12 + 5, 3 * 12 + 4, 3 * 12 + 5];
    covered.forEach((cell) => expect(target[cell]).toBeCloseTo(0.25));
    expect(target.filter((v, i) => v > 0 && !covered.includes(i))).toHaveLength(0);
  });

  it('gives an all-zero target when the outline lies outside the model input', () => {
    const entry = { regions: [{ name: 'circle' as const, cx: 500, cy: 500, r: 5 }] };
    expect(outlineTarget(entry, geometry, 12).every((v) => v === 0)).toBe(true);
  });
});
