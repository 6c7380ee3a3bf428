import { expect } from 'vitest';
import { decodeGrey } from '../../packages/model/src/data/decode-image.js';
import { ImageDecodeError } from '../../packages/model/src/data/image-decode-error.js';

/** The error `decodeGrey` refuses `bytes` with; the test fails unless it refuses them with an `ImageDecodeError`. */
export async function decodeRefusal(bytes: Uint8Array): Promise<ImageDecodeError> {
  const error = await decodeGrey(bytes).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ImageDecodeError);
  return error as ImageDecodeError;
}
