import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { toModelInput } from '../data/model-input.js';
import { buildClassifier, CAM_LAYER } from './architecture.js';
import { basePieces, combinePieces, meanOfMembers, rotationPieces, type PieceResult } from './forward-pieces.js';
import { ForwardPass } from './forward-pass.js';
import { buildLocator, buildLocatorHead } from './locator.js';

const SIZE = 32;

function randomPixels(count: number, seed: number): Uint8Array {
  let a = seed;
  return Uint8Array.from({ length: count * SIZE * SIZE }, () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return a % 256;
  });
}

/** The test-time-flip definition, one pass per orientation: mean of f(x) and the flipped-back f(mirror x). */
function referenceFlip(predict: (x: tf.Tensor4D) => tf.Tensor, x: tf.Tensor4D, spatial: boolean): Float32Array {
  return tf.tidy(() => {
    const mirrored = predict(tf.reverse(x, 2));
    return predict(x).add(spatial ? tf.reverse(mirrored, 2) : mirrored).div(2).dataSync() as Float32Array;
  });
}

/** Index of the largest of each row of `classes` values. */
function argmaxes(values: Float32Array, classes: number): number[] {
  return Array.from({ length: values.length / classes }, (_, i) => {
    const row = Array.from(values.subarray(i * classes, (i + 1) * classes));
    return row.indexOf(Math.max(...row));
  });
}

