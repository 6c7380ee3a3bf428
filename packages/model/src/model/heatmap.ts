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

/** Where one output row or column samples the map: two neighbouring cells and the weight of the second. */
interface Taps {
  first: Int32Array;
  second: Int32Array;
  weight: Float32Array;
  /** 0 where the sample falls outside the square the map covers. */
  inside: Uint8Array;
}

/** Bilinear taps between cell centres for `count` samples along one axis of the original image. */
function axisTaps(count: number, originalLength: number, squareStart: number, squareSide: number, camSide: number): Taps {
  const taps: Taps = { first: new Int32Array(count), second: new Int32Array(count), weight: new Float32Array(count), inside: new Uint8Array(count) };
  for (let i = 0; i < count; i++) {
    const position = ((i + 0.5) / count) * originalLength;
    const c = ((position - squareStart) / squareSide) * camSide - 0.5;
    if (c < -0.5 || c > camSide - 0.5) continue;
    const clamped = Math.min(Math.max(c, 0), camSide - 1);
    const c0 = Math.floor(clamped);
    taps.first[i] = c0;
    taps.second[i] = Math.min(c0 + 1, camSide - 1);
    taps.weight[i] = clamped - c0;
    taps.inside[i] = 1;
  }
  return taps;
}

/**
 * Resamples a class activation map, which covers the model's square input, onto the original image
 * (bilinear between cell centres, zero outside the square) and scales it to [0, 1]. The
 * interpolation is separable, so each row and column's taps are worked out once.
 */
export function camToHeatmap(cam: Float32Array, camSide: number, geometry: InputGeometry, maxSide = HEATMAP_MAX_SIDE): Heatmap {
  const { originalWidth, originalHeight, squareX, squareY, squareSide } = geometry;
  const scale = Math.min(1, maxSide / Math.max(originalWidth, originalHeight));
  const width = Math.max(1, Math.round(originalWidth * scale));
  const height = Math.max(1, Math.round(originalHeight * scale));
  const data = new Float32Array(width * height);
  const columns = axisTaps(width, originalWidth, squareX, squareSide, camSide);
  const rows = axisTaps(height, originalHeight, squareY, squareSide, camSide);
  // The map interpolated along x for every cell row, once per output column.
  const alongX = new Float32Array(camSide * width);
  for (let r = 0; r < camSide; r++) {
    for (let u = 0; u < width; u++) {
      if (!columns.inside[u]) continue;
      const fx = columns.weight[u] as number;
      alongX[r * width + u] = (cam[r * camSide + (columns.first[u] as number)] as number) * (1 - fx) + (cam[r * camSide + (columns.second[u] as number)] as number) * fx;
    }
  }
  let max = 0;
  for (let v = 0; v < height; v++) {
    if (!rows.inside[v]) continue;
    const fy = rows.weight[v] as number;
    const top = (rows.first[v] as number) * width;
    const bottom = (rows.second[v] as number) * width;
    const out = v * width;
    for (let u = 0; u < width; u++) {
      const value = (alongX[top + u] as number) * (1 - fy) + (alongX[bottom + u] as number) * fy;
      data[out + u] = value;
      if (value > max) max = value;
    }
  }
  if (max > 0) {
    const inverse = 1 / max;
    for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * inverse;
  }
  return { width, height, data };
}

/** Index of the first largest value. */
function peakIndex(data: Float32Array): number {
  let best = 0;
  for (let i = 1; i < data.length; i++) if ((data[i] as number) > (data[best] as number)) best = i;
  return best;
}

/** The hottest point, in original image pixels. */
export function heatmapPeak(heatmap: Heatmap, geometry: InputGeometry): Point {
  const best = peakIndex(heatmap.data);
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
  const peak = peakIndex(data);
  if (!((data[peak] as number) > 0)) return null;
  const seen = new Uint8Array(data.length);
  const stack = new Int32Array(data.length);
  let size = 0;
  stack[size++] = peak;
  seen[peak] = 1;
  let minU = width;
  let minV = height;
  let maxU = -1;
  let maxV = -1;
  const visit = (j: number) => {
    if (!seen[j] && (data[j] as number) >= threshold) {
      seen[j] = 1;
      stack[size++] = j;
    }
  };
  while (size > 0) {
    const i = stack[--size] as number;
    const u = i % width;
    const v = (i - u) / width;
    if (u < minU) minU = u;
    if (u > maxU) maxU = u;
    if (v < minV) minV = v;
    if (v > maxV) maxV = v;
    if (u + 1 < width) visit(i + 1);
    if (u > 0) visit(i - 1);
    if (v + 1 < height) visit(i + width);
    if (v > 0) visit(i - width);
  }
  const sx = geometry.originalWidth / width;
  const sy = geometry.originalHeight / height;
  return { x: minU * sx, y: minV * sy, width: (maxU - minU + 1) * sx, height: (maxV - minV + 1) * sy };
}
