import sharp from 'sharp';
import { decodeGrey, type GreyImage } from './decode-image.js';
import { unsupportedImage } from './image-decode-error.js';

/**
 * Preprocessing parameters. Bump PREPROCESS_VERSION whenever the pixels this module produces change:
 * a model is only valid with the preprocessing it was trained with, and the manifest records both.
 */
export const PREPROCESS_VERSION = 1;

export interface PreprocessParams {
  version: number;
  /** Side of the square model input, in pixels. */
  size: number;
  /** Grey level (0–255) under which a pixel counts as background when trimming. */
  trimThreshold: number;
  /** Share of a row or column that must be foreground for it to count as head. */
  trimMinShare: number;
  /**
   * Contrast-limited adaptive histogram equalisation of the resized image (sharp's `clahe`), which
   * evens out the contrast of scans from different scanners and renderings; absent when off.
   */
  clahe?: ClaheParams;
}

export interface ClaheParams {
  /** Side of the square region whose histogram equalises each pixel, in pixels of the model input. */
  tile: number;
  /** Contrast limit: how far the local histogram may steepen the grey levels (sharp's maxSlope). */
  maxSlope: number;
}

export interface PreprocessChoices {
  /** Turns on local contrast equalisation with this contrast limit (e.g. 3); regions are a sixth of the input. */
  claheMaxSlope?: number;
}

/** The same preprocessing without the contrast equalisation: what near-duplicate search compares. */
export function withoutEqualisation(params: PreprocessParams): PreprocessParams {
  const { clahe: _clahe, ...plain } = params;
  return plain;
}

export function defaultPreprocessParams(size: number, options: PreprocessChoices = {}): PreprocessParams {
  const params: PreprocessParams = { version: PREPROCESS_VERSION, size, trimThreshold: 20, trimMinShare: 0.01 };
  if (options.claheMaxSlope) params.clahe = { tile: Math.max(2, Math.round(size / 6)), maxSlope: options.claheMaxSlope };
  return params;
}

/** Where the model's square input sits in the original image, to map heatmaps and boxes back. */
export interface InputGeometry {
  originalWidth: number;
  originalHeight: number;
  /** Top-left of the (possibly padded) square in original pixels; may be negative. */
  squareX: number;
  squareY: number;
  /** Side of the square in original pixels. */
  squareSide: number;
}

export interface PreprocessedImage {
  /** size × size grey pixels, row-major; the model sees pixels / 255. */
  pixels: Uint8Array;
  size: number;
  geometry: InputGeometry;
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Bounding box of the head: rows and columns with enough pixels above the background level. */
export function findForeground(image: GreyImage, params: PreprocessParams): Box {
  const { width, height, data } = image;
  const rowCounts = new Uint32Array(height);
  const colCounts = new Uint32Array(width);
  // Some scanners leave a grey rather than black surround: trim relative to the border's level.
  const threshold = Math.max(params.trimThreshold, borderLevel(image) + 12);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if ((data[row + x] as number) > threshold) {
        rowCounts[y]! += 1;
        colCounts[x]! += 1;
      }
    }
  }
  const rows = span(rowCounts, Math.max(2, params.trimMinShare * width));
  const cols = span(colCounts, Math.max(2, params.trimMinShare * height));
  if (!rows || !cols || rows[1] - rows[0] < 8 || cols[1] - cols[0] < 8) return { x: 0, y: 0, width, height };
  return { x: cols[0], y: rows[0], width: cols[1] - cols[0] + 1, height: rows[1] - rows[0] + 1 };
}

/** Median grey level of the outermost rows and columns. */
function borderLevel({ width, height, data }: GreyImage): number {
  const histogram = new Uint32Array(256);
  for (let x = 0; x < width; x++) {
    histogram[data[x] as number]! += 1;
    histogram[data[(height - 1) * width + x] as number]! += 1;
  }
  for (let y = 0; y < height; y++) {
    histogram[data[y * width] as number]! += 1;
    histogram[data[y * width + width - 1] as number]! += 1;
  }
  const half = (2 * width + 2 * height) / 2;
  let seen = 0;
  for (let level = 0; level < 256; level++) {
    seen += histogram[level] as number;
    if (seen >= half) return level;
  }
  return 0;
}

