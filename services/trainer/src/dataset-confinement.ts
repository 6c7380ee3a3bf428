import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { isInsideFolder } from '@btd/shared';

/**
 * The boundary of what a training request may read: the trainer's dataset roots
 * (`TRAINER_DATASET_ROOTS`) once links are resolved. A link under a root that leads out of every
 * root (to /etc, another disk) is neither published nor read; one that stays within them (a
 * dataset assembled from others, a link into another root) is.
 */
export interface DatasetConfinement {
  /** Whether a real path (its links resolved) lies under one of the roots, themselves taken with their links resolved. */
  allows(realPath: string): Promise<boolean>;
  /** The roots, as a refusal names them. */
  description: string;
}

/**
 * The look-ups of roots' real paths under way, shared by every confinement: while one hangs (a
 * hard-mounted NFS root gone away), each listing and training would otherwise start another, each
 * holding a thread of libuv's pool until none is left for any file read. Once settled, a root is
 * looked up afresh (a root link pointed elsewhere is followed).
 */
const lookups = new Map<string, Promise<string | null>>();

function realRootOf(root: string): Promise<string | null> {
  let lookup = lookups.get(root);
  if (!lookup) {
    lookup = realpath(root)
      .catch(() => null)
      .finally(() => lookups.delete(root));
    lookups.set(root, lookup);
  }
  return lookup;
}

/** The confinement of the given roots (as configured). */
export function confinementOf(roots: readonly string[]): DatasetConfinement {
  const written = roots.map((root) => path.resolve(root));
  let real: Promise<string | null>[] | undefined;
  return {
    async allows(realPath) {
      if (written.some((root) => isInsideFolder(realPath, root))) return true;
      // The roots' own real paths are looked up only for a path outside them as written: a root may itself be a link (/data -> /mnt/data).
      real ??= written.map(realRootOf);
      // Each root answers on its own: one whose look-up hangs (a hard-mounted NFS root gone away) does not hold the answer of another.
      const under = async (root: Promise<string | null>): Promise<true> => {
        const found = await root;
        if (found === null || !isInsideFolder(realPath, found)) throw new Error(`${realPath} is not under ${found ?? 'a missing root'}`);
        return true;
      };
      return Promise.any(real.map(under)).catch(() => false);
    },
    description: `TRAINER_DATASET_ROOTS (${written.join(', ') || 'none'})`,
  };
}
