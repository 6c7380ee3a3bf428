import { openDicomImage } from '@btd/model';

/** Decodes every frame of a DICOM file: each becomes an image, and each must be there and decode. Throws what the decoder throws. */
export async function decodeEveryFrame(bytes: Uint8Array, maxPixels: number): Promise<void> {
  const image = openDicomImage(bytes, maxPixels);
  for (let frame = 0; frame < image.header.frames; frame++) await image.decodeFrame(frame);
}
