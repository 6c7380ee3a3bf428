import { createHash } from 'node:crypto';
import dcmjs from 'dcmjs';

const { DicomDict, DicomMessage, DicomMetaDictionary } = dcmjs.data;

const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_LITTLE = '1.2.840.10008.1.2.1';
/** btd's implementation class: a UID under 2.25 (PS3.5 B.2), fixed. */
const IMPLEMENTATION_CLASS_UID = uidFrom('btd implementation class');

/** Attributes copied from the original, so that the capture files into the same patient and study. */
const COPIED = [
  'SpecificCharacterSet',
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'StudyID',
  'StudyDescription',
  'AccessionNumber',
  'ReferringPhysicianName',
] as const;

/**
 * Attributes the Secondary Capture IOD requires to be present even when unknown (type 2): empty unless
 * the original has them.
 */
const TYPE_2_EMPTY = {
  PatientName: '',
  PatientID: '',
  PatientBirthDate: '',
  PatientSex: '',
  StudyDate: '',
  StudyTime: '',
  ReferringPhysicianName: '',
  StudyID: '',
  AccessionNumber: '',
  PatientOrientation: '',
};

/** A UID under the 2.25 root, derived from `seed`: the same seed always gives the same UID (PS3.5 B.2). */
export function uidFrom(seed: string): string {
  return `2.25.${BigInt(`0x${createHash('sha256').update(seed).digest('hex').slice(0, 32)}`).toString()}`;
}

/** What the capture shows and says. */
export interface CaptureSpec {
  /** The btd study and image the capture belongs to; they seed its UIDs, so a capture is the same each time. */
  studyId: string;
  imageId: string;
  /** Position of the image in its study, from 1. */
  instanceNumber: number;
  /** The overlay, 8-bit RGB, row by row. */
  rgb: { width: number; height: number; data: Uint8Array };
  /** The DICOM original, when the image was one: its patient and study attributes are copied. */
  original?: Uint8Array;
  /** Of a multi-frame original, the frame the image is (from 1). */
  frameNumber?: number;
  /** One line for Image Comments: the result in words. */
  comment: string;
  /** Model names and versions, for Software Versions. */
  softwareVersions: string[];
  /** When the result was made (ISO 8601). */
  createdAt: string;
}

function dicomDateTime(iso: string): { date: string; time: string } {
  const [date = '', time = ''] = iso.split('T');
  return { date: date.replaceAll('-', ''), time: time.replace(/Z$/, '').replaceAll(':', '') };
}

/** The original's patient and study attributes, and its SOP class and instance, read without its pixels. */
function originalAttributes(original: Uint8Array, frameNumber: number | undefined): Record<string, unknown> {
  const buffer = original.buffer.slice(original.byteOffset, original.byteOffset + original.byteLength) as ArrayBuffer;
  const natural = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(buffer, { untilTag: '7FE00010', includeUntilTagValue: false }).dict);
  const copied: Record<string, unknown> = {};
  for (const keyword of COPIED) if (natural[keyword] !== undefined && natural[keyword] !== '') copied[keyword] = natural[keyword];
  const reference = { ReferencedSOPClassUID: natural.SOPClassUID, ReferencedSOPInstanceUID: natural.SOPInstanceUID, ...(frameNumber ? { ReferencedFrameNumber: frameNumber } : {}) };
  const source = natural.SOPClassUID && natural.SOPInstanceUID ? [reference] : undefined;
  return { ...copied, ...(source ? { SourceImageSequence: source } : {}) };
}

/**
 * A DICOM Secondary Capture of an image's heatmap overlay, for a PACS to file beside the slice it was
 * made from: the same patient and study (copied from a DICOM original; for a JPEG or PNG original a
 * study UID derived from the btd study), a series of btd's own in that study, a reference to the source instance,
 * and the result in Image Comments. Explicit VR little endian, 8-bit RGB.
 */
export function secondaryCapture(spec: CaptureSpec): Buffer {
  const sopInstanceUid = uidFrom(`btd overlay ${spec.imageId}`);
  const { date, time } = dicomDateTime(spec.createdAt);
  const fromOriginal = spec.original ? originalAttributes(spec.original, spec.frameNumber) : {};
  const studyInstanceUid = (fromOriginal.StudyInstanceUID as string | undefined) ?? uidFrom(`btd study ${spec.studyId}`);
  const dataset = {
    ...TYPE_2_EMPTY,
    ...fromOriginal,
    StudyInstanceUID: studyInstanceUid,
    SOPClassUID: SECONDARY_CAPTURE,
    SOPInstanceUID: sopInstanceUid,
    ImageType: ['DERIVED', 'SECONDARY'],
    Modality: 'OT',
    ConversionType: 'WSD',
    Manufacturer: 'btd',
    SoftwareVersions: spec.softwareVersions,
    // One series per DICOM study of the btd study: its originals may come from several, and a
    // series never spans two.
    SeriesInstanceUID: uidFrom(`btd overlay series ${spec.studyId} ${studyInstanceUid}`),
    SeriesNumber: 9001,
    SeriesDescription: 'btd tumour heatmap',
    InstanceNumber: spec.instanceNumber,
    ContentDate: date,
    ContentTime: time,
    DerivationDescription: 'Tumour heatmap of the tumor-binary model blended over the slice; box around the finding',
    BurnedInAnnotation: 'NO',
    ImageComments: spec.comment,
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: spec.rgb.height,
    Columns: spec.rgb.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    PixelData: [spec.rgb.data.buffer.slice(spec.rgb.data.byteOffset, spec.rgb.data.byteOffset + spec.rgb.data.byteLength)],
    _vrMap: { PixelData: 'OB' },
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SECONDARY_CAPTURE,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LITTLE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: 'btd',
  };
  const file = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(file.write());
}
