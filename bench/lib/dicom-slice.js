// 12-bit MR DICOM files for the benchmarks, written with dcmjs from an image's 8-bit grey levels.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import dcmjs from 'dcmjs';
import dicomParser from 'dicom-parser';

/** The stored values of a slice: its grey levels on 12 bits, the low four bits varied too. */
export const storedValues = (levels) => Uint16Array.from(levels, (v, i) => v * 16 + (i % 16));

/**
 * A side × side 12-bit MR DICOM file of a slice's levels: uncompressed (explicit VR little endian, or
 * with `deflated` its data set deflated), or around one compressed frame in the given transfer syntax.
 * `uid` tells the instances of a run apart.
 */
export function sliceDicom(levels, side, { compressed, deflated = false, uid = 42 } = {}) {
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const sop = `2.25.${uid}`;
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.4',
    MediaStorageSOPInstanceUID: sop,
    TransferSyntaxUID: compressed?.transferSyntax ?? (deflated ? DEFLATED : '1.2.840.10008.1.2.1'),
    ImplementationClassUID: '2.25.43',
  };
  const dataset = {
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.4',
    SOPInstanceUID: sop,
    StudyInstanceUID: `2.25.${uid}.1`,
    SeriesInstanceUID: `2.25.${uid}.2`,
    Modality: 'MR',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: side,
    Columns: side,
    BitsAllocated: 16,
    BitsStored: 12,
    HighBit: 11,
    PixelRepresentation: 0,
    PixelData: [compressed ? new Uint8Array(compressed.frame).buffer : storedValues(levels).buffer],
    _vrMap: { PixelData: compressed ? 'OB' : 'OW' },
  };
  const file = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  const bytes = Buffer.from(file.write());
  if (!deflated) return bytes;
  // dcmjs writes the data set as explicit VR little endian whatever the meta group says: deflated here.
  const { position } = dicomParser.readPart10Header(bytes);
  return Buffer.concat([bytes.subarray(0, position), deflateRawSync(bytes.subarray(position), { level: 9 })]);
}

const DEFLATED = '1.2.840.10008.1.2.1.99';

/** Runs a DICOM command line tool (DCMTK, GDCM) on a file: `tool [...args] in out`; throws if it is missing or fails. */
export async function transcodeWith(tool, bytes) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'btd-transcode-'));
  try {
    const [input, output] = [path.join(dir, 'in.dcm'), path.join(dir, 'out.dcm')];
    await writeFile(input, bytes);
    execFileSync(tool[0], [...tool.slice(1), input, output], { stdio: 'ignore' });
    return await readFile(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