describe('ForwardPass with test-time flips', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('averages each image with its mirror image, as two separate passes would', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 3, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    const forward = new ForwardPass(model, { flip: true });
    const pixels = randomPixels(3, 7);
    const out = forward.run(pixels, 3, -1);
    const x = tf.tensor4d(toModelInput(pixels), [3, SIZE, SIZE, 1]);
    const expected = referenceFlip((input) => model.predict(input) as tf.Tensor, x, false);
    expect(out.probabilities).toHaveLength(9);
    out.probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i] as number, 5));
    // The class activation map comes from the flip-averaged features of the last block.
    const features = tf.model({ inputs: model.inputs, outputs: model.getLayer(CAM_LAYER).output as tf.SymbolicTensor });
    const side = features.outputs[0]!.shape[1] as number;
    expect(out.camSide).toBe(side);
    expect(out.cams).toHaveLength(3 * side * side);
    expect(out.cams.every((v) => v >= 0)).toBe(true);
    x.dispose();
    forward.dispose();
  });

  it('averages the locator map with the mirrored map flipped back', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    const locator = buildLocator(model);
    const forward = new ForwardPass(model, { flip: true }, locator);
    const pixels = randomPixels(2, 11);
    const before = tf.memory().numTensors;
    const out = forward.run(pixels, 2, -1);
    expect(tf.memory().numTensors).toBe(before);
    const x = tf.tensor4d(toModelInput(pixels), [2, SIZE, SIZE, 1]);
    const side = out.camSide;
    const expected = referenceFlip((input) => (locator.predict(input) as tf.Tensor).reshape([-1, side, side]), x, true);
    expect(out.cams).toHaveLength(2 * side * side);
    out.cams.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 6));
    // Each image's map is still a distribution over positions.
    expect(out.cams.slice(0, side * side).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    x.dispose();
    // This locator shares the classifier's layers (a served one is loaded separately): dispose once.
    locator.dispose();
  });

  it("reads a locator head's map off the classifier's own features: the mean of the image's and the flipped-back mirror's", () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    const head = buildLocatorHead(model, 3);
    const forward = new ForwardPass(model, { flip: true }, head);
    expect(forward.plan.locator).toBe('head');
    const pixels = randomPixels(2, 17);
    const before = tf.memory().numTensors;
    const out = forward.run(pixels, 2, -1);
    expect(tf.memory().numTensors).toBe(before);
    const x = tf.tensor4d(toModelInput(pixels), [2, SIZE, SIZE, 1]);
    const features = tf.model({ inputs: model.inputs, outputs: model.getLayer(CAM_LAYER).output as tf.SymbolicTensor });
    const side = out.camSide;
    expect(side).toBe(features.outputs[0]!.shape[1]);
    const expected = referenceFlip((input) => (head.predict(features.predict(input) as tf.Tensor) as tf.Tensor).reshape([-1, side, side]), x, true);
    out.cams.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5));
    expect(out.cams.slice(side * side).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    // The classification is the classifier's alone.
    const plain = referenceFlip((input) => model.predict(input) as tf.Tensor, x, false);
    out.probabilities.forEach((p, i) => expect(p).toBeCloseTo(plain[i] as number, 5));
    x.dispose();
    forward.dispose();
  });

  it('averages the probabilities over rotated views too, and keeps the map of the image and its mirror', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 3, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    const rotating = new ForwardPass(model, { flip: true, rotations: [90] });
    const mirroring = new ForwardPass(model, { flip: true });
    const pixels = randomPixels(2, 5);
    const before = tf.memory().numTensors;
    const out = rotating.run(pixels, 2, -1);
    expect(tf.memory().numTensors).toBe(before);
    // The four views, each in a pass of its own: a quarter turn is a transpose and a reversal.
    const expected = tf.tidy(() => {
      const x = tf.tensor4d(toModelInput(pixels), [2, SIZE, SIZE, 1]);
      const turned = tf.transpose(x, [0, 2, 1, 3]);
      const views = [x, tf.reverse(x, 2), tf.reverse(turned, 1), tf.reverse(turned, [1, 2])];
      return tf.addN(views.map((view) => model.predict(view) as tf.Tensor)).div(4).dataSync() as Float32Array;
    });
    out.probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i] as number, 5));
    const flipOnly = mirroring.run(pixels, 2, -1);
    expect(Array.from(out.probabilities)).not.toEqual(Array.from(flipOnly.probabilities));
    // Same class asked for, same map: rotated feature maps would not line up with the image.
    const maps = mirroring.run(pixels, 2, argmaxes(out.probabilities, 3));
    out.cams.forEach((v, i) => expect(v).toBeCloseTo(maps.cams[i] as number, 5));
    rotating.dispose();
  });

  it('adds the rotated copies only for images whose top probability from the image and mirror is below the bound', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    // Seeded kernels (the rest start as constants): the same outputs on every run, so the bound below always splits the images.
    tf.tidy(() => model.setWeights(model.getWeights().map((w, i) => (w.rank > 1 ? tf.randomNormal(w.shape, 0, 0.3, 'float32', 70 + i) : w))));
    const mirroring = new ForwardPass(model, { flip: true });
    const everyImage = new ForwardPass(model, { flip: true, rotations: [90] });
    const pixels = randomPixels(4, 13);
    const mirrored = mirroring.run(pixels, 4, -1).probabilities;
    const rotated = everyImage.run(pixels, 4, -1).probabilities;
    // A bound between the images' top probabilities: those below it take the rotations, the rest not.
    const tops = [0, 1, 2, 3].map((i) => Math.max(mirrored[2 * i] as number, mirrored[2 * i + 1] as number));
    const bound = [...tops].sort((a, b) => a - b).slice(1, 3).reduce((a, b) => a + b) / 2;
    const someImages = new ForwardPass(model, { flip: true, rotations: [90], rotateBelow: bound });
    const before = tf.memory().numTensors;
    const out = someImages.run(pixels, 4, -1).probabilities;
    expect(tf.memory().numTensors).toBe(before);
    tops.forEach((top, i) => {
      const expected = top < bound ? rotated : mirrored;
      for (const c of [0, 1]) expect(out[2 * i + c]).toBeCloseTo(expected[2 * i + c] as number, 5);
    });
    expect(tops.filter((top) => top < bound)).toHaveLength(2);
    expect(Math.max(...tops.map((top, i) => (top < bound ? Math.abs((rotated[2 * i] as number) - (mirrored[2 * i] as number)) : 0)))).toBeGreaterThan(1e-4);
    mirroring.dispose();
  });

  it('runs one pass per image without flips', () => {
    const model = buildClassifier({ inputSize: SIZE, numClasses: 2, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });
    const forward = new ForwardPass(model, { flip: false });
    const pixels = randomPixels(2, 3);
    const out = forward.run(pixels, 2, 0);
    const expected = tf.tidy(() => (model.predict(tf.tensor4d(toModelInput(pixels), [2, SIZE, SIZE, 1])) as tf.Tensor).dataSync());
    out.probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i] as number, 6));
    forward.dispose();
  });
});

