/**
 * A head-like grey test image: a textured ellipse on black, with one pixel at 255 so that the image
 * spans 0–255 (windowing such an image from its lowest to its highest value gives it back unchanged).
 */
export function headPhantom(width: number, height: number): Uint8Array {
  const pixels = new Uint8Array(width * height);
  const [cx, cy, rx, ry] = [width / 2, height / 2, width * 0.42, height * 0.42];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
      pixels[y * width + x] = inside ? 30 + ((x * 11 + y * 5) % 226) : 0;
    }
  }
  pixels[0] = 255;
  return pixels;
}
