import { evaluateModel, loadModel, type LoadedModel } from '@btd/model';
import {
  ArtifactIntegrityError,
  ArtifactVerificationError,
  VersionNotFoundError,
  readArtifactDirectory,
  verifyArtifact,
  type FetchedArtifact,
  type Logger,
  type ModelRegistry,
} from '@btd/shared';
import { decidePromotion, gateMetrics, type GateDecision, type GateMetrics } from './promotion-gate.js';

/** The gate's evidence, recorded in the candidate's manifest (`evaluation`) and registry status. */
export interface GateEvidence {
  /** The fixed evaluation set, as configured (`null`: none configured). */
  evaluationSet: string | null;
  maxImages: number;
  candidate: GateMetrics | null;
  baseline: { version: string; metrics: GateMetrics } | null;
  decision: GateDecision;
  /** The promoted version the candidate was compared with; promotion requires it to still be current. */
  comparedWith: string | null;
}

/** What the gate needs. */
export interface GateContext {
  registry: ModelRegistry;
  logger: Logger;
  /** Local folder of the task's evaluation set, or null when none is configured. */
  evaluationDir: string | null;
  evaluationSet: string | null;
  maxImages: number;
  tolerance: number;
  cacheDir: string;
  /**
   * Aborted when the trainer shuts down or the training is cancelled: the gate stops with the
   * signal's reason between its steps, and within an evaluation at its next image or batch.
   */
  signal?: AbortSignal;
}

async function measure(model: LoadedModel, ctx: GateContext, dir: string, which: string): Promise<GateMetrics> {
  // evaluateModel needs the model's internal forward pass, which every LoadedModel carries.
  const evaluation = await evaluateModel(model as Parameters<typeof evaluateModel>[0], dir, {
    maxImages: ctx.maxImages,
    cacheDir: ctx.cacheDir,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const metrics = gateMetrics(model.manifest.classes, evaluation);
  ctx.logger.info({ model: which, metrics }, 'model evaluated on the evaluation set');
  return metrics;
}

async function measureBaseline(task: string, version: string | null, ctx: GateContext, dir: string): Promise<GateEvidence['baseline']> {
  if (!version) return null;
  // A promoted model that is gone, corrupt or no longer loads is no bar to clear: the candidate is
  // compared with nothing. Any other error (S3, network, the runtime) fails the attempt, which is
  // retried: a blip must not let a worse candidate through.
  const waive = (error: unknown): null => {
    ctx.logger.warn({ err: error, modelVersion: version }, 'promoted model could not be evaluated');
    return null;
  };
  let artifact: FetchedArtifact;
  try {
    artifact = await ctx.registry.fetchArtifact(task, version);
  } catch (error) {
    if (error instanceof ArtifactIntegrityError || error instanceof VersionNotFoundError) return waive(error);
    throw error;
  }
  ctx.signal?.throwIfAborted();
  let model: LoadedModel;
  try {
    model = await verifyArtifact(artifact.files, { task, version, load: loadModel });
  } catch (error) {
    if (error instanceof ArtifactVerificationError) return waive(error);
    throw error;
  }
  try {
    return { version, metrics: await measure(model, ctx, dir, version) };
  } finally {
    model.dispose();
  }
}

/**
 * Runs the promotion gate: verifies the candidate artifact (loads, probe output), evaluates it and
 * the promoted model on the task's fixed evaluation set, and decides.
 */
export async function evaluateCandidate(task: string, outDir: string, ctx: GateContext): Promise<GateEvidence> {
  const base = { evaluationSet: ctx.evaluationSet, maxImages: ctx.maxImages };
  const files = await readArtifactDirectory(outDir);
  const candidate = await verifyArtifact(files, { task, version: 'candidate', load: loadModel });
  try {
    if (!ctx.evaluationDir) {
      const reasons = [`no evaluation set is configured for ${task}`];
      return { ...base, candidate: null, baseline: null, decision: { promote: false, reasons }, comparedWith: null };
    }
    const comparedWith = (await ctx.registry.promoted(task))?.version ?? null;
    ctx.signal?.throwIfAborted();
    const metrics = await measure(candidate, ctx, ctx.evaluationDir, 'candidate');
    ctx.signal?.throwIfAborted();
    const baseline = await measureBaseline(task, comparedWith, ctx, ctx.evaluationDir);
    const decision = decidePromotion(metrics, baseline?.metrics ?? null, ctx.tolerance);
    return { ...base, candidate: metrics, baseline, decision, comparedWith };
  } finally {
    candidate.dispose();
  }
}
