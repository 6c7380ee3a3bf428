#!/usr/bin/env node
// Links the images a saved split.json puts in one set into a folder with one sub-folder per class, so
// that `btd eval --data` and `--without-copies-in` can compare models trained on different splits on
// the same images. `--not-in B.json --not-in-set train` leaves out the images that split B puts in
// that set (for example the images another model trained on).
//
//   node scripts/link-split-images.js --data ../shared/datasets/br35h --split A.json --set test \
//     --not-in models/tumor-binary/split.json --not-in-set train --out /tmp/a-test
import { access, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    split: { type: 'string' },
    set: { type: 'string', default: 'test' },
    'not-in': { type: 'string' },
    'not-in-set': { type: 'string', default: 'train' },
    out: { type: 'string' },
  },
});
for (const key of ['data', 'split', 'out']) {
  if (!values[key]) {
    console.error(`--${key} is required (see the comment at the top of ${path.basename(import.meta.filename)})`);
    process.exit(2);
  }
}

const assignments = async (file) => JSON.parse(await readFile(file, 'utf8')).assignments;
const excluded = new Set(values['not-in'] ? (await assignments(values['not-in'])).filter((a) => a.split === values['not-in-set']).map((a) => a.relPath) : []);
const chosen = (await assignments(values.split)).filter((a) => a.split === values.set && !excluded.has(a.relPath));
if (chosen.length === 0) {
  console.error(`no images left: ${values.split} puts none in ${values.set} outside the excluded ones`);
  process.exit(1);
}
// A link stands for a whole file, so the frames of a multi-frame file cannot be chosen one by one.
const frames = chosen.filter((a) => /#frame=\d+$/.test(a.relPath));
if (frames.length > 0) {
  console.error(`${frames.length} of the chosen images are frames of multi-frame DICOM files (e.g. ${frames[0].relPath}); a link would bring every frame of its file`);
  process.exit(1);
}
if (await access(values.out).then(() => true, () => false)) {
  console.error(`${values.out} exists: give a folder that does not exist yet (it is never overwritten)`);
  process.exit(1);
}
const counts = {};
for (const { relPath, label } of chosen) {
  // One folder per label; the file name keeps the whole relative path, so names cannot collide.
  const target = path.join(values.out, label, relPath.replaceAll('/', '__'));
  await mkdir(path.dirname(target), { recursive: true });
  await symlink(path.resolve(values.data, relPath), target);
  counts[label] = (counts[label] ?? 0) + 1;
}
console.log(`${chosen.length} images linked under ${values.out}: ${JSON.stringify(counts)}${excluded.size ? ` (${excluded.size} in ${values['not-in-set']} of ${values['not-in']} left out)` : ''}`);
