import { describe, expect, it } from 'vitest';
import { better, validationScore, type SelectBy } from './training-loop.js';

// Validation results of five epochs: accuracy peaks early (epoch 2), the loss keeps falling until epoch 5.
const epochs = [
  { epoch: 1, accuracy: 0.9, loss: 0.3 },
  { epoch: 2, accuracy: 0.95, loss: 0.2 },
  { epoch: 3, accuracy: 0.95, loss: 0.18 },
  { epoch: 4, accuracy: 0.94, loss: 0.16 },
  { epoch: 5, accuracy: 0.94, loss: 0.15 },
];

function bestEpoch(selectBy?: SelectBy): number {
  let best = epochs[0] as (typeof epochs)[number];
  for (const e of epochs.slice(1)) if (better(validationScore(e, selectBy), validationScore(best, selectBy))) best = e;
  return best.epoch;
}

describe('choosing the best epoch', () => {
  it('by accuracy, with the lower loss breaking a tie', () => {
    expect(bestEpoch()).toBe(3);
    expect(bestEpoch('accuracy')).toBe(3);
  });

  it('by loss', () => {
    expect(bestEpoch('loss')).toBe(5);
  });

  it('by loss, with the higher accuracy breaking a tie', () => {
    expect(better(validationScore({ accuracy: 0.95, loss: 0.2 }, 'loss'), validationScore({ accuracy: 0.94, loss: 0.2 }, 'loss'))).toBe(true);
    expect(better(validationScore({ accuracy: 0.94, loss: 0.2 }, 'loss'), validationScore({ accuracy: 0.95, loss: 0.2 }, 'loss'))).toBe(false);
  });
});
