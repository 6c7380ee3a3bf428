import { deflateRawSync } from 'node:zlib';

/** DICOM transfer syntaxes the writer below can produce. */
export const TransferSyntax = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitLittle: '1.2.840.10008.1.2.1',
  explicitBig: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpeg2000: '1.2.840.10008.1.2.4.91',
  htj2kLossless: '1.2.840.10008.1.2.4.201',
  htj2k: '1.2.840.10008.1.2.4.203',
  mpeg4: '1.2.840.10008.1.2.4.102',
} as const;

/** Attributes an enhanced (multi-frame) image keeps per frame, in functional group sequences. */
export interface FrameAttributes {
  window?: { center: number; width: number };
  rescale?: { slope: number; intercept: number };
  orientation?: readonly number[];
}

export interface DicomImageSpec {
  width: number;
  height: number;
  /** Stored values, row by row (samples interleaved unless `planar`); ignored when `encapsulated` is given. */
  pixels?: ArrayLike<number>;
  /** Compressed frame bytes (a JPEG, say) placed as one fragment of encapsulated pixel data. */
  encapsulated?: Uint8Array;
  bitsAllocated?: 8 | 16;
  bitsStored?: number;
  signed?: boolean;
  samples?: 1 | 3;
  planar?: boolean;
  photometric?: string;
  window?: { center: number; width: number };
  rescale?: { slope: number; intercept: number };
  frames?: number;
  transferSyntax?: string;
  /** Modality (0008,0060); MR unless given. */
  modality?: string;
  /** Image Orientation (Patient): row then column direction cosines, written when given. */
  orientation?: readonly number[];
  /** Shared and per-frame functional groups (little endian only), written when given. */
  functionalGroups?: { shared?: FrameAttributes; perFrame?: FrameAttributes[] };
  /** Patient's name and id, written when given (in Latin-1: give `characterSet` 'ISO_IR 100' for names beyond ASCII). */
  patient?: { name?: string; id?: string; issuer?: string };
  /** Specific Character Set (0008,0005), written when given. */
  characterSet?: string;
  /** Instance identifiers, written when given. */
  identifiers?: { studyInstanceUid?: string; seriesInstanceUid?: string; sopInstanceUid?: string; accessionNumber?: string };
  /** Zero bytes in a private element (0029,1010) before the pixel data, written when given. */
  privateBytes?: number;
}

const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);

interface ElementSpec {
  group: number;
  element: number;
  vr: string;
  value: Buffer;
  /** Written with an undefined length (encapsulated pixel data). */
  undefinedLength?: boolean;
}

function text(value: string, pad = ' '): Buffer {
  return Buffer.from(value.length % 2 ? value + pad : value, 'latin1');
}

function encode(elements: ElementSpec[], explicit: boolean, little: boolean): Buffer {
  const parts = elements.map(({ group, element, vr, value, undefinedLength }) => {
    const long = LONG_VRS.has(vr);
    const head = Buffer.alloc(explicit ? (long ? 12 : 8) : 8);
    const u16 = (v: number, at: number) => (little ? head.writeUInt16LE(v, at) : head.writeUInt16BE(v, at));
    const u32 = (v: number, at: number) => (little ? head.writeUInt32LE(v, at) : head.writeUInt32BE(v, at));
    u16(group, 0);
    u16(element, 2);
    const length = undefinedLength ? 0xffffffff : value.length;
    if (!explicit) u32(length, 4);
    else {
      head.write(vr, 4, 'latin1');
      if (long) u32(length, 8);
      else u16(length, 6);
    }
    return Buffer.concat([head, value]);
  });
  return Buffer.concat(parts);
}

function us(value: number, little: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (little) b.writeUInt16LE(value);
  else b.writeUInt16BE(value);
  return b;
}

function pixelBytes(spec: DicomImageSpec, little: boolean): Buffer {
  const values = spec.pixels ?? [];
  const bits = spec.bitsAllocated ?? 16;
  const out = Buffer.alloc(values.length * (bits / 8) + ((values.length * (bits / 8)) % 2));
  for (let i = 0; i < values.length; i++) {
    const v = (values[i] as number) & (bits === 8 ? 0xff : 0xffff);
    if (bits === 8) out.writeUInt8(v, i);
    else if (little) out.writeUInt16LE(v, 2 * i);
    else out.writeUInt16BE(v, 2 * i);
  }
  return out;
}

/** An item of a sequence (or of encapsulated pixel data), little endian. */
function item(body: Buffer, tag = 0xe000): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(tag, 2);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** One functional groups item: each attribute in its own one-item sequence, as PS3.3 C.7.6.16 nests them. */
function functionalGroupItem(attributes: FrameAttributes, explicit: boolean): Buffer {
  const sequence = (group: number, element: number, inner: ElementSpec[]): ElementSpec => ({ group, element, vr: 'SQ', value: item(encode(inner, explicit, true)) });
  const ds = (group: number, element: number, value: number | string): ElementSpec => ({ group, element, vr: 'DS', value: text(String(value)) });
  const elements: ElementSpec[] = [];
  if (attributes.orientation) elements.push(sequence(0x20, 0x9116, [ds(0x20, 0x37, attributes.orientation.join('\\'))]));
  if (attributes.window) elements.push(sequence(0x28, 0x9132, [ds(0x28, 0x1050, attributes.window.center), ds(0x28, 0x1051, attributes.window.width)]));
  if (attributes.rescale) elements.push(sequence(0x28, 0x9145, [ds(0x28, 0x1052, attributes.rescale.intercept), ds(0x28, 0x1053, attributes.rescale.slope)]));
  return item(encode(elements, explicit, true));
}

