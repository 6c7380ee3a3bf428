import { describeDataset } from '../dataset-spec.js';
import type { TrainingView } from './training-api.client.js';

const COLUMNS = ['id', 'state', 'task', 'progress', 'dataset', 'created', 'outcome'] as const;

function progressOf(view: TrainingView): string {
  const { progress } = view;
  if (!progress) return '-';
  return progress.epoch === undefined ? progress.phase : `${progress.phase} ${progress.epoch}/${progress.epochs}`;
}

function outcomeOf(view: TrainingView): string {
  if (view.result) return `${view.result.version} ${view.result.promoted ? 'promoted' : 'not promoted'}`;
  return view.failedReason ?? '';
}

/** One row per training with aligned columns, for people; `--json` gives the views themselves. */
export function formatTrainingTable(views: readonly TrainingView[]): string {
  if (views.length === 0) return 'no trainings\n';
  const rows = views.map((view) => [view.id, view.state, view.request.task, progressOf(view), describeDataset(view.request.dataset), view.createdAt.slice(0, 19).replace('T', ' '), outcomeOf(view)]);
  const widths = COLUMNS.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return `${[line(COLUMNS), ...rows.map(line)].join('\n')}\n`;
}