function span(counts: Uint32Array, minCount: number): [number, number] | undefined {
  let first = -1;
  let last = -1;
  for (let i = 0; i < counts.length; i++) {
    if ((counts[i] as number) >= minCount) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? undefined : [first, last];
}

/** The head's box cut out of the image and centred on a black square of side `side`. */
function squareCrop(image: GreyImage, box: Box, side: number, padLeft: number, padTop: number): Uint8Array {
  const square = new Uint8Array(side * side);
  for (let row = 0; row < box.height; row++) {
    const from = (box.y + row) * image.width + box.x;
    square.set(image.data.subarray(from, from + box.width), (padTop + row) * side + padLeft);
  }
  return square;
}

/**
 * Longest side of the padded square that the resize takes: sharp refuses a raw input of more than
 * 0x3FFF × 0x3FFF pixels (its default pixel limit), whatever the image's own size.
 */
const MAX_SQUARE_SIDE = 0x3fff;

/**
 * Refuses a head region whose padded square sharp would not resize. Only very wide or tall images
 * get there (e.g. 20000×100): refused as unsupported, they are reported like any other image this
 * package does not analyse, instead of failing as an error that looks worth retrying.
 */
function checkSquareSide(image: GreyImage, box: Box, side: number): void {
  if (side <= MAX_SQUARE_SIDE) return;
  throw unsupportedImage(
    `image of ${image.width}×${image.height} pixels: its head region (${box.width}×${box.height}) padded to a square is ${side}×${side} pixels, ` +
      `over the ${MAX_SQUARE_SIDE}×${MAX_SQUARE_SIDE} preprocessing can resize; send an image at most ${MAX_SQUARE_SIDE} pixels wide and high`,
  );
}

/**
 * Fewest pixels an analysed image has across and down. The scans the models learned from are at least
 * 150 pixels on their shorter side (the smallest in both Br35H and the 4-class set is 150×198) and MR
 * slices are stored at 64 pixels and up; below 32 an image holds too little of a head to resize into
 * the model's input, yet the network would still call it, e.g. a 1×1 image a tumour with 0.999.
 */
export const MIN_IMAGE_SIDE = 32;

/** Grey levels by which a pixel must differ from the border's level to count as something shown. */
export const CONTENT_CONTRAST = 20;

/**
 * Share of an image's pixels that must differ from its border's level by more than
 * {@link CONTENT_CONTRAST} for it to show a head; below it the image is blank or nearly so (a black
 * export with a few stray pixels or a burnt-in label), and the network would still call it, e.g. a
 * tumour with 0.6. Every one of the 9,618 Br35H and 4-class images has at least 14.6%.
 */
export const MIN_CONTENT_SHARE = 0.01;

/** What makes an image blank: its background's grey level, and how little stands out from it. */
export interface BlankImage {
  /** The grey level of its border (of every pixel, when `uniform`). */
  level: number;
  /** Every pixel has that one grey level. */
  uniform: boolean;
  /** Share of its pixels that differ from `level` by more than {@link CONTENT_CONTRAST}. */
  contentShare: number;
}

/**
 * The image is blank, of one grey level throughout (an all-black export, say), or nearly so (under
 * {@link MIN_CONTENT_SHARE} of its pixels stand out from its border's level): what the models refuse
 * as blank; else undefined. `image` is decoded as `decodeGrey` decodes it.
 */
export function blankImage(image: GreyImage): BlankImage | undefined {
  const level = borderLevel(image);
  // The API runs this on every upload: the scan stops once the head shows.
  const enough = Math.max(1, Math.ceil(MIN_CONTENT_SHARE * image.data.length));
  const { content, uniform } = countContent(image.data, level, enough);
  if (content >= enough) return undefined;
  return { level, uniform, contentShare: content / image.data.length };
}

/**
 * The share of an image's pixels that stand out from its border's level, scanned whole (where
 * {@link blankImage} stops once the image shows enough): for measuring datasets against {@link MIN_CONTENT_SHARE}.
 */
export function contentShare(image: GreyImage): { level: number; share: number } {
  const level = borderLevel(image);
  return { level, share: countContent(image.data, level, Infinity).content / image.data.length };
}

/** Pixels more than {@link CONTENT_CONTRAST} from `level`, counted up to `enough`; and whether every pixel has that level. */
function countContent(data: Uint8Array, level: number, enough: number): { content: number; uniform: boolean } {
  let content = 0;
  let uniform = true;
  for (let i = 0; i < data.length && content < enough; i++) {
    const value = data[i] as number;
    if (value === level) continue;
    uniform = false;
    if (Math.abs(value - level) > CONTENT_CONTRAST) content += 1;
  }
  return { content, uniform };
}

/** Why `blank` leaves nothing to analyse, as a refusal says it. */
export function describeBlank(blank: BlankImage): string {
  if (blank.uniform) return `every pixel has grey level ${blank.level}`;
  const share = `${Number((blank.contentShare * 100).toPrecision(2))}%`;
  return `only ${share} of its pixels differ by more than ${CONTENT_CONTRAST} grey levels from its background's ${blank.level} (under ${MIN_CONTENT_SHARE * 100}%: too little to show a head)`;
}

/**
 * Refuses, as unsupported, images that show nothing to analyse: too small, or blank or nearly so
 * (see {@link blankImage}), which the network would otherwise classify with confidence.
 */
function checkAnalysable(image: GreyImage): void {
  if (Math.min(image.width, image.height) < MIN_IMAGE_SIDE) {
    throw unsupportedImage(`image of ${image.width}×${image.height} pixels is too small to analyse: send images at least ${MIN_IMAGE_SIDE} pixels wide and high`);
  }
  const blank = blankImage(image);
  if (blank) throw unsupportedImage(`image is blank: ${describeBlank(blank)}, so there is nothing to analyse`);
}

/** Crop to the head, pad to a centred square with black, resize to params.size. */
export async function preprocessGrey(image: GreyImage, params: PreprocessParams): Promise<PreprocessedImage> {
  checkAnalysable(image);
  const box = findForeground(image, params);
  const side = Math.max(box.width, box.height);
  checkSquareSide(image, box, side);
  const padLeft = Math.floor((side - box.width) / 2);
  const padTop = Math.floor((side - box.height) / 2);
  // Cropping and padding copy pixels unchanged, so they happen here; only the resize needs sharp.
  const square = squareCrop(image, box, side, padLeft, padTop);
  const { data, info } = await sharp(square, { raw: { width: side, height: side, channels: 1 } })
    .resize(params.size, params.size, { kernel: 'lanczos3', fit: 'fill' })
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || data.length !== params.size * params.size) {
    throw new Error(`preprocessing produced ${info.width}x${info.height}x${info.channels}`);
  }
  const pixels = params.clahe ? await equaliseLocally(data, params.size, params.clahe) : data;
  return {
    pixels: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    size: params.size,
    geometry: {
      originalWidth: image.width,
      originalHeight: image.height,
      squareX: box.x - padLeft,
      squareY: box.y - padTop,
      squareSide: side,
    },
  };
}

/**
 * Local contrast equalisation of a resized size × size image. A separate pipeline, so that it sees the
 * resized pixels (sharp orders its own operations).
 */
export async function equaliseLocally(pixels: Uint8Array, size: number, clahe: ClaheParams): Promise<Buffer> {
  return sharp(pixels, { raw: { width: size, height: size, channels: 1 } })
    .clahe({ width: clahe.tile, height: clahe.tile, maxSlope: clahe.maxSlope })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
}

/** The one preprocessing entry point, shared by training (cache) and serving. */
export async function preprocessImage(bytes: Uint8Array, params: PreprocessParams, frame = 0): Promise<PreprocessedImage> {
  return preprocessGrey(await decodeGrey(bytes, frame), params);
}
