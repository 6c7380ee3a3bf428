// The images the pipeline and model-thread benchmarks submit.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * `count` 256×256 JPEGs made from real scans when the datasets are present, else from noise: half
 * Br35H tumour scans, half healthy ones, spread evenly over the shipped `tumor-binary` model's test
 * split (scans no model here trained on, so as many are uncertain, and take the models' rotated
 * copies, as in service), or with `count` 1 the first tumour scan, which the `tumor-type` model is
 * unsure of.
 */
export async function benchImages(count) {
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

