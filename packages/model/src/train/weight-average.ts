/**
 * Exponential moving average of a model's weights (Polyak averaging), batch-norm statistics included.
 * The averaged weights are what validation sees and what the artifact keeps: they are much less noisy
 * than the last step's weights, so choosing the best epoch by validation is more reliable.
 */
export class WeightAverage {
  readonly values: Float32Array[];
  steps: number;

  constructor(
    readonly decay: number,
    initial: Float32Array[],
    steps = 0,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`weight-average decay must be in [0, 1), got ${decay}`);
    this.values = initial.map((w) => w.slice());
    this.steps = steps;
  }

  /** The decay used at step n: short memory at first, so the average does not drag the random initial weights along. */
  static effectiveDecay(decay: number, steps: number): number {
    return Math.min(decay, (1 + steps) / (10 + steps));
  }

  update(weights: Float32Array[]): void {
    const d = WeightAverage.effectiveDecay(this.decay, this.steps);
    const keep = 1 - d;
    weights.forEach((w, k) => {
      const avg = this.values[k];
      if (!avg || avg.length !== w.length) throw new Error(`weight ${k}: expected ${avg?.length ?? 0} values, got ${w.length}`);
      for (let i = 0; i < w.length; i++) avg[i] = (avg[i] as number) + keep * ((w[i] as number) - (avg[i] as number));
    });
    this.steps++;
  }

  snapshot(): Float32Array[] {
    return this.values.map((w) => w.slice());
  }
}
