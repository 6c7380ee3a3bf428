import { createHash } from 'node:crypto';
import { createRandom, shuffleInPlace } from '../util/random.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export interface SplitItem {
  relPath: string;
  label: string;
}

export interface SplitAssignment extends SplitItem {
  split: SplitName;
  /** Near-duplicate group: items of one group always share a split. */
  group: number;
}

export interface SplitOptions {
  seed: number;
  fractions: Readonly<Record<SplitName, number>>;
}

export interface DatasetSplit {
  seed: number;
  fractions: Readonly<Record<SplitName, number>>;
  assignments: SplitAssignment[];
  /** sha256 over the sorted assignments: two runs with the same split have the same fingerprint. */
  fingerprint: string;
}

interface Group {
  id: number;
  members: number[];
  label: string;
}

/**
 * Group-aware, stratified, seeded split: whole near-duplicate groups go to one split, and each
 * group goes where its class is furthest below its target share.
 */
export function splitByGroups(items: readonly SplitItem[], groupOf: Int32Array, options: SplitOptions): DatasetSplit {
  const groups = collectGroups(items, groupOf);
  const random = createRandom(options.seed);
  shuffleInPlace(groups, random);
  // Place large groups first (stable after the seeded shuffle) so they cannot unbalance the end.
  groups.sort((a, b) => b.members.length - a.members.length);

  const totals = new Map<string, number>();
  for (const item of items) totals.set(item.label, (totals.get(item.label) ?? 0) + 1);
  const placed = new Map<string, Record<SplitName, number>>();
  for (const label of totals.keys()) placed.set(label, { train: 0, val: 0, test: 0 });

  const splitOf = new Map<number, SplitName>();
  for (const group of groups) {
    const total = totals.get(group.label) as number;
    const counts = placed.get(group.label) as Record<SplitName, number>;
    let best: SplitName = 'train';
    let bestDeficit = -Infinity;
    for (const split of SPLIT_NAMES) {
      if (options.fractions[split] <= 0) continue;
      const deficit = options.fractions[split] * total - counts[split];
      if (deficit > bestDeficit) {
        bestDeficit = deficit;
        best = split;
      }
    }
    counts[best] += group.members.length;
    splitOf.set(group.id, best);
  }

  const assignments = items.map((item, i) => {
    const group = groupOf[i] as number;
    return { relPath: item.relPath, label: item.label, split: splitOf.get(group) as SplitName, group };
  });
  return { seed: options.seed, fractions: options.fractions, assignments, fingerprint: splitFingerprint(assignments) };
}

function collectGroups(items: readonly SplitItem[], groupOf: Int32Array): Group[] {
  const byId = new Map<number, number[]>();
  items.forEach((_, i) => {
    const id = groupOf[i] as number;
    const members = byId.get(id);
    if (members) members.push(i);
    else byId.set(id, [i]);
  });
  return [...byId.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([id, members]) => ({ id, members, label: majorityLabel(items, members) }));
}

function majorityLabel(items: readonly SplitItem[], members: number[]): string {
  const counts = new Map<string, number>();
  for (const m of members) {
    const label = (items[m] as SplitItem).label;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}

export function splitFingerprint(assignments: readonly SplitAssignment[]): string {
  const lines = assignments.map((a) => `${a.relPath}\t${a.label}\t${a.split}\t${a.group}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** Groups whose members sit in more than one split (must be zero). */
export function straddlingGroups(assignments: readonly SplitAssignment[]): number[] {
  const splitsOf = new Map<number, Set<SplitName>>();
  for (const a of assignments) {
    const set = splitsOf.get(a.group) ?? new Set<SplitName>();
    set.add(a.split);
    splitsOf.set(a.group, set);
  }
  return [...splitsOf.entries()].filter(([, s]) => s.size > 1).map(([g]) => g);
}

/**
 * The same split with its validation images moved into training (for a final run on a schedule
 * already chosen on validation): the test images stay as they were, so no group straddles.
 */
export function joinValidationToTraining<T extends DatasetSplit>(split: T): T & { joinedTraining: number } {
  let joined = 0;
  const assignments = split.assignments.map((a) => (a.split === 'val' ? (joined++, { ...a, split: 'train' as const }) : a));
  return { ...split, assignments, fingerprint: splitFingerprint(assignments), joinedTraining: joined };
}

/** The part of a saved `split.json` that a new run can reuse. */
export interface SavedSplit {
  fingerprint?: string;
  assignments: readonly { relPath: string; label: string; split: SplitName }[];
}

const examples = (names: string[]) => `${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}`;

/** A reused split, with the images it had to take out of training. */
export interface ReusedSplit extends DatasetSplit {
  /** Training images moved to validation or test to join a near-duplicate held out there. */
  movedOutOfTraining: string[];
}

const HELD_OUT_RANK: Record<SplitName, number> = { train: 0, val: 1, test: 2 };

/**
 * Puts every item where a saved split put it, so that candidates trained apart (another seed,
 * another input size) are chosen and tested on the same images. Near-duplicate groups are this
 * run's, found at its own input size, and may join images the saved split kept apart: such a
 * group goes whole to the most held-out split among its members (test, then validation), so no
 * held-out image enters training. A saved split that does not list exactly these images with these
 * labels is refused.
 */
export function reuseSplit(items: readonly SplitItem[], groupOf: Int32Array, saved: SavedSplit, options: SplitOptions): ReusedSplit {
  const byPath = new Map(saved.assignments.map((a) => [a.relPath, a]));
  const missing: string[] = [];
  const relabelled: string[] = [];
  const assignments = items.map((item, i): SplitAssignment => {
    const previous = byPath.get(item.relPath);
    if (!previous) missing.push(item.relPath);
    else if (previous.label !== item.label) relabelled.push(`${item.relPath} (${previous.label} → ${item.label})`);
    return { relPath: item.relPath, label: item.label, split: previous?.split ?? 'train', group: groupOf[i] as number };
  });
  const present = new Set(items.map((item) => item.relPath));
  const gone = saved.assignments.filter((a) => !present.has(a.relPath)).map((a) => a.relPath);
  const problems = [
    missing.length ? `${missing.length} images are not in it (${examples(missing)})` : '',
    gone.length ? `${gone.length} of its images are not in the data (${examples(gone)})` : '',
    relabelled.length ? `${relabelled.length} images changed class (${examples(relabelled)})` : '',
  ].filter(Boolean);
  if (problems.length) throw new Error(`the saved split does not match the data: ${problems.join('; ')}`);

  const straddling = new Set(straddlingGroups(assignments));
  const target = new Map<number, SplitName>();
  for (const a of assignments) {
    if (!straddling.has(a.group)) continue;
    const current = target.get(a.group);
    if (current === undefined || HELD_OUT_RANK[a.split] > HELD_OUT_RANK[current]) target.set(a.group, a.split);
  }
  const movedOutOfTraining: string[] = [];
  const final = assignments.map((a) => {
    const split = target.get(a.group) ?? a.split;
    if (split !== a.split && a.split === 'train') movedOutOfTraining.push(a.relPath);
    return split === a.split ? a : { ...a, split };
  });
  return { seed: options.seed, fractions: options.fractions, assignments: final, fingerprint: splitFingerprint(final), movedOutOfTraining };
}
