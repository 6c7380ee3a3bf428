import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const realpathOfFs = fs.promises.realpath;

/**
 * Once each link is resolved (`realpath` of node:fs/promises, as a check of where it leads does),
 * points it at its new target, as someone changing it right after the check would: what is read
 * afterwards shows whether the check's answer or the link was followed. `restore()` puts realpath back.
 */
export function relinkOnceResolved(relinks: Map<string, string>): void {
  fs.promises.realpath = (async (file: fs.PathLike, options?: fs.ObjectEncodingOptions | BufferEncoding | null) => {
    const real = await realpathOfFs(file, options);
    const target = relinks.get(String(file));
    if (target !== undefined) {
      relinks.delete(String(file));
      fs.unlinkSync(String(file));
      fs.symlinkSync(target, String(file));
    }
    return real;
  }) as typeof fs.promises.realpath;
  // `import { realpath } from 'node:fs/promises'` sees the replacement.
  syncBuiltinESMExports();
}

relinkOnceResolved.restore = (): void => {
  fs.promises.realpath = realpathOfFs;
  syncBuiltinESMExports();
};
