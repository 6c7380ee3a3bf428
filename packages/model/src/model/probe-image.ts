import sharp from 'sharp';

/**
 * A synthetic, deterministic probe image (an ellipse with a bright blob, drawn from numbers only):
 * a model's artifact records what it predicts for it, so any copy of the artifact can be verified
 * after loading without shipping patient data.
 */
export async function renderProbeImage(side = 192): Promise<Buffer> {
  const pixels = Buffer.alloc(side * side);
  const c = side / 2;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const head = ((x - c) / (0.38 * side)) ** 2 + ((y - c) / (0.45 * side)) ** 2;
      const blob = ((x - 0.62 * side) / (0.09 * side)) ** 2 + ((y - 0.4 * side) / (0.11 * side)) ** 2;
      let v = head <= 1 ? 90 + 40 * Math.sin(x / 7) * Math.cos(y / 9) : 0;
      if (head > 0.85 && head <= 1) v = 200;
      if (blob <= 1) v = 235;
      pixels[y * side + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer();
}
