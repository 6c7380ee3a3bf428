import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One epoch of a training history; `member` names the ensemble member it belongs to, if any. */
export interface HistoryPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  member?: string;
}

/**
 * Loss and accuracy per epoch, training and validation, side by side; one row per ensemble member.
 * A run without validation images (NaN in memory, null once saved as JSON) draws training curves only.
 */
export function trainingCurvesSvg(history: HistoryPoint[]): Promise<string> {
  const rows = history
    .flatMap((h) => [
      { epoch: h.epoch, member: h.member, metric: 'loss', split: 'train', value: h.loss },
      { epoch: h.epoch, member: h.member, metric: 'loss', split: 'validation', value: h.valLoss },
      { epoch: h.epoch, member: h.member, metric: 'accuracy', split: 'train', value: h.accuracy },
      { epoch: h.epoch, member: h.member, metric: 'accuracy', split: 'validation', value: h.valAccuracy },
    ])
    .filter((row) => Number.isFinite(row.value));
  const byMember = history.some((h) => h.member !== undefined);
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    data: { values: rows },
    facet: {
      column: { field: 'metric', type: 'nominal', title: null },
      ...(byMember ? { row: { field: 'member', type: 'nominal', title: null } } : {}),
    },
    spec: {
      width: 320,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false } },
        color: { field: 'split', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  });
}

/** Confusion matrix as an annotated heat map (rows: actual, columns: predicted). */
export function confusionSvg(confusion: number[][], classes: string[], title: string): Promise<string> {
  const rows = confusion.flatMap((row, a) => row.map((count, p) => ({ actual: classes[a], predicted: classes[p], count })));
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: rows },
    width: 60 * classes.length,
    height: 60 * classes.length,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: classes },
      y: { field: 'actual', type: 'nominal', sort: classes },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } } } },
      { mark: { type: 'text', fontSize: 14 }, encoding: { text: { field: 'count', type: 'quantitative' } } },
    ],
  });
}
