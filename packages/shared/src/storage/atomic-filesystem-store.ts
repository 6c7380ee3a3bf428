import { createHash, randomUUID } from 'node:crypto';
import { close, createReadStream, createWriteStream, fstat, open } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import FilesystemStore, { type ObjectRange, type StoredObject } from 's3rver/lib/stores/filesystem.js';
import S3Object from 's3rver/lib/models/object.js';

/**
 * Where writes in progress live: inside the root, so that a rename into a bucket stays on one
 * file system, and outside every bucket, so that listings never meet a half-written file. A bucket
 * name cannot begin with a dot.
 */
const INCOMING_DIR = '.incoming';

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';
// GETs read through plain descriptors rather than FileHandles: s3rver drops the stream of a 304
// answer unread, and a FileHandle left to the garbage collector is closed with a warning.
const openFile = promisify(open);
const statFile = promisify(fstat);
const closeFile = promisify(close);

/** The metadata s3rver keeps with an object: the headers S3 stores, and the user's `x-amz-meta-*`. */
function storedMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).filter(([name]) => S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')),
  );
}

/** The bytes a GET of an object of `size` bytes asks for, worked out as s3rver does. */
function rangeOf(size: number, options?: ObjectRange): { start: number; end: number; asked: boolean } {
  const start = options?.start || 0;
  const end = Math.min(options?.end || Infinity, Math.max(0, size - 1));
  return { start, end, asked: options !== undefined && (options.start !== undefined || Boolean(options.end)) };
}

/**
 * s3rver's file store, with writes that readers see whole or not at all, as on S3 and MinIO.
 *
 * s3rver 3.7 writes an object in place: it truncates the file, counts the PUT as stored once the
 * request body has been read (while its bytes may still be on their way to the file) and streams a
 * GET from a file it opens after measuring it. A GET right after a PUT could read an empty file,
 * and one during an overwrite an empty or cut one, or a response shorter than its length. Here each
 * file is written aside, complete, then renamed into place, and a GET measures and reads the one
 * file it opened. The ETag and content type (files of their own) are put in place just before the
 * bytes, so for an instant a GET may pair the old bytes with the new ETag; the bytes are always one
 * whole version. CopyObject, which nothing here uses, still copies in place.
 */
export class AtomicFilesystemStore extends FilesystemStore {
  /** Writes a file aside with `write`, then renames it to `target`. */
  private async replaceFile<T>(target: string, write: (temp: string) => Promise<T>): Promise<T> {
    const incoming = path.join(this.rootDirectory, INCOMING_DIR);
    await Promise.all([mkdir(incoming, { recursive: true }), mkdir(path.dirname(target), { recursive: true })]);
    const temp = path.join(incoming, randomUUID());
    try {
      const result = await write(temp);
      await rename(temp, target);
      return result;
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  override async putObject(object: S3Object): Promise<StoredObject> {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    return this.replaceFile(objectPath, async (temp) => {
      const md5 = createHash('md5');
      let size = 0;
      const measure = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          md5.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      const { content } = object;
      const body = content === null || Buffer.isBuffer(content) ? Readable.from([content ?? Buffer.alloc(0)]) : content;
      // Resolves once the write stream has finished, i.e. every byte is in the file.
      await pipeline(body, measure, createWriteStream(temp));
      const stored = { size, md5: md5.digest('hex') };
      await this.putMetadata(object.bucket, object.key, object.metadata, stored.md5);
      return stored;
    });
  }

  override async putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5?: string): Promise<void> {
    if (md5) await this.replaceFile(this.getResourcePath(bucket, key, 'object.md5'), (temp) => writeFile(temp, md5));
    const json = JSON.stringify(storedMetadata(metadata), null, 2);
    await this.replaceFile(this.getResourcePath(bucket, key, 'metadata.json'), (temp) => writeFile(temp, json));
  }

  override async getObject(bucket: string, key: string, options?: ObjectRange): Promise<S3Object | null> {
    let fd: number;
    try {
      fd = await openFile(this.getResourcePath(bucket, key, 'object'), 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    let object: S3Object;
    try {
      const [metadata, stat] = await Promise.all([this.getMetadata(bucket, key), statFile(fd)]);
      // The length and date are the opened file's: the path may name a newer version by now.
      Object.assign(metadata, { 'content-length': stat.size, 'last-modified': stat.mtime.toUTCString() });
      object = new S3Object(bucket, key, null, metadata);
    } catch (error) {
      await closeFile(fd);
      if (isMissing(error)) return null;
      throw error;
    }
    const { start, end, asked } = rangeOf(object.size, options);
    if (asked) object.range = { start, end };
    if (start >= 0 && end >= start) object.content = createReadStream('', { fd, start, end });
    else await closeFile(fd); // not satisfiable: s3rver answers InvalidRange
    return object;
  }

  /** The buckets, without the folder of writes in progress. */
  override async listBuckets(): Promise<unknown[]> {
    const buckets = (await super.listBuckets()) as { name?: string }[];
    return buckets.filter((bucket) => bucket.name !== INCOMING_DIR);
  }
}
