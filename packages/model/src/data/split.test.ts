import { describe, expect, it } from 'vitest';
import { blobSlice } from '../../../../tests/helpers/blob-slice.js';
import { createRandom } from '../util/random.js';
import { withoutNearDuplicatesOf } from './cross-folder-duplicates.js';
import { mergeExtraTrainingData } from './extra-training-data.js';
import { DEFAULT_DUPLICATE_THRESHOLD, groupNearDuplicates, hasNearDuplicateIn, signatures, similarity } from './near-duplicates.js';
import { defaultPreprocessParams } from './preprocess.js';
import type { PreprocessedDataset } from './preprocessed-dataset.js';
import { joinValidationToTraining, reuseSplit, splitByGroups, straddlingGroups, type SplitItem } from './split.js';

const slice = blobSlice;

function recontrast(pixels: Uint8Array, gain: number, offset: number): Uint8Array {
  return pixels.map((v) => Math.max(0, Math.min(255, Math.round(v * gain + offset))));
}

describe('near-duplicate groups and the split', () => {
  const side = 32;
  const originals = Array.from({ length: 40 }, (_, i) => slice(i + 1, side));
  // Every fourth slice also appears re-contrasted, as the datasets' copies do.
  const copies = originals.filter((_, i) => i % 4 === 0).map((p) => recontrast(p, 0.8, 20));
  const all = [...originals, ...copies];
  const pixels = new Uint8Array(all.length * side * side);
  all.forEach((p, i) => pixels.set(p, i * side * side));
  const items: SplitItem[] = all.map((_, i) => ({ relPath: `img${i}.png`, label: (i < 40 ? i : (i - 40) * 4) % 2 === 0 ? 'tumor' : 'no_tumor' }));
  const sigs = signatures(pixels, all.length, side);

  it('groups a re-contrasted copy with its original and nothing else', () => {
    const groups = groupNearDuplicates(sigs);
    expect(groups.duplicateGroups).toBe(10);
    copies.forEach((_, k) => expect(groups.groupOf[40 + k]).toBe(groups.groupOf[k * 4]));
    expect(groups.groupOf[1]).not.toBe(groups.groupOf[2]);
  });

  it('groups a mirrored copy with its original, as training and serving see both orientations', () => {
    const mirror = (p: Uint8Array) => p.map((_, k) => p[Math.floor(k / side) * side + (side - 1 - (k % side))] as number);
    const mirrored = [originals[1]!, originals[5]!].map((p) => recontrast(mirror(p), 0.9, 10));
    const withMirrors = new Uint8Array((all.length + mirrored.length) * side * side);
    withMirrors.set(pixels);
    mirrored.forEach((p, k) => withMirrors.set(p, (all.length + k) * side * side));
    const withMirrorSigs = signatures(withMirrors, all.length + mirrored.length, side);
    const groups = groupNearDuplicates(withMirrorSigs);
    expect(groups.duplicateGroups).toBe(12);
    expect(groups.groupOf[all.length]).toBe(groups.groupOf[1]);
    expect(groups.groupOf[all.length + 1]).toBe(groups.groupOf[5]);
    // Compared as they are, without the mirror image, the copies would pass for distinct slices.
    const directOnly = { ...withMirrorSigs, mirroredCoarse: withMirrorSigs.coarse, mirroredFine: withMirrorSigs.fine };
    expect(similarity(directOnly, all.length, directOnly, 1)).toBeLessThan(DEFAULT_DUPLICATE_THRESHOLD);
    expect(similarity(directOnly, all.length + 1, directOnly, 5)).toBeLessThan(DEFAULT_DUPLICATE_THRESHOLD);
  });

  it('never lets a group straddle two splits and is reproducible from its seed', () => {
    const groups = groupNearDuplicates(sigs);
    const a = splitByGroups(items, groups.groupOf, { seed: 7, fractions: { train: 0.6, val: 0.2, test: 0.2 } });
    const b = splitByGroups(items, groups.groupOf, { seed: 7, fractions: { train: 0.6, val: 0.2, test: 0.2 } });
    const c = splitByGroups(items, groups.groupOf, { seed: 8, fractions: { train: 0.6, val: 0.2, test: 0.2 } });
    expect(straddlingGroups(a.assignments)).toEqual([]);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(c.fingerprint).not.toBe(a.fingerprint);
    const counts = { train: 0, val: 0, test: 0 };
    for (const x of a.assignments) counts[x.split]++;
    expect(counts.train).toBeGreaterThan(counts.val);
    expect(counts.val).toBeGreaterThan(0);
    expect(counts.test).toBeGreaterThan(0);
  });

  it('detects straddling when an assignment is tampered with', () => {
    const groups = groupNearDuplicates(sigs);
    const split = splitByGroups(items, groups.groupOf, { seed: 1, fractions: { train: 0.5, val: 0.25, test: 0.25 } });
    const copy = split.assignments[40]!;
    const tampered = split.assignments.map((x, i) => (i === 40 ? { ...x, split: copy.split === 'train' ? ('test' as const) : ('train' as const) } : x));
    expect(straddlingGroups(tampered)).toEqual([copy.group]);
  });

  it('finds which query images have a near-duplicate in a reference set', () => {
    const query = signatures(pixels.subarray(40 * side * side), copies.length, side);
    const reference = signatures(pixels.subarray(0, 20 * side * side), 20, side);
    // Copies of slices 0, 4, 8, 12, 16 have their original among the first 20.
    expect(hasNearDuplicateIn(query, reference)).toEqual([true, true, true, true, true, false, false, false, false, false]);
  });
});

