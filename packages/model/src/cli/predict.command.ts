import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../backend/index.js';
import { isDicom, readDicomHeader } from '../data/dicom.js';
import { ImageDecodeError } from '../data/image-decode-error.js';
import { loadModel } from '../model/loaded-model.js';
import { renderOverlay } from '../model/overlay.js';

/** Where an image's overlay goes: the pattern itself for one image, else the pattern with the file's name (and frame). */
function overlayPath(pattern: string, file: string, many: boolean, frame: number | undefined): string {
  if (!many) return pattern;
  const ext = path.extname(pattern) || '.png';
  const name = `${path.basename(file, path.extname(file))}${frame === undefined ? '' : `-frame${frame}`}`;
  return `${pattern.slice(0, pattern.length - path.extname(pattern).length)}-${name}${ext}`;
}

/** `out.png` as `out-<n>.png`. */
function numbered(file: string, n: number): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}-${n}${ext}`;
}

/**
 * The overlay paths of one run, each given once. Inputs can share a name (a/scan.jpg and b/scan.jpg,
 * or scan.jpg and scan.png), and one overlay must not overwrite another, nor an input: the first
 * keeps its path, a later one gets the first free of -2, -3, … after it. Paths are compared without
 * case, so that they stay apart on a file system that ignores it.
 */
class OverlayPaths {
  private readonly given = new Set<string>();

  constructor(inputs: readonly string[]) {
    for (const input of inputs) this.given.add(this.key(input));
  }

  /** Reserves `wanted`, or the first numbered variant of it that no earlier overlay has. */
  claim(wanted: string): string {
    let chosen = wanted;
    for (let n = 2; this.given.has(this.key(chosen)); n++) chosen = numbered(wanted, n);
    this.given.add(this.key(chosen));
    return chosen;
  }

  private key(file: string): string {
    return path.resolve(file).toLowerCase();
  }
}

/** The frames to predict of a file: every frame of a multi-frame DICOM file, else its one image. */
function framesOf(bytes: Uint8Array): number {
  return isDicom(bytes) ? readDicomHeader(bytes).frames : 1;
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('predict label, probabilities and tumour box for image files (one JSON line each; per frame of a multi-frame DICOM file)')
    .requiredOption('--model <dir>', 'model artifact folder')
    .option('--heatmap <out.png>', 'write the heatmap overlay (with several files: out-<name>.png, and out-<name>-2.png, ... for a name met again)')
    .argument('<files...>', 'image files (JPEG, PNG, DICOM, ...)')
    .action(async (files: string[], opts: { model: string; heatmap?: string }) => {
      await initBackend();
      const model = await loadModel(path.resolve(opts.model));
      const overlays = new OverlayPaths(files);
      let failures = 0;
      try {
        for (const file of files) {
          try {
            const bytes = await readFile(file);
            const frames = framesOf(bytes);
            for (let frame = 0; frame < frames; frame++) {
              const p = await model.predict(bytes, { heatmap: true, frame });
              const frameNumber = frames > 1 ? frame + 1 : undefined;
              const line: Record<string, unknown> = {
                file,
                ...(frameNumber ? { frame: frameNumber } : {}),
                label: p.label,
                probabilities: p.probabilities,
                box: p.box,
                peak: p.peak,
                ...(p.typicality ? { typicality: p.typicality } : {}),
                timings: p.timings,
              };
              if (opts.heatmap) {
                const out = overlays.claim(overlayPath(opts.heatmap, file, files.length > 1 || frames > 1, frameNumber));
                await writeFile(out, await renderOverlay(bytes, p, frame));
                line.heatmap = out;
              }
              process.stdout.write(`${JSON.stringify(line)}\n`);
            }
          } catch (error) {
            if (!(error instanceof ImageDecodeError) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
            failures++;
            process.stdout.write(`${JSON.stringify({ file, error: (error as Error).message })}\n`);
          }
        }
      } finally {
        model.dispose();
      }
      if (failures > 0) process.exitCode = 1;
    });
}