/** An encapsulated pixel data value: an empty offset table, one fragment, the sequence delimiter. */
function encapsulatedValue(frame: Uint8Array): Buffer {
  const padded = Buffer.concat([Buffer.from(frame), Buffer.alloc(frame.length % 2)]);
  return Buffer.concat([item(Buffer.alloc(0)), item(padded), item(Buffer.alloc(0), 0xe0dd)]);
}

/** A DICOM Part 10 file (MR image storage) holding one image as `spec` describes, for tests. */
export function dicomFile(spec: DicomImageSpec): Buffer {
  const syntax = spec.transferSyntax ?? TransferSyntax.explicitLittle;
  const explicit = syntax !== TransferSyntax.implicitLittle;
  const little = syntax !== TransferSyntax.explicitBig;
  const bits = spec.bitsAllocated ?? 16;
  const samples = spec.samples ?? 1;
  const meta = encode(
    [
      { group: 2, element: 1, vr: 'OB', value: Buffer.from([0, 1]) },
      { group: 2, element: 2, vr: 'UI', value: text(MR_IMAGE_STORAGE, '\0') },
      { group: 2, element: 3, vr: 'UI', value: text('1.2.826.0.1.3680043.2.1143.1', '\0') },
      { group: 2, element: 0x10, vr: 'UI', value: text(syntax, '\0') },
    ],
    true,
    true,
  );
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(meta.length);
  const metaGroup = Buffer.concat([encode([{ group: 2, element: 0, vr: 'UL', value: groupLength }], true, true), meta]);

  const ids = spec.identifiers ?? {};
  const optional = (group: number, element: number, vr: string, value: string | undefined): ElementSpec[] =>
    value ? [{ group, element, vr, value: text(value, vr === 'UI' ? '\0' : ' ') }] : [];
  const elements: ElementSpec[] = [
    ...optional(8, 5, 'CS', spec.characterSet),
    { group: 8, element: 0x16, vr: 'UI', value: text(MR_IMAGE_STORAGE, '\0') },
    ...optional(8, 0x18, 'UI', ids.sopInstanceUid),
    ...optional(8, 0x50, 'SH', ids.accessionNumber),
    { group: 8, element: 0x60, vr: 'CS', value: text(spec.modality ?? 'MR') },
    ...optional(0x10, 0x10, 'PN', spec.patient?.name),
    ...optional(0x10, 0x20, 'LO', spec.patient?.id),
    ...optional(0x10, 0x21, 'LO', spec.patient?.issuer),
    ...optional(0x20, 0xd, 'UI', ids.studyInstanceUid),
    ...optional(0x20, 0xe, 'UI', ids.seriesInstanceUid),
    ...optional(0x20, 0x37, 'DS', spec.orientation?.join('\\')),
    { group: 0x28, element: 2, vr: 'US', value: us(samples, little) },
    { group: 0x28, element: 4, vr: 'CS', value: text(spec.photometric ?? (samples === 3 ? 'RGB' : 'MONOCHROME2')) },
  ];
  if (samples === 3) elements.push({ group: 0x28, element: 6, vr: 'US', value: us(spec.planar ? 1 : 0, little) });
  if (spec.frames) elements.push({ group: 0x28, element: 8, vr: 'IS', value: text(String(spec.frames)) });
  elements.push(
    { group: 0x28, element: 0x10, vr: 'US', value: us(spec.height, little) },
    { group: 0x28, element: 0x11, vr: 'US', value: us(spec.width, little) },
    { group: 0x28, element: 0x100, vr: 'US', value: us(bits, little) },
    { group: 0x28, element: 0x101, vr: 'US', value: us(spec.bitsStored ?? bits, little) },
    { group: 0x28, element: 0x102, vr: 'US', value: us((spec.bitsStored ?? bits) - 1, little) },
    { group: 0x28, element: 0x103, vr: 'US', value: us(spec.signed ? 1 : 0, little) },
  );
  if (spec.window) {
    elements.push(
      { group: 0x28, element: 0x1050, vr: 'DS', value: text(String(spec.window.center)) },
      { group: 0x28, element: 0x1051, vr: 'DS', value: text(String(spec.window.width)) },
    );
  }
  if (spec.rescale) {
    elements.push(
      { group: 0x28, element: 0x1052, vr: 'DS', value: text(String(spec.rescale.intercept)) },
      { group: 0x28, element: 0x1053, vr: 'DS', value: text(String(spec.rescale.slope)) },
    );
  }
  if (spec.privateBytes) elements.push({ group: 0x29, element: 0x1010, vr: 'OB', value: Buffer.alloc(spec.privateBytes + (spec.privateBytes % 2)) });
  const groups = spec.functionalGroups;
  if (groups?.shared) elements.push({ group: 0x5200, element: 0x9229, vr: 'SQ', value: functionalGroupItem(groups.shared, explicit) });
  if (groups?.perFrame) elements.push({ group: 0x5200, element: 0x9230, vr: 'SQ', value: Buffer.concat(groups.perFrame.map((frame) => functionalGroupItem(frame, explicit))) });
  elements.push(
    spec.encapsulated
      ? { group: 0x7fe0, element: 0x10, vr: 'OB', value: encapsulatedValue(spec.encapsulated), undefinedLength: true }
      : { group: 0x7fe0, element: 0x10, vr: bits === 8 ? 'OB' : 'OW', value: pixelBytes(spec, little) },
  );
  const dataSet = encode(elements, explicit, little);
  // The deflated syntax is explicit VR little endian with the data set (not the file meta group) deflated.
  const stored = syntax === TransferSyntax.deflated ? deflateRawSync(dataSet) : dataSet;
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), metaGroup, stored]);
}
