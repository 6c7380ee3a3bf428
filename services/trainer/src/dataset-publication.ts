import { randomUUID } from 'node:crypto';
import { opendir, realpath, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { once, publishTrainerDatasets, withdrawTrainerDatasets, type DatasetRoot, type Logger, type Redis, type TrainerDatasets } from '@btd/shared';
import { confinementOf, type DatasetConfinement } from './dataset-confinement.js';
import { datasetRootsOf } from './dataset-source.js';

/**
 * How often a trainer refreshes what it publishes, how long a publication outlives its last
 * refresh, how long a refresh (the first one, at start-up, too) waits for a root's listing before
 * publishing the root unlisted (a refresh and its wait end before the publication would lapse), and
 * the bounds of what it lists under each root: folders published, depth below the root, and
 * directory entries (files included) read per refresh.
 */
export const DATASET_PUBLICATION_DEFAULTS = Object.freeze({ intervalMs: 10_000, ttlMs: 30_000, listingWaitMs: 10_000, maxFolders: 1000, maxDepth: 6, maxEntries: 50_000 });

/** The bounds of the listing of one root. */
export interface ListingBounds {
  /** Folders published under the root. */
  maxFolders: number;
  /** Levels below the root. */
  maxDepth: number;
  /** Directory entries, files included, read under the root per refresh. */
  maxEntries: number;
}

/** What {@link publishDatasets} needs. */
export interface DatasetPublicationOptions extends Partial<ListingBounds> {
  redis: Redis;
  /** `QUEUE_PREFIX`: the publication sits beside the training queue it drains. */
  prefix: string;
  /** `TRAINER_DATASET_ROOTS`, as configured. */
  datasetRoots: string;
  logger: Logger;
  intervalMs?: number;
  ttlMs?: number;
  listingWaitMs?: number;
  /** How one root is listed ({@link listDatasetRoot}), within the confinement of all the roots. */
  listRoot?: (root: string, bounds: ListingBounds, confinement: DatasetConfinement) => Promise<DatasetRoot>;
}

/** A trainer's running publication. */
export interface DatasetPublication {
  /** The trainer's name, as it publishes itself. */
  readonly trainer: string;
  /** Stops refreshing and removes the publication; idempotent. */
  close(): Promise<void>;
}

/** The sub-folders of `dir` by name, sorted, or null when more than `maxEntries` entries would have to be read (or it cannot be read). */
async function subFolders(dir: string, maxEntries: number): Promise<{ names: string[] | null; read: number }> {
  const names: string[] = [];
  let read = 0;
  const handle = await opendir(dir, { bufferSize: 256 }).catch(() => null);
  if (!handle) return { names: null, read };
  for await (const entry of handle) {
    // Leaving the loop early closes the handle.
    if (++read > maxEntries) return { names: null, read };
    // A link to a folder is read as the folder (the loader follows it), so it counts as one.
    const isFolder = entry.isDirectory() || (entry.isSymbolicLink() && (await stat(path.join(dir, entry.name)).catch(() => null))?.isDirectory() === true);
    if (isFolder) names.push(entry.name);
  }
  return { names: names.sort(), read };
}

/**
 * Lists the folders under a root, level by level, within `bounds`: a folder whose sub-folders would
 * pass `maxFolders` or `maxDepth`, or whose entries would pass what is left of `maxEntries`, is
 * published as unlisted, and so is every folder after the entries run out, a hidden one, and one
 * reached again through a link. A folder that a link leads out of `confinement` (every root of the
 * trainer; this one alone by default) is published as outside, neither listed nor read.
 */
export async function listDatasetRoot(root: string, bounds: ListingBounds, confinement: DatasetConfinement = confinementOf([root])): Promise<DatasetRoot> {
  const absolute = path.resolve(root);
  if ((await stat(absolute).catch(() => null))?.isDirectory() !== true) return { path: absolute, folders: null, unlisted: [] };
  const folders: string[] = [];
  const unlisted: string[] = [];
  const outside = new Set<string>();
  let entriesLeft = bounds.maxEntries;
  // Each folder is listed once: reached again through a link (`latest -> .`, two links to one
  // folder), it would be listed inside itself down to the bounds.
  const seen = new Set<string>();
  for (const pending = ['']; pending.length > 0; ) {
    const relative = pending.shift()!;
    const depth = relative === '' ? 0 : relative.split('/').length;
    const real = await realpath(path.join(absolute, relative)).catch(() => null);
    // A link out of the roots (to /etc, another disk): neither listed nor read, the trainer refuses it.
    if (real !== null && !(await confinement.allows(real))) {
      outside.add(relative);
      continue;
    }
    // A hidden folder (`.snapshot` of a NetApp volume holds copies of the whole tree, `.git` its objects) is not listed either.
    if (real === null || seen.has(real) || path.basename(relative).startsWith('.')) {
      unlisted.push(relative);
      continue;
    }
    seen.add(real);
    // Listed at the real path checked: a link changed since (to /etc) is not followed.
    const listed = depth < bounds.maxDepth && entriesLeft > 0 ? await subFolders(real, entriesLeft) : { names: null, read: 0 };
    entriesLeft -= listed.read;
    if (listed.names === null || folders.length + listed.names.length > bounds.maxFolders) {
      unlisted.push(relative);
      continue;
    }
    const children = listed.names.map((name) => (relative === '' ? name : `${relative}/${name}`));
    folders.push(...children);
    pending.push(...children);
  }
  const published = { path: absolute, folders: folders.filter((folder) => !outside.has(folder)).sort(), unlisted: unlisted.sort() };
  return outside.size > 0 ? { ...published, outside: [...outside].sort() } : published;
}

/**
 * Publishes, in Redis, the trainer's dataset roots and the folders under them (within the listing
 * bounds), and refreshes it `intervalMs` after each refresh ends (a dataset copied in shows within
 * that time): the API refuses a training whose local folder no running trainer could read, and a
 * trainer that cannot read one hands it back while another could. The first publication is
 * awaited. A root whose listing has not ended within `listingWaitMs` (a hard-mounted NFS root gone
 * away hangs) is published unlisted, with a warning, and the trainer starts all the same; its
 * listing is not started again while it hangs (each would hold a thread of libuv's pool that the
 * training's file reads share), and the first refresh after it ends publishes what it found.
 */
export async function publishDatasets(options: DatasetPublicationOptions): Promise<DatasetPublication> {
  const { redis, prefix, logger, intervalMs = DATASET_PUBLICATION_DEFAULTS.intervalMs, ttlMs = DATASET_PUBLICATION_DEFAULTS.ttlMs, listRoot = listDatasetRoot } = options;
  const listingWaitMs = options.listingWaitMs ?? DATASET_PUBLICATION_DEFAULTS.listingWaitMs;
  const bounds: ListingBounds = {
    maxFolders: options.maxFolders ?? DATASET_PUBLICATION_DEFAULTS.maxFolders,
    maxDepth: options.maxDepth ?? DATASET_PUBLICATION_DEFAULTS.maxDepth,
    maxEntries: options.maxEntries ?? DATASET_PUBLICATION_DEFAULTS.maxEntries,
  };
  const trainer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  // A root whose listing fails half-way (EIO, a stale NFS handle) is published whole as unlisted: what lies under it is accepted for the trainer to check.
  const wholeUnlisted = (root: string): DatasetRoot => ({ path: path.resolve(root), folders: [], unlisted: [''] });
  const unlistedRoot = (root: string, error: unknown): DatasetRoot => {
    logger.warn({ err: error, root }, 'could not list a dataset root; published unlisted');
    return wholeUnlisted(root);
  };
  // The listing of each root that hung, kept across refreshes: raced once against the wait, then only
  // looked at (each race would leave a reaction on a promise that may never settle), until it ends.
  const hungListings = new Map<string, { found?: DatasetRoot }>();
  const listed = async (root: string, waited: Promise<null>): Promise<DatasetRoot> => {
    const hung = hungListings.get(root);
    if (hung) {
      if (hung.found === undefined) return wholeUnlisted(root);
      hungListings.delete(root);
      logger.info({ root }, 'the listing of a dataset root finished; published listed');
      return hung.found;
    }
    const listing = listRoot(root, bounds, confinementOf(datasetRootsOf(options.datasetRoots))).catch((error: unknown) => unlistedRoot(root, error));
    const found = await Promise.race([listing, waited]);
    if (found !== null) return found;
    const pending: { found?: DatasetRoot } = {};
    hungListings.set(root, pending);
    void listing.then((ended) => (pending.found = ended));
    logger.warn({ root, waitedMs: listingWaitMs }, 'the listing of a dataset root did not finish; published unlisted until it does');
    return wholeUnlisted(root);
  };
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const publish = async (): Promise<void> => {
    let waiting: NodeJS.Timeout | undefined;
    const waited = new Promise<null>((resolve) => (waiting = setTimeout(resolve, listingWaitMs, null).unref()));
    const roots = await Promise.all(datasetRootsOf(options.datasetRoots).map((root) => listed(root, waited))).finally(() => clearTimeout(waiting));
    // A listing that ended after the trainer withdrew would publish it again, for other trainers to wait for.
    if (closed) return;
    const datasets: TrainerDatasets = { trainer, cwd: process.cwd(), roots };
    await publishTrainerDatasets(redis, prefix, datasets, ttlMs);
  };
  const schedule = (): void => {
    timer = setTimeout(() => {
      publish()
        // Redis away: the publication lapses and the API accepts trainings as it does with no trainer; the next refresh restores it.
        .catch((error: unknown) => logger.warn({ err: error }, 'could not publish the dataset roots'))
        .finally(() => {
          if (!closed) schedule();
        });
    }, intervalMs);
    timer.unref();
  };
  await publish();
  schedule();
  return {
    trainer,
    close: once(async () => {
      closed = true;
      clearTimeout(timer);
      await withdrawTrainerDatasets(redis, prefix, trainer).catch((error: unknown) => logger.warn({ err: error }, 'could not withdraw the dataset roots; they expire'));
    }),
  };
}