describe('extra training data', () => {
  const side = 32;
  const params = defaultPreprocessParams(side);
  const geometry = { originalWidth: side, originalHeight: side, squareX: 0, squareY: 0, squareSide: side };
  function dataset(images: Uint8Array[], labels: string[], prefix: string): PreprocessedDataset {
    const pixels = new Uint8Array(images.length * side * side);
    images.forEach((p, i) => pixels.set(p, i * side * side));
    const files = images.map((_, i) => ({ path: `/${prefix}/${i}.png`, relPath: `${labels[i]}/${i}.png`, label: labels[i] as string, size: 1, mtimeMs: 0 }));
    return { params, files, pixels, geometries: images.map(() => geometry), rejected: [] };
  }
  const mainImages = Array.from({ length: 6 }, (_, i) => slice(100 + i, side));
  const main = dataset(mainImages, ['tumor', 'tumor', 'tumor', 'no_tumor', 'no_tumor', 'no_tumor'], 'main');
  // Extra: a copy of main image 1, a copy of main image 4, and three new slices (two of them copies of each other).
  const fresh = slice(300, side);
  const extraImages = [recontrast(mainImages[1]!, 0.9, 10), mainImages[4]!, fresh, recontrast(fresh, 1.1, -5), slice(301, side)];
  const extra = dataset(extraImages, ['tumor', 'no_tumor', 'tumor', 'tumor', 'no_tumor'], 'extra');

  it('adds only images whose near-duplicate group holds no image of the main set', () => {
    const merged = mergeExtraTrainingData(main, extra, '/extra', DEFAULT_DUPLICATE_THRESHOLD);
    expect(merged.record.droppedNearDuplicates).toBe(2);
    expect(merged.record.kept).toEqual({ tumor: 2, no_tumor: 1 });
    expect(merged.record.files.map((f) => f.relPath)).toEqual(['tumor/2.png', 'tumor/3.png', 'no_tumor/4.png']);
    expect(merged.extraIndices).toEqual([6, 7, 8]);
    expect(merged.dataset.files).toHaveLength(9);
    const area = side * side;
    expect(merged.dataset.pixels.subarray(6 * area, 7 * area)).toEqual(fresh);
    expect(merged.dataset.pixels.subarray(0, 6 * area)).toEqual(main.pixels);
  });

  it('leaves out an extra image whose patient or DICOM study has images in the main set, and its copies', () => {
    const owned = (d: PreprocessedDataset, owners: ({ patient?: string; study?: string } | undefined)[]): PreprocessedDataset => ({
      ...d,
      files: d.files.map((f, i) => ({ ...f, ...owners[i] })),
    });
    const mainOwned = owned(main, [{ patient: 'A' }, {}, {}, { study: '1.2.3' }]);
    const more = dataset([...extraImages, slice(302, side), slice(303, side)], ['tumor', 'no_tumor', 'tumor', 'tumor', 'no_tumor', 'tumor', 'no_tumor'], 'extra');
    // 2 is a new slice of main's patient A, and 3 its copy (filed under patient B); 4 is of main's
    // study 1.2.3; 5 and 6 belong to patients main does not hold.
    const extraOwned = owned(more, [undefined, undefined, { patient: 'A' }, { patient: 'B' }, { patient: 'C', study: '1.2.3' }, { patient: 'D' }]);
    const merged = mergeExtraTrainingData(mainOwned, extraOwned, '/extra', DEFAULT_DUPLICATE_THRESHOLD);
    expect(merged.record.droppedNearDuplicates).toBe(2);
    expect(merged.record.droppedSamePatient).toBe(3);
    expect(merged.record.files.map((f) => f.relPath)).toEqual(['tumor/5.png', 'no_tumor/6.png']);
  });

  it('compares the images before contrast equalisation, where a dataset has them', () => {
    // Model inputs that share nothing (noise), over the images near-duplicate search must compare.
    const noisy = (d: PreprocessedDataset, seed: number): PreprocessedDataset => {
      const random = createRandom(seed);
      return { ...d, pixels: d.pixels.map(() => Math.floor(random() * 256)), matchPixels: d.pixels };
    };
    const [equalisedMain, equalisedExtra] = [noisy(main, 1), noisy(extra, 2)];
    const merged = mergeExtraTrainingData(equalisedMain, equalisedExtra, '/extra', DEFAULT_DUPLICATE_THRESHOLD);
    expect(merged.record.files.map((f) => f.relPath)).toEqual(['tumor/2.png', 'tumor/3.png', 'no_tumor/4.png']);
    const area = side * side;
    expect(merged.dataset.matchPixels?.subarray(6 * area, 7 * area)).toEqual(fresh);
    expect(merged.dataset.pixels.subarray(6 * area, 7 * area)).toEqual(equalisedExtra.pixels.subarray(2 * area, 3 * area));
    const { dataset: kept, record } = withoutNearDuplicatesOf(equalisedExtra, equalisedMain, '/main', DEFAULT_DUPLICATE_THRESHOLD);
    expect(record.dropped).toEqual(['tumor/0.png', 'no_tumor/1.png']);
    expect(kept.matchPixels?.subarray(0, area)).toEqual(fresh);
    // The other way round: copies among the model inputs only are not copies.
    const swapped = (d: PreprocessedDataset, seed: number): PreprocessedDataset => ({ ...d, matchPixels: noisy(d, seed).pixels });
    expect(withoutNearDuplicatesOf(swapped(extra, 2), swapped(main, 1), '/main', DEFAULT_DUPLICATE_THRESHOLD).record.dropped).toEqual([]);
  });

  it('refuses data preprocessed to another size', () => {
    const other = { ...extra, params: defaultPreprocessParams(64) };
    expect(() => mergeExtraTrainingData(main, other, '/extra', DEFAULT_DUPLICATE_THRESHOLD)).toThrow(/preprocessed like/);
  });

  it('holds out of a training folder every image that resembles another folder', () => {
    const { dataset: kept, record } = withoutNearDuplicatesOf(extra, main, '/main', DEFAULT_DUPLICATE_THRESHOLD);
    expect(record).toEqual({ dir: '/main', compared: 6, dropped: ['tumor/0.png', 'no_tumor/1.png'] });
    expect(kept.files.map((f) => f.relPath)).toEqual(['tumor/2.png', 'tumor/3.png', 'no_tumor/4.png']);
    const area = side * side;
    expect(kept.pixels).toHaveLength(3 * area);
    expect(kept.pixels.subarray(0, area)).toEqual(fresh);
    expect(kept.geometries).toHaveLength(3);
    // Nothing that is left has a near-duplicate among the other folder's images.
    expect(hasNearDuplicateIn(signatures(kept.pixels, 3, side), signatures(main.pixels, 6, side))).toEqual([false, false, false]);
    expect(withoutNearDuplicatesOf(main, extra, '/extra', DEFAULT_DUPLICATE_THRESHOLD).record.dropped).toEqual(['tumor/1.png', 'no_tumor/4.png']);
  });
});

