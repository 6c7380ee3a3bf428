import type * as tf from '@tensorflow/tfjs';

/** A tf.layers layer's `call`, as its prototype holds it. */
export type LayerCall<L = unknown> = (this: L, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** Installs and removes a replacement for `call` on a tf.layers class's prototype. */
export interface LayerCallOverride {
  install(): void;
  uninstall(): void;
}

/**
 * A replacement for the `call` of every layer of one tf.layers class (and of layers loaded from
 * saved models, which are of that class too), made from the call it replaces. Installing and
 * uninstalling are idempotent, and uninstalling puts back exactly what was there.
 */
export function layerCallOverride<L>(prototype: object, replace: (original: LayerCall<L>) => LayerCall<L>): LayerCallOverride {
  const target = prototype as { call: LayerCall<L> };
  const own = Object.prototype.hasOwnProperty.call(target, 'call');
  let previous: LayerCall<L> | undefined;
  return {
    install() {
      if (previous !== undefined) return;
      previous = target.call;
      target.call = replace(previous);
    },
    uninstall() {
      if (previous === undefined) return;
      if (own) target.call = previous;
      else delete (target as { call?: LayerCall<L> }).call;
      previous = undefined;
    },
  };
}

/** The single input tensor of a layer call. */
export function singleInput(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | undefined {
  return Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
}
