import { ArtifactVerificationError, verifyArtifact, type ArtifactFiles, type VerifiableModel } from '@btd/shared';

export interface VerifyRequest {
  id: number;
  task: string;
  version: string;
  files: ArtifactFiles;
  tolerance?: number;
}

/**
 * A verifier thread's answer. `refused` says the artifact is at fault (it does not load or does not
 * behave as its manifest promises); a failure that is not refused is the thread's own (its backend
 * did not start, its runtime failed), and says nothing about the artifact.
 */
export type VerifyReply = { id: number; ok: true; backend: string } | { id: number; ok: false; refused: boolean; reason: string };

/**
 * Answers one verification request once the thread's backend is `ready`: the artifact must load and
 * pass its probe. Only an {@link ArtifactVerificationError} refuses it. A pass names the backend
 * the probe ran on.
 */
export async function answerVerifyRequest(
  request: VerifyRequest,
  ready: Promise<{ name: string }>,
  load: (files: ArtifactFiles) => Promise<VerifiableModel>,
): Promise<VerifyReply> {
  try {
    const backend = await ready;
    const model = await verifyArtifact(request.files, {
      task: request.task,
      version: request.version,
      load,
      ...(request.tolerance === undefined ? {} : { tolerance: request.tolerance }),
    });
    model.dispose();
    return { id: request.id, ok: true, backend: backend.name };
  } catch (error) {
    if (error instanceof ArtifactVerificationError) return { id: request.id, ok: false, refused: true, reason: error.reason };
    return { id: request.id, ok: false, refused: false, reason: (error as Error).message };
  }
}

/** The error a verifier thread's failed reply stands for. */
export function verifyReplyError(reply: Extract<VerifyReply, { ok: false }>, task: string, version: string): Error {
  if (reply.refused) return new ArtifactVerificationError(task, version, reply.reason);
  return new Error(`artifact verifier thread could not verify ${task}/${version}: ${reply.reason}`);
}
