import sharp from 'sharp';

/** A grey PNG of seeded uniform noise: every pixel stands out, so it passes the blank-image check, yet shows no head. */
export async function noiseImage(side = 256, seed = 1): Promise<Uint8Array> {
  let state = seed;
  const pixels = Buffer.alloc(side * side);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(((state = (state * 16807) % 2147483647) / 2147483647) * 256);
  return new Uint8Array(await sharp(pixels, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer());
}
