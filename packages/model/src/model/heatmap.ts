import type { InputGeometry } from '../data/preprocess.js';

/** A map over the original image (possibly scaled down), values in [0, 1]. */
export interface Heatmap {
  width: number;
  height: number;
  data: Float32Array;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

/** Long side of a heatmap, in cells: fine enough for a box, small enough to send around. */
export const HEATMAP_MAX_SIDE = 256;

/**
 * Resamples a class activation map, which covers the model's square input, onto the original image
 * (bilinear between cell centres, zero outside the square) and scales it to [0, 1].
 */
export function camToHeatmap(cam: Float32Array, camSide: number, geometry: InputGeometry, maxSide = HEATMAP_MAX_SIDE): Heatmap {
  const { originalWidth, originalHeight, squareX, squareY, squareSide } = geometry;
  const scale = Math.min(1, maxSide / Math.max(originalWidth, originalHeight));
  const width = Math.max(1, Math.round(originalWidth * scale));
  const height = Math.max(1, Math.round(originalHeight * scale));
  const data = new Float32Array(width * height);
  let max = 0;
  for (let v = 0; v < height; v++) {
    const y = ((v + 0.5) / height) * originalHeight;
    const cy = ((y - squareY) / squareSide) * camSide - 0.5;
    for (let u = 0; u < width; u++) {
      const x = ((u + 0.5) / width) * originalWidth;
      const cx = ((x - squareX) / squareSide) * camSide - 0.5;
      const value = sampleBilinear(cam, camSide, cx, cy);
      data[v * width + u] = value;
      if (value > max) max = value;
    }
  }
  if (max > 0) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) / max;
  return { width, height, data };
}

function sampleBilinear(grid: Float32Array, side: number, x: number, y: number): number {
  if (x < -0.5 || y < -0.5 || x > side - 0.5 || y > side - 0.5) return 0;
  const cx = Math.min(Math.max(x, 0), side - 1);
  const cy = Math.min(Math.max(y, 0), side - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, side - 1);
  const y1 = Math.min(y0 + 1, side - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const at = (xx: number, yy: number) => grid[yy * side + xx] as number;
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

/** The hottest point, in original image pixels. */
export function heatmapPeak(heatmap: Heatmap, geometry: InputGeometry): Point {
  let best = 0;
  for (let i = 1; i < heatmap.data.length; i++) if ((heatmap.data[i] as number) > (heatmap.data[best] as number)) best = i;
  const u = best % heatmap.width;
  const v = Math.floor(best / heatmap.width);
  return {
    x: ((u + 0.5) / heatmap.width) * geometry.originalWidth,
    y: ((v + 0.5) / heatmap.height) * geometry.originalHeight,
  };
}

/**
 * The box around the region connected to the peak where the map stays at or above `threshold`
 * of its maximum, in original image pixels; null for an empty map.
 */
export function boxFromHeatmap(heatmap: Heatmap, geometry: InputGeometry, threshold = 0.5): Box | null {
  const { width, height, data } = heatmap;
  let peak = 0;
  for (let i = 1; i < data.length; i++) if ((data[i] as number) > (data[peak] as number)) peak = i;
  if (!((data[peak] as number) > 0)) return null;
  const seen = new Uint8Array(data.length);
  const stack = [peak];
  seen[peak] = 1;
  let minU = width;
  let minV = height;
  let maxU = -1;
  let maxV = -1;
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const u = i % width;
    const v = (i - u) / width;
    minU = Math.min(minU, u);
    maxU = Math.max(maxU, u);
    minV = Math.min(minV, v);
    maxV = Math.max(maxV, v);
    for (const [du, dv] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
      const nu = u + du;
      const nv = v + dv;
      if (nu < 0 || nv < 0 || nu >= width || nv >= height) continue;
      const j = nv * width + nu;
      if (!seen[j] && (data[j] as number) >= threshold) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  const sx = geometry.originalWidth / width;
  const sy = geometry.originalHeight / height;
  return { x: minU * sx, y: minV * sy, width: (maxU - minU + 1) * sx, height: (maxV - minV + 1) * sy };
}
