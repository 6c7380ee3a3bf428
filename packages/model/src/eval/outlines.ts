import { readFile } from 'node:fs/promises';
import type { InputGeometry } from '../data/preprocess.js';
import type { Box, Point } from '../model/heatmap.js';

/** A tumour outline in original image pixels (VIA shapes). */
export type OutlineShape =
  | { name: 'polygon'; all_points_x: number[]; all_points_y: number[] }
  | { name: 'ellipse'; cx: number; cy: number; rx: number; ry: number; theta?: number }
  | { name: 'circle'; cx: number; cy: number; r: number };

export interface OutlineEntry {
  source_split?: string;
  regions: OutlineShape[];
}

/** Outlines keyed by image path relative to the dataset folder (e.g. `yes/y0.jpg`). */
export type Outlines = Record<string, OutlineEntry>;

export async function readOutlines(file: string): Promise<Outlines> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
  if (!parsed || typeof parsed !== 'object') throw new Error(`${file}: not an outline map`);
  return parsed as Outlines;
}

export function insideShape(shape: OutlineShape, p: Point): boolean {
  switch (shape.name) {
    case 'circle':
      return (p.x - shape.cx) ** 2 + (p.y - shape.cy) ** 2 <= shape.r ** 2;
    case 'ellipse': {
      const t = shape.theta ?? 0;
      const dx = p.x - shape.cx;
      const dy = p.y - shape.cy;
      const u = dx * Math.cos(t) + dy * Math.sin(t);
      const v = -dx * Math.sin(t) + dy * Math.cos(t);
      return (u / shape.rx) ** 2 + (v / shape.ry) ** 2 <= 1;
    }
    case 'polygon': {
      const xs = shape.all_points_x;
      const ys = shape.all_points_y;
      let inside = false;
      for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
        const xi = xs[i] as number;
        const yi = ys[i] as number;
        const xj = xs[j] as number;
        const yj = ys[j] as number;
        if (yi > p.y !== yj > p.y && p.x < ((xj - xi) * (p.y - yi)) / (yj - yi) + xi) inside = !inside;
      }
      return inside;
    }
  }
}

/**
 * Share of each cell of a side × side grid over the model input (placed in the original image by
 * `geometry`) that lies inside the outline, sampled at samples × samples points per cell.
 */
export function outlineCoverage(entry: OutlineEntry, geometry: InputGeometry, side: number, samples: number): Float32Array {
  const coverage = new Float32Array(side * side);
  for (let cy = 0; cy < side; cy++) {
    for (let cx = 0; cx < side; cx++) {
      let inside = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const u = (cx + (sx + 0.5) / samples) / side;
          const v = (cy + (sy + 0.5) / samples) / side;
          const p = { x: geometry.squareX + u * geometry.squareSide, y: geometry.squareY + v * geometry.squareSide };
          if (entry.regions.some((r) => insideShape(r, p))) inside++;
        }
      }
      coverage[cy * side + cx] = inside / (samples * samples);
    }
  }
  return coverage;
}

export function shapeBox(shape: OutlineShape): Box {
  switch (shape.name) {
    case 'circle':
      return { x: shape.cx - shape.r, y: shape.cy - shape.r, width: 2 * shape.r, height: 2 * shape.r };
    case 'ellipse': {
      const t = shape.theta ?? 0;
      const hw = Math.sqrt((shape.rx * Math.cos(t)) ** 2 + (shape.ry * Math.sin(t)) ** 2);
      const hh = Math.sqrt((shape.rx * Math.sin(t)) ** 2 + (shape.ry * Math.cos(t)) ** 2);
      return { x: shape.cx - hw, y: shape.cy - hh, width: 2 * hw, height: 2 * hh };
    }
    case 'polygon': {
      const minX = Math.min(...shape.all_points_x);
      const minY = Math.min(...shape.all_points_y);
      return { x: minX, y: minY, width: Math.max(...shape.all_points_x) - minX, height: Math.max(...shape.all_points_y) - minY };
    }
  }
}

export function boxIou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

export interface LocationMetrics {
  /** Images with an outline that were scored. */
  n: number;
  /** Share whose heatmap peak lies inside an outline. */
  pointingGame: number;
  /** Share whose box has IoU ≥ 0.5 with an outline's box. */
  iou50: number;
  meanIou: number;
}

/** Scores heatmap peaks and boxes against outlines (best region per image). */
export function locationMetrics(samples: { entry: OutlineEntry; peak: Point; box: Box | null }[]): LocationMetrics {
  let hits = 0;
  let iou50 = 0;
  let iouSum = 0;
  for (const s of samples) {
    if (s.entry.regions.some((r) => insideShape(r, s.peak))) hits++;
    const best = s.box ? Math.max(0, ...s.entry.regions.map((r) => boxIou(s.box as Box, shapeBox(r)))) : 0;
    iouSum += best;
    if (best >= 0.5) iou50++;
  }
  const n = samples.length;
  return { n, pointingGame: n ? hits / n : 0, iou50: n ? iou50 / n : 0, meanIou: n ? iouSum / n : 0 };
}