const classifier = (classes: number) => buildClassifier({ inputSize: SIZE, numClasses: classes, filters: [4, 8], convsPerBlock: 1, dropout: 0, l2: 0 });

/** Runs a split forward pass the way a pool of model copies does: every piece apart, then combined. */
function splitRun(forward: ForwardPass, pixels: Uint8Array, count: number, withMaps: boolean, splitViews = false) {
  const { plan } = forward;
  const base = basePieces(plan, withMaps, splitViews).map((piece) => forward.runPiece(pixels, count, piece));
  const rotationsAsked = rotationPieces(plan, meanOfMembers(plan, base));
  const rotated = rotationsAsked.map((piece) => forward.runPiece(pixels, count, piece));
  return { ...combinePieces(plan, base, rotated), base, rotated, rotationsAsked };
}

describe('a forward pass split into pieces', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('gives what the whole pass gives: an ensemble with rotated copies below a bound and a temperature', () => {
    const members = [classifier(3), classifier(3)];
    const mirrored = new ForwardPass(members, { flip: true });
    const pixels = randomPixels(4, 21);
    const tops = Array.from({ length: 4 }, (_, i) => Math.max(...mirrored.run(pixels, 4, -1).probabilities.subarray(3 * i, 3 * i + 3)));
    // A bound between the images' top probabilities, so that some images take the rotations and some do not.
    const bound = [...tops].sort((a, b) => a - b).slice(1, 3).reduce((a, b) => a + b) / 2;
    const forward = new ForwardPass(members, { flip: true, rotations: [-7, 90], rotateBelow: bound }, undefined, 0.7);
    const whole = forward.run(pixels, 4, -1);
    const before = tf.memory().numTensors;
    const split = splitRun(forward, pixels, 4, false);
    expect(tf.memory().numTensors).toBe(before);
    // Two classifiers, two angles: four rotation pieces, for exactly the two uncertain images.
    expect(split.rotationsAsked).toHaveLength(4);
    expect(split.rotationsAsked.every((piece) => piece.kind === 'rotated' && piece.images.length === 2)).toBe(true);
    split.probabilities.forEach((p, i) => expect(p).toBeCloseTo(whole.probabilities[i] as number, 6));
    expect(split.maps).toBeUndefined();
    // The rotations moved the uncertain images' probabilities: the pieces did some work.
    const withoutRotations = combinePieces({ ...forward.plan, views: { flip: true } }, split.base, []).probabilities;
    expect(Math.max(...split.probabilities.map((p, i) => Math.abs(p - (withoutRotations[i] as number))))).toBeGreaterThan(1e-4);
    mirrored.dispose();
  });

  it("gives the locator's maps from its own piece, and asks for no rotations when every image is certain", () => {
    const model = classifier(2);
    const locator = buildLocator(model);
    const forward = new ForwardPass(model, { flip: true, rotations: [5], rotateBelow: 0 }, locator);
    const pixels = randomPixels(2, 5);
    const whole = forward.run(pixels, 2, 0);
    const split = splitRun(forward, pixels, 2, true);
    expect(split.base.map((r) => r.piece.kind)).toEqual(['member', 'locator']);
    expect(split.rotationsAsked).toEqual([]);
    expect(split.maps?.side).toBe(whole.camSide);
    split.maps?.values.forEach((v, i) => expect(v).toBeCloseTo(whole.cams[i] as number, 6));
    split.probabilities.forEach((p, i) => expect(p).toBeCloseTo(whole.probabilities[i] as number, 6));
    expect(basePieces(forward.plan, false).map((piece) => piece.kind)).toEqual(['member']);
    locator.dispose();
  });

  it("gives a locator head's maps from the first classifier's piece, with no locator piece", () => {
    const members = [classifier(3), classifier(3)];
    const forward = new ForwardPass(members, { flip: true, rotations: [5], rotateBelow: 1.1 }, buildLocatorHead(members[0]!, 4), 0.8);
    const pixels = randomPixels(3, 23);
    const whole = forward.run(pixels, 3, 0);
    const before = tf.memory().numTensors;
    const split = splitRun(forward, pixels, 3, true);
    expect(tf.memory().numTensors).toBe(before);
    expect(split.base.map((r) => r.piece)).toEqual([{ kind: 'member', member: 0, maps: true }, { kind: 'member', member: 1 }]);
    expect(split.rotationsAsked).toHaveLength(2);
    expect(split.maps?.side).toBe(whole.camSide);
    split.maps?.values.forEach((v, i) => expect(v).toBeCloseTo(whole.cams[i] as number, 6));
    split.probabilities.forEach((p, i) => expect(p).toBeCloseTo(whole.probabilities[i] as number, 6));
    expect(basePieces(forward.plan, false)).toEqual([{ kind: 'member', member: 0 }, { kind: 'member', member: 1 }]);
    // One piece per view and classifier: the same probabilities and maps again.
    const byView = splitRun(forward, pixels, 3, true, true);
    expect(byView.base.map((r) => r.piece)).toEqual([
      { kind: 'member', member: 0, maps: true, view: 'image' },
      { kind: 'member', member: 0, maps: true, view: 'mirror' },
      { kind: 'member', member: 1, view: 'image' },
      { kind: 'member', member: 1, view: 'mirror' },
    ]);
    byView.maps?.values.forEach((v, i) => expect(v).toBeCloseTo(whole.cams[i] as number, 6));
    byView.probabilities.forEach((p, i) => expect(p).toBeCloseTo(whole.probabilities[i] as number, 6));
    // A view's own map differs from the average: the mirror's piece did its share.
    expect(Array.from(byView.base[1]!.maps!)).not.toEqual(Array.from(byView.maps!.values));
    expect(() => combinePieces(forward.plan, byView.base.slice(1), byView.rotated)).toThrow(/expected 2 classifier pieces, got 1/);
    expect(() => forward.runPiece(pixels, 3, { kind: 'member', member: 1, maps: true })).toThrow(/classifier 1 carries no locator head/);
    expect(() => forward.runPiece(pixels, 3, { kind: 'locator' })).toThrow(/no locator network/);
    forward.dispose();
  });

  it('refuses to combine when a rotation piece is missing or a classifier piece is', () => {
    const forward = new ForwardPass([classifier(2), classifier(2)], { flip: true, rotations: [10] });
    const pixels = randomPixels(1, 9);
    const { base, rotated } = splitRun(forward, pixels, 1, false);
    expect(() => combinePieces(forward.plan, base, rotated.slice(1))).toThrow(/missing the rotated piece of classifier 0 at 10°/);
    expect(() => combinePieces(forward.plan, base.slice(1), rotated)).toThrow(/expected 2 classifier pieces, got 1/);
    const wrongImages: PieceResult[] = rotated.map((r) => ({ ...r, piece: { kind: 'rotated', member: (r.piece as { member: number }).member, angle: 10, images: [1] } }));
    expect(() => combinePieces(forward.plan, base, wrongImages)).toThrow(/missing the rotated piece/);
    forward.dispose();
  });
});
