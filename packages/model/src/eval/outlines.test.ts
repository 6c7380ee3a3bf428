import { describe, expect, it } from 'vitest';
import { boxIou, insideShape, locationMetrics, shapeBox, type OutlineShape } from './outlines.js';

const square: OutlineShape = { name: 'polygon', all_points_x: [10, 30, 30, 10], all_points_y: [10, 10, 30, 30] };
const ellipse: OutlineShape = { name: 'ellipse', cx: 50, cy: 50, rx: 20, ry: 5, theta: Math.PI / 2 };
const circle: OutlineShape = { name: 'circle', cx: 0, cy: 0, r: 2 };

describe('tumour outlines', () => {
  it('tells points inside polygons, rotated ellipses and circles', () => {
    expect(insideShape(square, { x: 20, y: 20 })).toBe(true);
    expect(insideShape(square, { x: 31, y: 20 })).toBe(false);
    // Rotated by 90°: long axis vertical.
    expect(insideShape(ellipse, { x: 50, y: 68 })).toBe(true);
    expect(insideShape(ellipse, { x: 68, y: 50 })).toBe(false);
    expect(insideShape(circle, { x: 1, y: 1 })).toBe(true);
    expect(insideShape(circle, { x: 2, y: 2 })).toBe(false);
  });

  it('boxes shapes and computes IoU', () => {
    expect(shapeBox(square)).toEqual({ x: 10, y: 10, width: 20, height: 20 });
    const e = shapeBox(ellipse);
    expect(e.width).toBeCloseTo(10);
    expect(e.height).toBeCloseTo(40);
    expect(boxIou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150);
    expect(boxIou({ x: 0, y: 0, width: 1, height: 1 }, { x: 5, y: 5, width: 1, height: 1 })).toBe(0);
  });

  it('scores the pointing game and IoU ≥ 0.5 over images', () => {
    const m = locationMetrics([
      { entry: { regions: [square] }, peak: { x: 20, y: 20 }, box: { x: 10, y: 10, width: 20, height: 20 } },
      { entry: { regions: [square, circle] }, peak: { x: 0.5, y: 0 }, box: { x: 10, y: 10, width: 40, height: 40 } },
      { entry: { regions: [square] }, peak: { x: 90, y: 90 }, box: null },
    ]);
    expect(m.n).toBe(3);
    expect(m.pointingGame).toBeCloseTo(2 / 3);
    expect(m.iou50).toBeCloseTo(1 / 3);
  });
});