describe('reusing a saved split', () => {
  const items: SplitItem[] = [
    { relPath: 'yes/a.jpg', label: 'tumor' },
    { relPath: 'yes/b.jpg', label: 'tumor' },
    { relPath: 'no/c.jpg', label: 'no_tumor' },
    { relPath: 'no/d.jpg', label: 'no_tumor' },
    { relPath: 'no/e.jpg', label: 'no_tumor' },
  ];
  const saved = {
    fingerprint: 'f',
    assignments: [
      { relPath: 'no/e.jpg', label: 'no_tumor', split: 'val' as const },
      { relPath: 'yes/a.jpg', label: 'tumor', split: 'train' as const },
      { relPath: 'yes/b.jpg', label: 'tumor', split: 'test' as const },
      { relPath: 'no/c.jpg', label: 'no_tumor', split: 'train' as const },
      { relPath: 'no/d.jpg', label: 'no_tumor', split: 'test' as const },
    ],
  };
  const options = { seed: 1, fractions: { train: 0.72, val: 0.13, test: 0.15 } };

  it('puts every image where the saved split put it, whatever the order', () => {
    const reused = reuseSplit(items, Int32Array.from([0, 1, 2, 3, 4]), saved, options);
    expect(reused.assignments.map((a) => a.split)).toEqual(['train', 'test', 'train', 'test', 'val']);
    expect(reused.movedOutOfTraining).toEqual([]);
    expect(straddlingGroups(reused.assignments)).toEqual([]);
  });

  it('moves training images whose group this run found held out, and only those', () => {
    // a (train) and b (test) form one group here; c (train) and e (val) another; d is alone.
    const reused = reuseSplit(items, Int32Array.from([0, 0, 1, 2, 1]), saved, options);
    expect(reused.assignments.map((a) => a.split)).toEqual(['test', 'test', 'val', 'test', 'val']);
    expect(reused.movedOutOfTraining).toEqual(['yes/a.jpg', 'no/c.jpg']);
    expect(straddlingGroups(reused.assignments)).toEqual([]);
  });

  it('moves validation images into training, after the groups have gone to their most held-out split', () => {
    // c (train) and e (val) form one group: it goes to validation, then joins training whole; b stays in test.
    const reused = reuseSplit(items, Int32Array.from([0, 1, 2, 3, 2]), saved, options);
    const joined = joinValidationToTraining(reused);
    expect(joined.assignments.map((a) => a.split)).toEqual(['train', 'test', 'train', 'test', 'train']);
    expect(joined.joinedTraining).toBe(2);
    expect(joined.fingerprint).not.toBe(reused.fingerprint);
    expect(straddlingGroups(joined.assignments)).toEqual([]);
    // The same as reusing a saved split that had no validation images to begin with.
    const withoutValidation = { assignments: saved.assignments.map((a) => (a.split === 'val' ? { ...a, split: 'train' as const } : a)) };
    expect(reuseSplit(items, Int32Array.from([0, 1, 2, 3, 2]), withoutValidation, options).fingerprint).toBe(joined.fingerprint);
  });

  it('refuses a saved split that lists other images or other labels', () => {
    const groups = Int32Array.from([0, 1, 2, 3, 4]);
    const fewer = { assignments: saved.assignments.slice(1) };
    expect(() => reuseSplit(items, groups, fewer, options)).toThrow(/1 images are not in it \(no\/e\.jpg\)/);
    expect(() => reuseSplit(items.slice(0, 4), Int32Array.from([0, 1, 2, 3]), saved, options)).toThrow(/1 of its images are not in the data \(no\/e\.jpg\)/);
    const relabelled = { assignments: saved.assignments.map((a) => (a.relPath === 'yes/a.jpg' ? { ...a, label: 'no_tumor' } : a)) };
    expect(() => reuseSplit(items, groups, relabelled, options)).toThrow(/yes\/a\.jpg \(no_tumor → tumor\)/);
  });
});
