/**
 * Maps values linearly from their lowest to their highest onto the grey levels 0–255, as a viewer's
 * default window does; an image of one value becomes black.
 */
export function stretchToBytes(values: ArrayLike<number>): Uint8Array {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const out = new Uint8Array(values.length);
  if (!(high > low)) return out;
  const scale = 255 / (high - low);
  for (let i = 0; i < values.length; i++) out[i] = Math.round(((values[i] as number) - low) * scale);
  return out;
}
