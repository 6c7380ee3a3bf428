/**
 * The bytes given are not an image this package can analyse: unknown format, truncated, empty, or
 * (`unsupported`) readable but of a kind it does not analyse, such as an encoding or a modality.
 */
export class ImageDecodeError extends Error {
  /** True when the content is well formed but of a kind this package does not analyse. */
  readonly unsupported: boolean;

  constructor(message: string, options?: { cause?: unknown; unsupported?: boolean }) {
    super(message, options);
    this.name = 'ImageDecodeError';
    this.unsupported = options?.unsupported ?? false;
  }
}

/** A well-formed image of a kind this package does not analyse; the message says what to send instead. */
export function unsupportedImage(message: string): ImageDecodeError {
  return new ImageDecodeError(message, { unsupported: true });
}
