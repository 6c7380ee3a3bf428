// The images the pipeline and model-thread benchmarks submit.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { sliceDicom, transcodeWith } from './dicom-slice.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * `count` images made from real scans when the datasets are present, else from noise: half
 * Br35H tumour scans, half healthy ones, spread evenly over the shipped `tumor-binary` model's test
 * split (scans no model here trained on, so as many are uncertain, and take the models' rotated
 * copies, as in service), or with `count` 1 the first tumour scan, which the `tumor-type` model is
 * unsure of. As 256×256 JPEGs, or (`format`) as 512×512 12-bit MR DICOM files as a PACS sends them:
 * uncompressed (`dicom`), or compressed by GDCM as JPEG 2000 or DCMTK as JPEG-LS, lossless.
 */
export async function benchImages(count, format = 'jpeg') {
  const { from, images } = await benchJpegs(count);
  if (format === 'jpeg') return { from, images, width: 256, height: 256, contentType: 'image/jpeg' };
  if (!(format in DICOM_FORMATS)) throw new Error(`--format must be jpeg, ${Object.keys(DICOM_FORMATS).join(' or ')}, not ${format}`);
  const tool = DICOM_FORMATS[format];
  const dicoms = await Promise.all(
    images.map(async (jpeg, i) => {
      const levels = await sharp(jpeg).toColourspace('b-w').resize(DICOM_SIDE, DICOM_SIDE, { fit: 'fill' }).raw().toBuffer();
      const file = sliceDicom(levels, DICOM_SIDE, { uid: 1000 + i });
      return tool ? transcodeWith(tool, file) : file;
    }),
  );
  return { from, images: dicoms, width: DICOM_SIDE, height: DICOM_SIDE, contentType: 'application/dicom' };
}

/** The DICOM formats the benchmarks can submit: a 512×512 MR slice on 12 bits, and the tool that compresses it. */
const DICOM_FORMATS = { dicom: null, 'dicom-jpeg2000': ['gdcmconv', '--j2k'], 'dicom-jpeg-ls': ['dcmcjpls', '+el'] };
const DICOM_SIDE = 512;

/** The scans as 256×256 JPEGs. */
async function benchJpegs(count) {
  const root = [path.resolve(ROOT, '../shared/datasets'), process.env.BTD_DATASETS_DIR].find((dir) => dir && existsSync(dir));
  if (!root) {
    const noise = (i) => ({ width: 256, height: 256, channels: 3, noise: { type: 'gaussian', mean: 100 + i, sigma: 40 } });
    return { from: 'noise', images: await Promise.all(Array.from({ length: count }, (_, i) => sharp({ create: noise(i) }).jpeg({ quality: 90 }).toBuffer())) };
  }
  const dir = path.join(root, 'br35h');
  const splitFile = path.join(ROOT, 'models/tumor-binary/split.json');
  // Held-out scans when the shipped split names them, else every scan of each folder.
  const heldOut = existsSync(splitFile) ? JSON.parse(await readFile(splitFile, 'utf8')).assignments.filter((a) => a.split === 'test') : null;
  const scans = async (label, folder) =>
    (heldOut ? heldOut.filter((a) => a.label === label).map((a) => a.relPath) : (await readdir(path.join(dir, folder))).filter((file) => file.endsWith('.jpg')).map((name) => `${folder}/${name}`)).sort();
  const spread = (list, n) => Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]);
  const files =
    count === 1
      ? [(await readdir(path.join(dir, 'yes'))).filter((file) => file.endsWith('.jpg')).sort().map((name) => `yes/${name}`)[0]]
      : [...spread(await scans('tumor', 'yes'), Math.ceil(count / 2)), ...spread(await scans('no_tumor', 'no'), Math.floor(count / 2))];
  const from = count === 1 ? `br35h ${files[0]}` : heldOut ? 'br35h, the tumor-binary test split' : 'br35h';
  return { from, images: await Promise.all(files.map(async (file) => sharp(await readFile(path.join(dir, file))).resize(256, 256, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer())) };
}

