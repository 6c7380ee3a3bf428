import sharp from 'sharp';
import type { Prediction } from './loaded-model.js';
import { decodeRgb } from '../data/decode-image.js';

/** Colour for a heat value in [0, 1]: transparent blue → yellow → red, a ramp radiologists read easily. */
export function heatColour(v: number): [number, number, number, number] {
  const r = Math.round(255 * Math.min(1, 2 * v));
  const g = Math.round(255 * Math.min(1, 2 * (1 - v)) * Math.min(1, 2 * v));
  const b = Math.round(255 * Math.max(0, 1 - 2 * v));
  const a = Math.round(200 * Math.max(0, (v - 0.2) / 0.8));
  return [r, g, b, a];
}

const RAMP_STEPS = 1024;
/** The ramp sampled finely enough that neighbouring entries differ by at most one level per channel. */
const RAMP = Uint8Array.from({ length: RAMP_STEPS * 4 }, (_, i) => heatColour(Math.floor(i / 4) / (RAMP_STEPS - 1))[i % 4] as number);

/** The ramp as one 32-bit word per step, in the byte order of this machine's typed arrays. */
const RAMP_WORDS = new Uint32Array(RAMP.buffer, RAMP.byteOffset, RAMP_STEPS);

/** RGBA pixels of a heatmap, through the ramp. */
export function heatmapRgba(data: Float32Array): Buffer {
  const rgba = Buffer.alloc(data.length * 4);
  const words = new Uint32Array(rgba.buffer, rgba.byteOffset, data.length);
  const top = RAMP_STEPS - 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    // NaN falls to the first step, which is transparent: a broken map shows nothing.
    words[i] = RAMP_WORDS[v > 0 ? (v < 1 ? Math.round(v * top) : top) : 0] as number;
  }
  return rgba;
}

/** Box outline colour, a green that stands out from the ramp. */
const BOX_RGB = [0x00, 0xff, 0x66] as const;

/** Blends straight-alpha RGBA over opaque pixels of `channels` channels, in place. */
function blendOver(pixels: Buffer, channels: number, rgba: Buffer): void {
  for (let i = 0, p = 0; i < rgba.length; i += 4, p += channels) {
    const alpha = rgba[i + 3] as number;
    if (alpha === 0) continue;
    for (let c = 0; c < 3; c++) {
      const below = pixels[p + c] as number;
      pixels[p + c] = below + Math.round((((rgba[i + c] as number) - below) * alpha) / 255);
    }
  }
}

/** Paints the outline of `box` (a stroke centred on its edges, like an SVG rectangle's), in place. */
function strokeBox(pixels: Buffer, width: number, height: number, channels: number, box: NonNullable<Prediction['box']>, stroke: number): void {
  const half = stroke / 2;
  const [left, right, top, bottom] = [box.x, box.x + box.width, box.y, box.y + box.height];
  // A pixel belongs to a band when its centre does.
  const within = (at: number, from: number, to: number) => at + 0.5 >= from && at + 0.5 < to;
  const onEdge = (at: number, edge: number) => within(at, edge - half, edge + half);
  for (let y = Math.max(0, Math.floor(top - half)); y < Math.min(height, Math.ceil(bottom + half)); y++) {
    const onRow = onEdge(y, top) || onEdge(y, bottom);
    for (let x = Math.max(0, Math.floor(left - half)); x < Math.min(width, Math.ceil(right + half)); x++) {
      if (!onRow && !onEdge(x, left) && !onEdge(x, right)) continue;
      if (!within(x, left - half, right + half) || !within(y, top - half, bottom + half)) continue;
      const p = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) pixels[p + c] = BOX_RGB[c] as number;
    }
  }
}

/** A PNG of the image (the frame the prediction was made on) with the heatmap blended over it and the box outlined. */
export async function renderOverlay(image: Uint8Array, prediction: Prediction, frame = 0): Promise<Buffer> {
  // One decode to raw pixels gives the size too; the drawing happens on them, and one encode follows.
  const { width, height, channels, data: pixels } = await decodeRgb(image, frame);
  const heatmap = prediction.heatmap;
  if (heatmap) {
    const rgba = heatmapRgba(heatmap.data);
    // Maps of images up to HEATMAP_MAX_SIDE are at the image's size already: no resampling pass.
    const sameSize = heatmap.width === width && heatmap.height === height;
    const layer = sameSize
      ? rgba
      : await sharp(rgba, { raw: { width: heatmap.width, height: heatmap.height, channels: 4 } }).resize(width, height, { fit: 'fill', kernel: 'cubic' }).raw().toBuffer();
    blendOver(pixels, channels, layer);
  }
  if (prediction.box) strokeBox(pixels, width, height, channels, prediction.box, Math.max(2, Math.round(Math.max(width, height) / 200)));
  // zlib level 3 instead of 6: a 256-pixel overlay encodes in half the time for about 10% more bytes.
  return sharp(pixels, { raw: { width, height, channels } }).png({ compressionLevel: 3 }).toBuffer();
}
