import { describe, expect, it } from 'vitest';
import { epochLine } from './progress.js';

const record = { epoch: 3, epochs: 34, loss: 0.41234, accuracy: 0.95, valLoss: 0.2, valAccuracy: 0.9712, seconds: 45.04, isBest: true };

describe('epochLine', () => {
  it('shows training and validation metrics, the extra and the best mark', () => {
    expect(epochLine(record, 'acc', ' lr 2.00e-3')).toBe('epoch 3/34 loss 0.4123 acc 0.9500 val_loss 0.2000 val_acc 0.9712 lr 2.00e-3 45.0s *best\n');
  });

  it('leaves validation out when the run has none, instead of printing NaN', () => {
    const line = epochLine({ ...record, valLoss: Number.NaN, valAccuracy: Number.NaN, isBest: false }, 'hit');
    expect(line).toBe('epoch 3/34 loss 0.4123 hit 0.9500 45.0s\n');
  });
});
