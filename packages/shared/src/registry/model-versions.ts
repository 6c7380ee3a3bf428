import { createHash } from 'node:crypto';
import { DIGEST_FILE, assertTaskName, assertVersionId, formatVersionId, isVersionId, registryKeys } from './registry-keys.js';
import { assertSafeArtifactName, digestArtifact, type ArtifactDigest, type ArtifactFiles } from './artifact-files.js';
import { contentTypeOf, getJsonOrNull, type RegistryContext } from './registry-context.js';
import { ObjectNotFoundError } from '../storage/object-not-found.error.js';
import { ArtifactIntegrityError, VersionNotFoundError } from './registry.errors.js';

/** The subset of a model manifest the registry reads; the rest is kept as is. */
export interface RegistryManifest {
  name: string;
  task: string;
  version: string;
  createdAt: string;
  classes: string[];
  inputSize: number;
  metrics?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A version as published. */
export interface PublishedVersion {
  task: string;
  version: string;
  contentHash: string;
  /** True when an identical artifact was already published and its version is returned instead. */
  alreadyPublished: boolean;
}

/** A fetched artifact, checked against its digest. */
export interface FetchedArtifact {
  task: string;
  version: string;
  contentHash: string;
  files: ArtifactFiles;
}

function parseManifest(files: ArtifactFiles, task: string): RegistryManifest {
  const bytes = files['manifest.json'];
  if (!bytes) throw new Error('artifact has no manifest.json');
  if (!files['model.json']) throw new Error('artifact has no model.json');
  const manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as RegistryManifest;
  if (manifest.task !== task) throw new Error(`artifact is a ${String(manifest.task)} model, not ${task}`);
  return manifest;
}

/** Ids of the complete versions of a task (those whose digest was written), oldest first. */
export async function listVersionIds(ctx: RegistryContext, task: string): Promise<string[]> {
  assertTaskName(task);
  const prefix = registryKeys.task(task);
  const ids: string[] = [];
  for (const key of await ctx.store.listKeys(prefix)) {
    const [version, file, ...rest] = key.slice(prefix.length).split('/');
    if (version && isVersionId(version) && file === DIGEST_FILE && rest.length === 0) ids.push(version);
  }
  return ids.sort();
}

/** The digest of a complete version, or null when the version does not exist (or is incomplete). */
export async function readDigest(ctx: RegistryContext, task: string, version: string): Promise<ArtifactDigest | null> {
  assertTaskName(task);
  assertVersionId(version);
  return getJsonOrNull<ArtifactDigest>(ctx.store, registryKeys.digest(task, version));
}

async function findByContentHash(ctx: RegistryContext, task: string, contentHash: string): Promise<string | null> {
  for (const version of await listVersionIds(ctx, task)) {
    if (!version.endsWith(contentHash.slice(0, 8))) continue;
    if ((await readDigest(ctx, task, version))?.contentHash === contentHash) return version;
  }
  return null;
}

/**
 * Publishes an artifact as an immutable version. The digest is written after every file, and after
 * `beforeComplete` (what must be there once the version is listed, such as its status), so a crash
 * or an S3 outage half-way leaves an incomplete prefix that listings ignore. Publishing the same
 * bytes again returns the existing version, which makes a retried publisher harmless.
 */
export async function publishArtifact(
  ctx: RegistryContext,
  task: string,
  files: ArtifactFiles,
  beforeComplete?: (version: string) => Promise<unknown>,
): Promise<PublishedVersion> {
  assertTaskName(task);
  for (const name of Object.keys(files)) assertSafeArtifactName(name);
  if (files[DIGEST_FILE]) throw new Error(`artifact may not contain ${DIGEST_FILE}`);
  parseManifest(files, task);
  const digest = digestArtifact(files);
  const existing = await findByContentHash(ctx, task, digest.contentHash);
  if (existing) return { task, version: existing, contentHash: digest.contentHash, alreadyPublished: true };
  const version = formatVersionId(ctx.now(), digest.contentHash);
  await Promise.all(
    Object.entries(files).map(([name, bytes]) => ctx.store.put(registryKeys.file(task, version, name), bytes, contentTypeOf(name))),
  );
  await beforeComplete?.(version);
  await ctx.store.putJson(registryKeys.digest(task, version), digest);
  return { task, version, contentHash: digest.contentHash, alreadyPublished: false };
}

/**
 * Reads one file a version's digest lists and checks it against its sha256 there. A file that is
 * gone (deleted by hand or by a lifecycle rule) leaves the version as unusable as changed bytes:
 * both throw {@link ArtifactIntegrityError}.
 */
async function readCheckedFile(ctx: RegistryContext, task: string, version: string, name: string, expected: { sha256: string }): Promise<Buffer> {
  assertSafeArtifactName(name);
  const stored = await ctx.store.get(registryKeys.file(task, version, name)).catch((error: unknown) => {
    if (error instanceof ObjectNotFoundError) throw new ArtifactIntegrityError(task, version, `${name} is missing from the store`);
    throw error;
  });
  const actual = createHash('sha256').update(stored).digest('hex');
  if (actual !== expected.sha256) throw new ArtifactIntegrityError(task, version, `${name} does not match its sha256`);
  return stored;
}

/** Reads every file of a version and checks each against the digest. */
export async function fetchArtifact(ctx: RegistryContext, task: string, version: string): Promise<FetchedArtifact> {
  const digest = await readDigest(ctx, task, version);
  if (!digest) throw new VersionNotFoundError(task, version);
  const files: ArtifactFiles = {};
  await Promise.all(
    Object.entries(digest.files).map(async ([name, expected]) => {
      files[name] = new Uint8Array(await readCheckedFile(ctx, task, version, name, expected));
    }),
  );
  if (digestArtifact(files).contentHash !== digest.contentHash) {
    throw new ArtifactIntegrityError(task, version, 'content hash does not match');
  }
  return { task, version, contentHash: digest.contentHash, files };
}

/**
 * Reads one file of a version (a report, a plot); only names listed in its digest are served, and
 * only as they were published: a file gone from the store or changed throws {@link ArtifactIntegrityError}.
 */
export async function readVersionFile(ctx: RegistryContext, task: string, version: string, name: string): Promise<Buffer> {
  const digest = await readDigest(ctx, task, version);
  if (!digest) throw new VersionNotFoundError(task, version);
  const expected = digest.files[name];
  if (!expected) throw new VersionNotFoundError(task, `${version}/${name}`);
  return readCheckedFile(ctx, task, version, name, expected);
}

/** The manifest of a version; throws {@link ArtifactIntegrityError} when its manifest.json is gone from the store or changed. */
export async function readManifest(ctx: RegistryContext, task: string, version: string): Promise<RegistryManifest> {
  return JSON.parse((await readVersionFile(ctx, task, version, 'manifest.json')).toString('utf8')) as RegistryManifest;
}
