import type { TrainingJob } from '@btd/shared';

/** A dataset as a training request or the configuration names it. */
export type DatasetSpec = TrainingJob['dataset'];

/** Parses a dataset named on the command line or in the configuration: `s3://<prefix>/` or a folder path. */
export function parseDatasetSpec(value: string): DatasetSpec {
  if (value.startsWith('s3://')) {
    const prefix = value.slice('s3://'.length);
    return { kind: 's3', prefix: prefix.endsWith('/') ? prefix : `${prefix}/` };
  }
  return { kind: 'local', path: value };
}

/** A human-readable name of a dataset, recorded in manifests. */
export function describeDataset(spec: DatasetSpec): string {
  return spec.kind === 's3' ? `s3://${spec.prefix}` : spec.path;
}
