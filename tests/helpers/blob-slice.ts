import { createRandom } from '../../packages/model/src/util/random.js';

/** A synthetic side × side grey "slice": smooth random blobs, distinct per seed (no two alike enough to count as copies). */
export function blobSlice(seed: number, side = 32): Uint8Array {
  const random = createRandom(seed);
  const blobs = Array.from({ length: 6 }, () => ({ x: random() * side, y: random() * side, r: 3 + random() * 8, v: 60 + random() * 190 }));
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let v = 0;
      for (const b of blobs) v += b.v * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r));
      out[y * side + x] = Math.min(255, v);
    }
  }
  return out;
}
