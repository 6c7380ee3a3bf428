/**
 * Per-image loss weights that make each near-duplicate group of training images weigh as one
 * image: 1 / (its group's size among the training images). Within each class the weights are
 * scaled to sum to the class's image count, so the class balance stays what the class weights make
 * it. Images outside `train`, and training images without a group (extra data), weigh 1.
 */
export function groupBalancedWeights(labels: Int32Array, groupOf: (index: number) => number | undefined, train: readonly number[]): Float32Array {
  const weights = new Float32Array(labels.length).fill(1);
  const sizes = new Map<number, number>();
  for (const i of train) {
    const g = groupOf(i);
    if (g !== undefined) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  }
  // Per class: its grouped training images and the sum of their raw weights.
  const perClass = new Map<number, { weight: number; members: number[] }>();
  for (const i of train) {
    const g = groupOf(i);
    if (g === undefined) continue;
    const w = 1 / (sizes.get(g) as number);
    weights[i] = w;
    const entry = perClass.get(labels[i] as number) ?? { weight: 0, members: [] };
    entry.weight += w;
    entry.members.push(i);
    perClass.set(labels[i] as number, entry);
  }
  for (const { weight, members } of perClass.values()) {
    const scale = members.length / weight;
    for (const i of members) weights[i] = (weights[i] as number) * scale;
  }
  return weights;
}
