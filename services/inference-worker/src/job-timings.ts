import { performance } from 'node:perf_hooks';
import type { Prediction } from '@btd/model';
import type { ResultTimings } from '@btd/shared';

/** A model's prediction, with the moment (`performance.now()`) the job had it. */
export interface TimedPrediction {
  readonly prediction: Prediction;
  readonly endedAt: number;
}

/** Waits for a prediction and notes when it came. */
export async function timed(prediction: Promise<Prediction>): Promise<TimedPrediction> {
  const value = await prediction;
  return { prediction: value, endedAt: performance.now() };
}

type AnalysisPart = 'preprocessMs' | 'modelMs' | 'heatmapMs';

/** A moment in which two parts overlap counts in the first of them here. */
const PRECEDENCE: readonly AnalysisPart[] = ['modelMs', 'heatmapMs', 'preprocessMs'];

interface Span {
  readonly part: AnalysisPart;
  readonly start: number;
  readonly end: number;
}

/**
 * A prediction's preprocessing, forward passes and heatmap, back to back up to the moment the job
 * had it. Any wait for a model thread before them (its message on the way, other work queued on it)
 * stays outside, before the first.
 */
function spansOf({ prediction, endedAt }: TimedPrediction): Span[] {
  const { preprocessMs, modelMs, heatmapMs } = prediction.timings;
  const heatmapStart = endedAt - heatmapMs;
  const modelStart = heatmapStart - modelMs;
  return [
    { part: 'preprocessMs', start: modelStart - preprocessMs, end: modelStart },
    { part: 'modelMs', start: modelStart, end: heatmapStart },
    { part: 'heatmapMs', start: heatmapStart, end: endedAt },
  ];
}

/**
 * How long a job's predictions spent preprocessing, in forward passes and on heatmaps, on the job's
 * own clock. Each model times its own parts; two models that ran side by side (on threads of their
 * own) would count twice the time they overlapped if those were added up, and could add up to more
 * than the whole job. Here each moment counts once, in the part that ran then (a forward pass before
 * a heatmap before preprocessing), so the three add up to at most the time from the first
 * prediction's start to the last one's end. Models run one after the other give the plain sums.
 */
export function analysisTimings(predictions: readonly TimedPrediction[]): Record<AnalysisPart, number> {
  const spans = predictions.flatMap(spansOf).filter((span) => span.end > span.start);
  const bounds = [...new Set(spans.flatMap((span) => [span.start, span.end]))].sort((a, b) => a - b);
  const totals: Record<AnalysisPart, number> = { preprocessMs: 0, modelMs: 0, heatmapMs: 0 };
  for (let k = 1; k < bounds.length; k += 1) {
    const from = bounds[k - 1] as number;
    const to = bounds[k] as number;
    const part = PRECEDENCE.find((name) => spans.some((span) => span.part === name && span.start <= from && span.end >= to));
    if (part) totals[part] += to - from;
  }
  return totals;
}

/**
 * A job's timings to 0.1 ms: each part rounded down and the total up, so that the parts shown never
 * add up to more than the total shown.
 */
export function roundedTimings(measured: ResultTimings): ResultTimings {
  const down = (ms: number) => Math.floor(ms * 10) / 10;
  return {
    downloadMs: down(measured.downloadMs),
    preprocessMs: down(measured.preprocessMs),
    modelMs: down(measured.modelMs),
    heatmapMs: down(measured.heatmapMs),
    uploadMs: down(measured.uploadMs),
    totalMs: Math.ceil(measured.totalMs * 10) / 10,
  };
}
