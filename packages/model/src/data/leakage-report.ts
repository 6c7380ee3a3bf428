import { crossSplitDuplicates, patientsRecord, type PreparedTaskData } from './prepare-task-data.js';

/** What `btd split` reports of a split: its groups and counts, and every way a held-out image could leak. */
export interface LeakageReport {
  images: number;
  rejected: PreparedTaskData['dataset']['rejected'];
  duplicateThreshold: number;
  nearDuplicateGroups: number;
  imagesInDuplicateGroups: number;
  splitCounts: Record<string, number>;
  straddlingGroups: number;
  /** Near-duplicate pairs across splits, recomputed from the pixels rather than read off the groups. */
  crossSplitNearDuplicates: number;
  patients?: NonNullable<ReturnType<typeof patientsRecord>>;
  fingerprint: string;
  /** A saved split that was checked: its training images with a near-duplicate among its held-out ones. */
  savedSplit?: { file: string; trainingImagesWithNearDuplicateHeldOut: number; examples: string[] };
  externalTest?: { images: number; withNearDuplicateInData: number; withPatientInData: number };
}

function countGrouped(groups: number[]): number {
  const sizes = new Map<number, number>();
  for (const g of groups) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  return [...sizes.values()].filter((s) => s > 1).reduce((a, b) => a + b, 0);
}

/** The report of a prepared split; `savedSplitFile` names the saved split it reused, if any. */
export function leakageReport(prepared: PreparedTaskData, savedSplitFile?: string): LeakageReport {
  // A saved split is reused with every straddling group moved out of training: what moved is what leaked.
  const leakedIntoTraining = prepared.reusedSplit?.movedOutOfTraining ?? [];
  const patients = patientsRecord(prepared);
  const counts: Record<string, number> = {};
  for (const a of prepared.split.assignments) counts[a.split] = (counts[a.split] ?? 0) + 1;
  const external = prepared.external;
  return {
    images: prepared.dataset.files.length,
    rejected: prepared.dataset.rejected,
    duplicateThreshold: prepared.duplicateThreshold,
    nearDuplicateGroups: prepared.duplicateGroups,
    imagesInDuplicateGroups: countGrouped(prepared.split.assignments.map((a) => a.group)),
    splitCounts: counts,
    straddlingGroups: prepared.straddling,
    crossSplitNearDuplicates: crossSplitDuplicates(prepared),
    ...(patients ? { patients } : {}),
    fingerprint: prepared.split.fingerprint,
    ...(savedSplitFile ? { savedSplit: { file: savedSplitFile, trainingImagesWithNearDuplicateHeldOut: leakedIntoTraining.length, examples: leakedIntoTraining.slice(0, 10) } } : {}),
    ...(external
      ? {
          externalTest: {
            images: external.dataset.files.length,
            withNearDuplicateInData: external.hasDuplicateInTraining.filter(Boolean).length,
            withPatientInData: external.sharesPatientWithTraining.filter(Boolean).length,
          },
        }
      : {}),
  };
}

/** Whether the report finds a leak: a straddling group, a near-duplicate pair across splits, a leaked training image, or a patient in two splits. */
export function hasLeaks(report: LeakageReport): boolean {
  return (
    report.straddlingGroups > 0 ||
    report.crossSplitNearDuplicates > 0 ||
    (report.savedSplit?.trainingImagesWithNearDuplicateHeldOut ?? 0) > 0 ||
    (report.patients?.acrossSplits ?? 0) > 0
  );
}

/** The report as the lines `btd split` prints, its verdict last. */
export function leakageReportLines(report: LeakageReport): string[] {
  const lines = [
    `${report.images} images, ${report.rejected.length} rejected; ${report.nearDuplicateGroups} near-duplicate groups (${report.imagesInDuplicateGroups} images, correlation ≥ ${report.duplicateThreshold})`,
    `split ${JSON.stringify(report.splitCounts)}, fingerprint ${report.fingerprint.slice(0, 16)}`,
  ];
  const saved = report.savedSplit;
  if (saved) {
    const leaked = saved.trainingImagesWithNearDuplicateHeldOut;
    lines.push(`saved split ${saved.file}: ${leaked} training images have a near-duplicate among its validation or test images${leaked ? ` (e.g. ${saved.examples.slice(0, 3).join(', ')})` : ''}`);
  } else {
    lines.push(`groups straddling splits: ${report.straddlingGroups}; near-duplicate pairs across splits (recomputed): ${report.crossSplitNearDuplicates}`);
  }
  const patients = report.patients;
  if (patients) {
    const fromFile = patients.file ? `; ${patients.file}: ${patients.unmatchedEntries} entries match no image` : '';
    lines.push(
      `${patients.patients} patients (${patients.imagesWithPatient} images), ${patients.studies} DICOM studies, ${patients.multiFrameFiles} multi-frame files: ` +
        `${patients.groupsBefore} groups joined into ${patients.groupsAfter}; patients in more than one split: ${patients.acrossSplits}${fromFile}`,
    );
  }
  if (report.externalTest) {
    const { withNearDuplicateInData, withPatientInData, images } = report.externalTest;
    lines.push(`test folder: ${withNearDuplicateInData} of ${images} images have a near-duplicate in the data folder, ${withPatientInData} a patient or study there`);
  }
  lines.push(hasLeaks(report) ? 'LEAKS FOUND' : 'no leaks');
  return lines;
}
