import * as tf from '@tensorflow/tfjs';

/**
 * Gradients of Sum and Mean that broadcast dy with Tile. TensorFlow.js's own multiply dy by a
 * `ones(x.shape)` built in JavaScript and uploaded on every call: for the batch-norm moments of
 * a 96×96×16 activation that is a 590 k-element array per reduction per step. Same values.
 */
function broadcastGradient(scaleByCount: boolean): tf.GradConfig['gradFunc'] {
  return (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
    const expanded = x.shape.map((size, axis) => (axes.includes(axis) ? 1 : size));
    const count = axes.reduce((n, axis) => n * (x.shape[axis] as number), 1);
    return {
      x: () => tf.tidy(() => {
        const d = dy as tf.Tensor;
        const g = tf.reshape(d.dtype === 'float32' ? d : tf.cast(d, 'float32'), expanded);
        return tf.broadcastTo(scaleByCount ? tf.div(g, count) : g, x.shape);
      }),
    };
  };
}

const stockGradients = new Map<string, tf.GradConfig | undefined>();
const ours = new Map<string, tf.GradConfig>([
  [tf.Sum, { kernelName: tf.Sum, inputsToSave: ['x'], gradFunc: broadcastGradient(false) }],
  [tf.Mean, { kernelName: tf.Mean, inputsToSave: ['x'], gradFunc: broadcastGradient(true) }],
]);

/** Installs the Sum and Mean gradients above (for every backend, as gradients are). Idempotent. */
export function registerReductionGradients(): void {
  for (const [name, config] of ours) {
    const current = tf.getGradient(name);
    if (current === config) continue;
    stockGradients.set(name, current);
    tf.registerGradient(config);
  }
}

/** Puts TensorFlow.js's own Sum and Mean gradients back. Idempotent. */
export function unregisterReductionGradients(): void {
  for (const [name, config] of ours) {
    const stock = stockGradients.get(name);
    if (stock !== undefined && tf.getGradient(name) === config) tf.registerGradient(stock);
  }
}
