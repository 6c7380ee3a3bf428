/**
 * Which images a model got wrong, and its accuracy with each near-duplicate group of the evaluated
 * images counted once. A test split can hold many copies of one scan (Br35H has groups of 25), and a
 * model is right or wrong on all of them alike, so plain accuracy weighs such a scan many times.
 * Where images have patients, a group also holds every image of its patients (and of its DICOM
 * studies and multi-frame files): one patient's slices are not independent either.
 */
import { groupBootstrapInterval, type GroupTally } from './group-bootstrap.js';
import { topClass } from './metrics.js';

export interface Misclassified {
  relPath: string;
  actual: string;
  predicted: string;
  /** The model's probability of the class it predicted. */
  probability: number;
  /** The first path (in sort order) of the image's near-duplicate group among the evaluated images. */
  group: string;
  /** How many of the evaluated images that group holds. */
  groupSize: number;
}

export interface GroupedAccuracy {
  /** Near-duplicate groups (joined by patient where known) among the evaluated images; an image without copies is a group of one. */
  groups: number;
  /** Mean over the groups of the share of each group's images predicted right. */
  accuracy: number;
  /** Groups with at least one image predicted wrong. */
  groupsWithErrors: number;
  /** 95% interval of the plain accuracy (over images), from resampling the groups. */
  accuracyInterval: [number, number];
}

export interface ErrorsByGroup {
  misclassified: Misclassified[];
  byGroup: GroupedAccuracy;
}

/**
 * @param relPaths the evaluated images, in the order of `actual`
 * @param probabilities n × classes, row-major
 * @param groupOf a group id per image: images with the same id are near-duplicates (or of one patient)
 */
export function errorsByGroup(
  relPaths: readonly string[],
  actual: readonly number[],
  probabilities: Float32Array | readonly number[],
  classes: readonly string[],
  groupOf: ArrayLike<number>,
): ErrorsByGroup {
  const n = actual.length;
  if (relPaths.length !== n || groupOf.length !== n || probabilities.length !== n * classes.length) {
    throw new Error(`expected ${n} paths, group ids and rows of ${classes.length} probabilities`);
  }
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groupOf[i] as number;
    const images = members.get(g);
    if (images) images.push(i);
    else members.set(g, [i]);
  }
  const predicted = actual.map((_, i) => topClass(probabilities, i, classes.length));
  const misclassified: Misclassified[] = [];
  const tallies: GroupTally[] = [];
  let shareRight = 0;
  let groupsWithErrors = 0;
  for (const images of members.values()) {
    const wrong = images.filter((i) => predicted[i] !== actual[i]);
    tallies.push({ size: images.length, right: images.length - wrong.length });
    shareRight += (images.length - wrong.length) / images.length;
    if (wrong.length === 0) continue;
    groupsWithErrors++;
    const group = images.map((i) => relPaths[i] as string).sort()[0] as string;
    for (const i of wrong) {
      const p = predicted[i] as number;
      misclassified.push({
        relPath: relPaths[i] as string,
        actual: classes[actual[i] as number] as string,
        predicted: classes[p] as string,
        probability: probabilities[i * classes.length + p] as number,
        group,
        groupSize: images.length,
      });
    }
  }
  misclassified.sort((a, b) => b.groupSize - a.groupSize || a.group.localeCompare(b.group) || a.relPath.localeCompare(b.relPath));
  return {
    misclassified,
    byGroup: { groups: members.size, accuracy: members.size === 0 ? 0 : shareRight / members.size, groupsWithErrors, accuracyInterval: groupBootstrapInterval(tallies) },
  };
}
