import { SingleBar, Presets } from 'cli-progress';
import type { EpochRecord } from '../train/training-loop.js';

/** A progress display: a bar on a terminal, plain lines otherwise. */
export interface Progress {
  update(done: number, total: number, extra?: string): void;
  stop(): void;
}

/** How a progress display behaves without a terminal. */
export interface ProgressOptions {
  /**
   * Write a line for every update (callers that update once per epoch) instead of one per tenth
   * of the total (callers that update once per step).
   */
  readonly lineEveryUpdate?: boolean;
}

/**
 * A progress bar on stderr (stdout stays clean for JSON). When stderr is not a terminal (a log
 * file, CI), it writes plain lines instead: one per tenth of the total, or one per update.
 */
export function createProgress(label: string, options: ProgressOptions = {}): Progress {
  if (!process.stderr.isTTY) {
    let lastLogged = -1;
    return {
      update(done, total, extra) {
        const tenth = Math.floor((10 * done) / total);
        if (options.lineEveryUpdate || (tenth !== lastLogged && (done === total || tenth > lastLogged))) {
          lastLogged = tenth;
          process.stderr.write(`${label} ${done}/${total}${extra ? ` ${extra}` : ''}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} {extra}`, stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, extra = '') {
      if (!started) {
        bar.start(total, 0, { extra });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { extra });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** What an epoch line shows: a training run's or a locator head's epoch record (its learning rate goes in `extra`). */
export type EpochLineRecord = Omit<EpochRecord, 'learningRate'> & { epochs: number; isBest: boolean };

/**
 * The line a command writes per epoch: its training loss and score (`scoreName`, e.g. `acc`), the same on
 * validation when the run has validation examples (NaN otherwise), then `extra` (e.g. the learning rate).
 */
export function epochLine(e: EpochLineRecord, scoreName: string, extra = ''): string {
  const validation = Number.isFinite(e.valLoss) ? ` val_loss ${e.valLoss.toFixed(4)} val_${scoreName} ${e.valAccuracy.toFixed(4)}` : '';
  return `epoch ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(4)} ${scoreName} ${e.accuracy.toFixed(4)}${validation}${extra} ${e.seconds.toFixed(1)}s${e.isBest ? ' *best' : ''}\n`;
}
