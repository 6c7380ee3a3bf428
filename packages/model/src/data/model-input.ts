/** Grey level → model input value. One table, used by training and serving alike, so both see identical floats. */
const SCALE = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/** Scales 8-bit pixels to [0, 1] floats (into `out` at `offset` when given). */
export function toModelInput(pixels: Uint8Array, out = new Float32Array(pixels.length), offset = 0): Float32Array {
  for (let i = 0; i < pixels.length; i++) out[offset + i] = SCALE[pixels[i] as number] as number;
  return out;
}

/** The model input for images `indices` of a preprocessed pixel array (n × side × side), as training builds it. */
export function inputBatch(pixels: Uint8Array, indices: ArrayLike<number>, side: number): Float32Array {
  const area = side * side;
  const out = new Float32Array(indices.length * area);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] as number;
    toModelInput(pixels.subarray(index * area, (index + 1) * area), out, i * area);
  }
  return out;
}
