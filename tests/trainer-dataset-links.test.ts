import { copyFile, mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRAINING_JOB_NAME, enqueueTraining, type TrainingJob, type TrainingResult } from '@btd/shared';
import { useRegistryEnv } from './registry-fixtures.js';
import { sampleImages, waitFor } from './helpers/index.js';
import { TINY_TRAINING, linkDataset, useTrainerTestBed } from './trainer-fixtures.js';

// The trainer's roots are <env.dir>/trainer and the shared datasets (trainerConfig); <env.dir>/elsewhere is outside them.
const env = useRegistryEnv();
const bed = useTrainerTestBed(env);

const request = (folder: string): TrainingJob => ({ task: 'tumor-binary', dataset: { kind: 'local', path: folder }, hyperParameters: { ...TINY_TRAINING, epochs: 1 }, requestedBy: 'ops' });

/** A folder outside the trainer's roots holding real copies of `count` slices of br35h/<folder>. */
async function copiesElsewhere(name: string, folder: 'yes' | 'no', count: number): Promise<string> {
  const dir = path.join(env.dir, 'elsewhere', name);
  await mkdir(dir, { recursive: true });
  for (const image of await sampleImages(`br35h/${folder}`, count)) await copyFile(image, path.join(dir, path.basename(image)));
  return dir;
}

/** Runs a training of one attempt on `folder` and returns its failure. */
async function failureOf(jobId: string, folder: string): Promise<string> {
  const job = await bed.queue.add(TRAINING_JOB_NAME, request(folder), { jobId, attempts: 1 });
  // The state first, then the job: a job read before its state became failed would lack its reason.
  const failed = await waitFor(async () => ((await bed.queue.getJobState(job.id!)) === 'failed' ? bed.queue.getJob(job.id!) : undefined), {
    timeoutMs: 120_000,
    intervalMs: 100,
    what: `training ${jobId} to fail`,
  });
  return failed.failedReason;
}

describe('a training on a local folder holding links', () => {
  it('reads the images links keep within the roots, and skips and counts among the rejected those a link leads outside', async () => {
    bed.start();
    // Links to the shared datasets, one of the roots: read as before.
    const dataset = await linkDataset(path.join(env.dir, 'trainer', 'linked'), 10, 0);
    const elsewhere = await copiesElsewhere('images', 'no', 1);
    await symlink(path.join(elsewhere, (await readdir(elsewhere))[0]!), path.join(dataset, 'no', 'zz-outside.jpg'));
    await symlink('/etc/passwd', path.join(dataset, 'yes', 'passwd'));

    const job = await enqueueTraining(bed.queue, 'req-links', request(dataset));
    const result = (await job.waitUntilFinished(bed.events, 240_000)) as TrainingResult;
    const manifest = await env.registry.readManifest('tumor-binary', result.version);
    expect(manifest.dataset).toMatchObject({ files: 20, perClass: { tumor: 10, no_tumor: 10 }, rejected: 2 });
  }, 300_000);

  it('fails, naming it, when a link leads a class folder or the patients file outside the roots, and reads nothing there', async () => {
    bed.start();
    const classOutside = await linkDataset(path.join(env.dir, 'trainer', 'class-outside'), { yes: 6, no: 0 }, 0);
    await symlink(await copiesElsewhere('no', 'no', 2), path.join(classOutside, 'no'));
    const reason = await failureOf('training-class-outside', classOutside);
    expect(reason).toContain(`cannot train tumor-binary on ${classOutside}: every class needs training images, and no_tumor has none`);
    expect(reason).toContain('no_tumor: none of its 1 files could be read: no (a link leads it outside TRAINER_DATASET_ROOTS (');

    const patientsOutside = await linkDataset(path.join(env.dir, 'trainer', 'patients-outside'), 6, 0);
    await symlink('/etc/passwd', path.join(patientsOutside, 'patients.csv'));
    const refused = await failureOf('training-patients-outside', patientsOutside);
    expect(refused).toMatch(new RegExp(`^patients file ${patientsOutside}/patients.csv: a link leads it outside TRAINER_DATASET_ROOTS \\(.*\\); not read$`));
    // Nothing of the file it leads to shows.
    expect(refused).not.toContain('root:');
  }, 300_000);
});
