/**
 * Thrown by {@link ObjectStore.get} when S3 answered but broke off the object's body: it reset the
 * connection or fell silent before the last byte. The error of the socket, which carries no
 * `$metadata` and could come from any service, is the `cause`; this one says it was S3's.
 */
export class ObjectReadInterruptedError extends Error {
  readonly bucket: string;
  readonly key: string;

  constructor(bucket: string, key: string, options: { cause: unknown }) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super(`S3 broke off the object at s3://${bucket}/${key}: ${reason}`, options);
    this.name = 'ObjectReadInterruptedError';
    this.bucket = bucket;
    this.key = key;
  }
}
