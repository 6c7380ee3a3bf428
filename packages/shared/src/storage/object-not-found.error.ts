/** Thrown by {@link ObjectStore.get} when no object exists under the key. */
export class ObjectNotFoundError extends Error {
  readonly bucket: string;
  readonly key: string;

  constructor(bucket: string, key: string, options?: { cause?: unknown }) {
    super(`No object at s3://${bucket}/${key}`, options);
    this.name = 'ObjectNotFoundError';
    this.bucket = bucket;
    this.key = key;
  }
}
