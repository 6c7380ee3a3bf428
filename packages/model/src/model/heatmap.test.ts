import { describe, expect, it } from 'vitest';
import type { InputGeometry } from '../data/preprocess.js';
import { createRandom } from '../util/random.js';
import { boxFromHeatmap, camToHeatmap, heatmapPeak, type Heatmap } from './heatmap.js';

/** Bilinear sampling between cell centres, one pixel at a time: the definition the fast path must match. */
function referenceSample(cam: Float32Array, side: number, x: number, y: number): number {
  if (x < -0.5 || y < -0.5 || x > side - 0.5 || y > side - 0.5) return 0;
  const cx = Math.min(Math.max(x, 0), side - 1);
  const cy = Math.min(Math.max(y, 0), side - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, side - 1);
  const y1 = Math.min(y0 + 1, side - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const at = (xx: number, yy: number) => cam[yy * side + xx] as number;
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

function referenceHeatmap(cam: Float32Array, side: number, g: InputGeometry, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const x = ((u + 0.5) / width) * g.originalWidth;
      const y = ((v + 0.5) / height) * g.originalHeight;
      out[v * width + u] = referenceSample(cam, side, ((x - g.squareX) / g.squareSide) * side - 0.5, ((y - g.squareY) / g.squareSide) * side - 0.5);
    }
  }
  const max = out.reduce((a, b) => Math.max(a, b), 0);
  return max > 0 ? out.map((value) => value / max) : out;
}

describe('camToHeatmap', () => {
  const random = createRandom(7);
  const cam = Float32Array.from({ length: 36 }, () => random());
  const geometries: Record<string, InputGeometry> = {
    'a square image': { originalWidth: 200, originalHeight: 200, squareX: 0, squareY: 0, squareSide: 200 },
    'a wide image padded to a square': { originalWidth: 300, originalHeight: 180, squareX: 20, squareY: -40, squareSide: 260 },
    'a crop inside a large image (scaled down)': { originalWidth: 900, originalHeight: 700, squareX: 150, squareY: 60, squareSide: 580 },
  };

  for (const [name, geometry] of Object.entries(geometries)) {
    it(`matches per-pixel bilinear sampling for ${name}`, () => {
      const heatmap = camToHeatmap(cam, 6, geometry);
      expect(Math.max(heatmap.width, heatmap.height)).toBeLessThanOrEqual(256);
      const expected = referenceHeatmap(cam, 6, geometry, heatmap.width, heatmap.height);
      let worst = 0;
      expected.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - (heatmap.data[i] as number)))));
      expect(worst).toBeLessThan(1e-5);
      expect(Math.max(...heatmap.data)).toBeCloseTo(1, 6);
    });
  }

  it('is zero outside the square and all zero for an all-zero map', () => {
    const padded = camToHeatmap(cam, 6, geometries['a crop inside a large image (scaled down)']!);
    expect(padded.data[0]).toBe(0);
    expect(camToHeatmap(new Float32Array(36), 6, geometries['a square image']!).data.every((v) => v === 0)).toBe(true);
  });
});

describe('boxFromHeatmap and heatmapPeak', () => {
  const geometry: InputGeometry = { originalWidth: 40, originalHeight: 20, squareX: 0, squareY: -10, squareSide: 40 };
  const map = (cells: [number, number, number][]): Heatmap => {
    const data = new Float32Array(20 * 10);
    for (const [u, v, value] of cells) data[v * 20 + u] = value;
    return { width: 20, height: 10, data };
  };

  it('boxes the region connected to the peak, not a hot spot elsewhere, in original pixels', () => {
    // An L-shaped region around the peak at (3, 2), and a separate spot at (15, 8).
    const heatmap = map([[3, 2, 1], [4, 2, 0.8], [5, 2, 0.6], [5, 3, 0.7], [5, 4, 0.5], [6, 4, 0.4], [15, 8, 0.9]]);
    expect(boxFromHeatmap(heatmap, geometry)).toEqual({ x: 6, y: 4, width: 6, height: 6 });
    expect(heatmapPeak(heatmap, geometry)).toEqual({ x: 7, y: 5 });
  });

  it('follows a region along the map edges', () => {
    const heatmap = map([[19, 9, 1], [18, 9, 0.9], [19, 8, 0.9], [0, 0, 0.95]]);
    expect(boxFromHeatmap(heatmap, geometry)).toEqual({ x: 36, y: 16, width: 4, height: 4 });
  });

  it('returns null for an empty map', () => {
    expect(boxFromHeatmap(map([]), geometry)).toBeNull();
  });
});
