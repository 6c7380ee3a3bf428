/**
 * Class weights per image source. `classWeights` are balanced on the main dataset's training images;
 * an extra source with its own class mix (e.g. mostly tumours) would otherwise pull the model's prior
 * its way. These per-image factors rescale each extra image so that the extra source, taken alone,
 * is class-balanced too: factor = (its class weight among the extra images) / (the main class weight).
 * Main images, and extra images with a coarse label (-1), get 1; a class the main images lack keeps
 * the extra source's own weight.
 */
export function sourceBalancedWeights(labels: Int32Array, mainClassWeights: readonly number[], extraTrain: readonly number[]): Float32Array {
  const weights = new Float32Array(labels.length).fill(1);
  const numClasses = mainClassWeights.length;
  const counts = new Array<number>(numClasses).fill(0);
  const labelled = extraTrain.filter((i) => (labels[i] as number) >= 0);
  for (const i of labelled) counts[labels[i] as number]! += 1;
  const present = counts.filter((c) => c > 0).length;
  for (const i of labelled) {
    const c = labels[i] as number;
    const own = labelled.length / (present * (counts[c] as number));
    const main = mainClassWeights[c] as number;
    weights[i] = main > 0 ? own / main : own;
  }
  return weights;
}
