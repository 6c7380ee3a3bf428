import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { heatColour, heatmapRgba, renderOverlay } from './overlay.js';

describe('heatmap overlay', () => {
  it('colours every value as the ramp does, to within one level per channel', () => {
    const values = Float32Array.from({ length: 2001 }, (_, i) => i / 2000);
    const rgba = heatmapRgba(values);
    values.forEach((v, i) => {
      heatColour(v).forEach((channel, c) => expect(Math.abs((rgba[i * 4 + c] as number) - channel)).toBeLessThanOrEqual(1));
    });
  });

  it('clamps values outside [0, 1]', () => {
    expect([...heatmapRgba(Float32Array.of(-3, 7))]).toEqual([...heatColour(0), ...heatColour(1)]);
  });

  it('renders a PNG of the original size with the hot region in red and the box outlined', async () => {
    const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#404040' } }).jpeg().toBuffer();
    const data = new Float32Array(64 * 48);
    for (let y = 10; y < 20; y++) for (let x = 30; x < 40; x++) data[y * 64 + x] = 1;
    const png = await renderOverlay(image, {
      label: 'tumor',
      probabilities: { tumor: 0.9, no_tumor: 0.1 },
      box: { x: 5, y: 5, width: 10, height: 10 },
      heatmap: { width: 64, height: 48, data },
      timings: { preprocessMs: 0, modelMs: 0, heatmapMs: 0 },
    });
    const { data: pixels, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.format, info.width, info.height]).toEqual(['raw', 64, 48]);
    const at = (x: number, y: number) => Array.from(pixels.subarray((y * 64 + x) * info.channels, (y * 64 + x) * info.channels + 3));
    const [r, g, b] = at(35, 15);
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(100);
    expect(b).toBeLessThan(100);
    expect(at(55, 40)).toEqual([64, 64, 64]); // cold and outside the box: the image itself
    expect(at(5, 10)[1]).toBeGreaterThan(150); // on the box's left edge: green
    expect(at(14, 15)[1]).toBeGreaterThan(150); // on its right edge (x = 15, 2 pixels wide)
    expect(at(10, 10)).toEqual([64, 64, 64]); // inside the box, cold: untouched
    expect(at(10, 17)).toEqual([64, 64, 64]); // below it, past the stroke
  });

  it('stretches a coarser heatmap over the whole image', async () => {
    const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#404040' } }).jpeg().toBuffer();
    const data = new Float32Array(16 * 12);
    for (let y = 0; y < 6; y++) for (let x = 8; x < 16; x++) data[y * 16 + x] = 1; // the top-right quarter
    const png = await renderOverlay(image, {
      label: 'tumor',
      probabilities: { tumor: 0.9, no_tumor: 0.1 },
      box: null,
      heatmap: { width: 16, height: 12, data },
      timings: { preprocessMs: 0, modelMs: 0, heatmapMs: 0 },
    });
    const { data: pixels, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => Array.from(pixels.subarray((y * 64 + x) * info.channels, (y * 64 + x) * info.channels + 3));
    expect([info.width, info.height]).toEqual([64, 48]);
    expect(at(56, 6)[0]).toBeGreaterThan(150);
    expect(at(8, 40)).toEqual([64, 64, 64]);
  });
});
