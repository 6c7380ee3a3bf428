// The parts of dcmjs (which ships no type declarations) that btd uses.
declare module 'dcmjs' {
  /** A data set by keyword, as dcmjs's naturalized form has it. */
  type NaturalDataset = Record<string, unknown>;
  interface DicomDictInstance {
    dict: Record<string, unknown>;
    write(): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomDict: new (meta: Record<string, unknown>) => DicomDictInstance;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { untilTag?: string; includeUntilTagValue?: boolean; ignoreErrors?: boolean }): { dict: Record<string, unknown> };
      };
      DicomMetaDictionary: {
        naturalizeDataset(dataset: Record<string, unknown>): NaturalDataset;
        denaturalizeDataset(dataset: NaturalDataset): Record<string, unknown>;
      };
    };
  };
  export default dcmjs;
}
