import * as tf from '@tensorflow/tfjs';

/** An optimizer state entry, in the form tfjs optimizers save and restore. */
export interface NamedState {
  name: string;
  tensor: tf.Tensor;
}

const ITERATIONS = 'iter';

/**
 * Adam over plain Float32Arrays, with the update rule and defaults of `tf.train.adam`
 * (β₁ 0.9, β₂ 0.999, ε 1e-7, bias correction by β^t). Data-parallel training applies one update per
 * step on the coordinating thread while every worker waits; done in one pass over each array it
 * costs a few milliseconds, where the tensor version spends far longer in per-variable kernel calls.
 * Its saved state has the names and layout of `tf.train.adam`'s (`iter`, `<variable>/m`, `<variable>/v`).
 */
export class FlatAdam {
  readonly beta1 = 0.9;
  readonly beta2 = 0.999;
  readonly epsilon = 1e-7;
  private iterations = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  /** @param variables name and size of each updated array, in the order `apply` receives them */
  constructor(private readonly variables: readonly { name: string; size: number }[]) {
    this.m = variables.map((variable) => new Float32Array(variable.size));
    this.v = variables.map((variable) => new Float32Array(variable.size));
  }

  /**
   * One update: for each variable k, the gradient is Σᵢ shares[i] · grads[i][k], and values[k] moves in place.
   */
  apply(values: readonly Float32Array[], grads: readonly (readonly Float32Array[])[], shares: readonly number[], learningRate: number): void {
    this.iterations += 1;
    const { beta1, beta2, epsilon } = this;
    const correction1 = 1 - beta1 ** this.iterations;
    const correction2 = 1 - beta2 ** this.iterations;
    this.variables.forEach((_, k) => {
      const value = values[k] as Float32Array;
      const m = this.m[k] as Float32Array;
      const v = this.v[k] as Float32Array;
      const parts = grads.map((g) => g[k] as Float32Array);
      for (let i = 0; i < value.length; i++) {
        let g = 0;
        for (let p = 0; p < parts.length; p++) g += (shares[p] as number) * ((parts[p] as Float32Array)[i] as number);
        const mi = beta1 * (m[i] as number) + (1 - beta1) * g;
        const vi = beta2 * (v[i] as number) + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        value[i] = (value[i] as number) - (learningRate * (mi / correction1)) / (Math.sqrt(vi / correction2) + epsilon);
      }
    });
  }

  /** The state, as `tf.train.adam().getWeights()` names it; the caller disposes the tensors. */
  getWeights(): Promise<NamedState[]> {
    const moments = (suffix: string, arrays: Float32Array[]) => this.variables.map((variable, k) => ({ name: `${variable.name}/${suffix}`, tensor: tf.tensor1d(arrays[k] as Float32Array) }));
    return Promise.resolve([{ name: ITERATIONS, tensor: tf.scalar(this.iterations, 'int32') }, ...moments('m', this.m), ...moments('v', this.v)]);
  }

  /**
   * Restores a state saved by {@link getWeights} (or by `tf.train.adam`); entries it does not know
   * are ignored. Returns the names of the variables whose moments the state lacks (they keep theirs).
   */
  async setWeights(state: readonly NamedState[]): Promise<string[]> {
    const byName = new Map(state.map((entry) => [entry.name, entry.tensor]));
    const iterations = byName.get(ITERATIONS);
    this.iterations = iterations ? ((await iterations.data())[0] as number) : 0;
    const missing = new Set<string>();
    for (const [k, variable] of this.variables.entries()) {
      for (const [suffix, arrays] of [['m', this.m], ['v', this.v]] as const) {
        const saved = byName.get(`${variable.name}/${suffix}`);
        if (!saved) {
          missing.add(variable.name);
          continue;
        }
        if (saved.size !== variable.size) throw new Error(`optimizer state ${variable.name}/${suffix} has ${saved.size} values, expected ${variable.size}`);
        (arrays[k] as Float32Array).set((await saved.data()) as Float32Array);
      }
    }
    return [...missing];
  }
}
