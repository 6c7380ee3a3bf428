import { createProgress, type Progress } from '@btd/model/progress';
import type { DatasetWait } from '@btd/shared';
import type { TrainingView } from './training-api.client.js';

/** The last epoch's metrics, or the phase (and queue state) while there are none or training is over. */
export function describeTraining(view: TrainingView): string {
  const { progress, state } = view;
  const parts: string[] = [];
  if (progress?.loss !== undefined) {
    parts.push(`loss ${progress.loss.toFixed(4)} acc ${progress.accuracy?.toFixed(4)} val_acc ${progress.valAccuracy?.toFixed(4)}`);
  }
  if (!progress) parts.push(state);
  else if (progress.phase !== 'training' || progress.loss === undefined) parts.push(progress.phase);
  const wait = progress?.datasetWait;
  if (wait && state === 'delayed') parts.push(`(delayed: ${describeDatasetWait(wait)})`);
  else if (progress && state !== 'active' && state !== 'completed') parts.push(`(${state})`);
  return parts.join(' ');
}

/** Why a training handed back waits: the trainers that could not read its folder, and those it waits for. */
function describeDatasetWait(wait: DatasetWait): string {
  const refused = `${wait.refusedBy.map((refusal) => refusal.trainer).join(', ')} could not read the dataset folder`;
  const waiting = wait.waitingFor.length > 0 ? `waiting for ${wait.waitingFor.join(', ')}` : 'no running trainer may read it, waiting for one that can';
  return `${refused}; ${waiting}`;
}

/**
 * Shows a followed training on stderr: a bar of epochs with the last epoch's metrics in its text,
 * or one line per epoch and phase when stderr is not a terminal. Before the number of epochs is
 * known (a request without `epochs`, before the first one finished) it writes the phase as a line.
 */
export class TrainingDisplay {
  readonly #bar: Progress = createProgress('epoch', { lineEveryUpdate: true });
  #last: TrainingView | undefined;
  #shown = '';
  #note = '';

  show(view: TrainingView): void {
    this.#last = view;
    this.#note = '';
    this.#render();
  }

  /** Adds a passing remark (e.g. the API is unreachable, retrying) to what is shown. */
  note(text: string): void {
    this.#note = text;
    this.#render();
  }

  stop(): void {
    this.#bar.stop();
  }

  #render(): void {
    const view = this.#last;
    if (!view) return;
    const total = view.progress?.epochs ?? view.request.hyperParameters?.epochs;
    const done = view.progress?.epoch ?? 0;
    const text = [describeTraining(view), this.#note].filter(Boolean).join(' · ');
    const shown = `${done}/${total} ${text}`;
    if (shown === this.#shown) return;
    this.#shown = shown;
    if (total === undefined) process.stderr.write(`${view.id}: ${text}\n`);
    else this.#bar.update(done, total, text);
  }
}
