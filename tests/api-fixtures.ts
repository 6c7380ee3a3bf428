import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { datasetsDir } from './helpers/index.js';

/** The first `count` real MRI slices of Br35H `yes` or `no` (sorted, so runs are repeatable). */
export function mriSlices(label: 'yes' | 'no', count: number): { name: string; bytes: Buffer }[] {
  const root = datasetsDir();
  if (!root) throw new Error('datasets not found: set BTD_DATASETS_DIR');
  const dir = path.join(root, 'br35h', label);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jpg'))
    .sort()
    .slice(0, count)
    .map((name) => ({ name, bytes: readFileSync(path.join(dir, name)) }));
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A valid-looking PNG of a few kilobytes whose header declares `width`×`height` grey pixels:
 * a decompression bomb if anything tried to decode it.
 */
export function pngDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  const firstRows = deflateSync(Buffer.alloc((width + 1) * 4));
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', header), pngChunk('IDAT', firstRows), pngChunk('IEND', Buffer.alloc(0))]);
}

/** The first half of a real JPEG: its header is intact, its scan data ends early. */
export function truncatedJpeg(): Buffer {
  const [slice] = mriSlices('yes', 1);
  if (!slice) throw new Error('no MRI slice found');
  return slice.bytes.subarray(0, Math.floor(slice.bytes.length / 2));
}
