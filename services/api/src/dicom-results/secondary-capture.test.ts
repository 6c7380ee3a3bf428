import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { dicomFile } from '../../../../tests/helpers/dicom-file.js';
import { secondaryCapture, uidFrom, type CaptureSpec } from './secondary-capture.js';

const original = dicomFile({
  width: 2,
  height: 2,
  pixels: [0, 1, 2, 3],
  frames: 1,
  patient: { name: 'Doe^Jane', id: 'P-1' },
  identifiers: { studyInstanceUid: '1.2.826.0.1.7', seriesInstanceUid: '1.2.826.0.1.7.1', sopInstanceUid: '1.2.826.0.1.7.1.1', accessionNumber: 'ACC-9' },
});

const rgb = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 10) };
const spec: CaptureSpec = {
  studyId: 'stu_1',
  imageId: 'img_1',
  instanceNumber: 2,
  rgb,
  comment: 'btd: tumor (tumour probability 0.912); type glioma.',
  softwareVersions: ['tumor-binary 1', 'tumor-type 2'],
  createdAt: '2026-11-30T19:55:01.250Z',
};

const parse = (bytes: Uint8Array) => dicomParser.parseDicom(bytes);
const text = (data: dicomParser.DataSet, tag: string) => data.string(tag)?.replace(/\0+$/, '').trim();

describe('secondaryCapture', () => {
  it("files the overlay under the original's patient and study, pointing at the slice it was made from", () => {
    const capture = parse(secondaryCapture({ ...spec, original }));
    expect(text(capture, 'x00080016')).toBe('1.2.840.10008.5.1.4.1.1.7');
    expect(text(capture, 'x00100010')).toBe('Doe^Jane');
    expect(text(capture, 'x00100020')).toBe('P-1');
    expect(text(capture, 'x0020000d')).toBe('1.2.826.0.1.7');
    expect(text(capture, 'x00080050')).toBe('ACC-9');
    // Its own series, not the slice's.
    expect(text(capture, 'x0020000e')).toBe(uidFrom('btd overlay series stu_1 1.2.826.0.1.7'));
    const source = capture.elements.x00082112?.items?.[0]?.dataSet;
    expect(source && [text(source, 'x00081150'), text(source, 'x00081155')]).toEqual(['1.2.840.10008.5.1.4.1.1.4', '1.2.826.0.1.7.1.1']);
    expect(text(capture, 'x00204000')).toBe(spec.comment);
    expect([text(capture, 'x00080023'), text(capture, 'x00080033')]).toEqual(['20261130', '195501.250']);
    expect(capture.intString('x00200013')).toBe(2);
  });

  it("keeps a patient's name beyond ASCII, re-encoded as UTF-8 and labelled so", () => {
    const latin1 = dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], characterSet: 'ISO_IR 100', patient: { name: 'Müller^Jörg', id: 'P-2' } });
    const capture = parse(secondaryCapture({ ...spec, original: latin1 }));
    expect(text(capture, 'x00080005')).toBe('ISO_IR 192');
    const name = capture.elements.x00100010!;
    expect(Buffer.from(capture.byteArray.subarray(name.dataOffset, name.dataOffset + name.length)).toString('utf8').trim()).toBe('Müller^Jörg');
  });

  it('holds the overlay as 8-bit RGB, pixel for pixel', () => {
    const capture = parse(secondaryCapture(spec));
    expect([capture.uint16('x00280010'), capture.uint16('x00280011'), capture.uint16('x00280002'), text(capture, 'x00280004')]).toEqual([2, 3, 3, 'RGB']);
    const pixels = capture.elements.x7fe00010!;
    expect(Buffer.from(capture.byteArray.subarray(pixels.dataOffset, pixels.dataOffset + 18)).equals(Buffer.from(rgb.data))).toBe(true);
  });

  it('puts the overlays of originals from two DICOM studies in two series, one in each study', () => {
    const otherStudy = dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], identifiers: { studyInstanceUid: '1.2.826.0.1.8', sopInstanceUid: '1.2.826.0.1.8.1.1' } });
    const first = parse(secondaryCapture({ ...spec, original }));
    const second = parse(secondaryCapture({ ...spec, imageId: 'img_2', original: otherStudy }));
    expect([text(first, 'x0020000d'), text(second, 'x0020000d')]).toEqual(['1.2.826.0.1.7', '1.2.826.0.1.8']);
    expect(text(second, 'x0020000e')).not.toBe(text(first, 'x0020000e'));
    // Two slices of one DICOM study share the series.
    const sameStudy = dicomFile({ width: 2, height: 2, pixels: [0, 1, 2, 3], identifiers: { studyInstanceUid: '1.2.826.0.1.7', sopInstanceUid: '1.2.826.0.1.7.1.2' } });
    expect(text(parse(secondaryCapture({ ...spec, imageId: 'img_3', original: sameStudy })), 'x0020000e')).toBe(text(first, 'x0020000e'));
  });

  it('gives the same UIDs every time, and a JPEG or PNG original a study of its own', () => {
    expect(secondaryCapture(spec).equals(secondaryCapture(spec))).toBe(true);
    const capture = parse(secondaryCapture(spec));
    expect(text(capture, 'x0020000d')).toBe(uidFrom('btd study stu_1'));
    expect(text(capture, 'x00080018')).toMatch(/^2\.25\.\d{1,39}$/);
    expect(capture.elements.x00082112).toBeUndefined();
    expect(text(parse(secondaryCapture({ ...spec, imageId: 'img_2' })), 'x00080018')).not.toBe(text(capture, 'x00080018'));
  });
});
