#!/usr/bin/env node
// Measures dataset folders against the blank-image rule of the models and the API: for every image,
// the share of its pixels more than 20 grey levels from its border's level (images under
// MIN_CONTENT_SHARE are refused as blank). Prints the lowest shares, so that the rule can be checked
// to leave every real scan alone. Build first (`npm run build`).
//
//   node scripts/content-share.js ../shared/datasets/br35h ../shared/datasets/brain-mri-4class
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { contentShare, decodeGrey, MIN_CONTENT_SHARE } from '@btd/model';

const roots = process.argv.slice(2);
if (roots.length === 0) {
  console.error('usage: node scripts/content-share.js DIR...');
  process.exit(2);
}

async function* images(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* images(file);
    else if (/\.(jpe?g|png|dcm)$/i.test(entry.name)) yield file;
  }
}

const measured = [];
for (const root of roots) {
  for await (const file of images(root)) {
    const { level, share } = contentShare(await decodeGrey(await readFile(file)));
    measured.push({ share, level, file: path.relative(process.cwd(), file) });
  }
}
measured.sort((a, b) => a.share - b.share);
const refused = measured.filter((m) => m.share < MIN_CONTENT_SHARE).length;
console.log(`${measured.length} images; ${refused} under ${MIN_CONTENT_SHARE * 100}%, which the rule refuses as blank; the lowest shares:`);
console.log('| share | border level | image |\n|---|---|---|');
for (const m of measured.slice(0, 10)) console.log(`| ${(m.share * 100).toFixed(1)}% | ${m.level} | ${m.file} |`);
