import { ImageDecodeError } from '@btd/model';
import { decodeEveryFrame } from './decode-every-frame.js';

/** One file to check: its bytes (a copy) and the pixel limit. */
export interface DicomCheckTask {
  bytes: Uint8Array;
  maxPixels: number;
}

/** What a check found; an error's class and flags do not cross threads, so they travel as fields. */
export type DicomCheckResult = { ok: true } | { ok: false; message: string; decode: boolean; unsupported: boolean };

/** A piscina task: decodes every frame of one DICOM file. */
export default async function checkDicomFrames({ bytes, maxPixels }: DicomCheckTask): Promise<DicomCheckResult> {
  try {
    await decodeEveryFrame(bytes, maxPixels);
    return { ok: true };
  } catch (error) {
    const decode = error instanceof ImageDecodeError;
    return { ok: false, message: error instanceof Error ? error.message : String(error), decode, unsupported: decode && error.unsupported };
  }
}
