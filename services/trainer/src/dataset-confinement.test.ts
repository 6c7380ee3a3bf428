import fs from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confinementOf } from './dataset-confinement.js';

const realpathOfFs = fs.promises.realpath;
let dir: string;

beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), 'btd-confinement-')));
});

afterEach(async () => {
  fs.promises.realpath = realpathOfFs;
  syncBuiltinESMExports();
  await rm(dir, { recursive: true, force: true });
});

describe('confinementOf', () => {
  it('allows a path under a root that is a link while the look-up of another root hangs', async () => {
    const [mounted, linkRoot, hung] = [path.join(dir, 'mnt-data'), path.join(dir, 'data'), path.join(dir, 'nfs')];
    await Promise.all([mkdir(path.join(mounted, 'set'), { recursive: true }), mkdir(hung)]);
    await symlink(mounted, linkRoot);
    let released = false;
    let release!: () => void;
    const hungLookup = new Promise<void>((resolve) => (release = resolve));
    fs.promises.realpath = (async (file: fs.PathLike, options?: fs.ObjectEncodingOptions | BufferEncoding | null) => {
      // The hung root answers only once every answer the other root gives has been given (those run before setImmediate's).
      if (String(file) === hung) await hungLookup;
      const found = await realpathOfFs(file, options);
      if (String(file) === linkRoot)
        setImmediate(() => {
          released = true;
          release();
        });
      return found;
    }) as typeof fs.promises.realpath;
    // `import { realpath } from 'node:fs/promises'` sees the replacement.
    syncBuiltinESMExports();

    const confinement = confinementOf([linkRoot, hung]);
    const answer = await confinement.allows(path.join(mounted, 'set')).then((allowed) => ({ allowed, whileHung: !released }));
    expect(answer).toEqual({ allowed: true, whileHung: true });
    // A path under no root is refused once every root has answered.
    expect(await confinement.allows('/etc')).toBe(false);
  });

  it('looks a hung root up once for every confinement while the look-up hangs, and afresh once it ends', async () => {
    const [elsewhere, hung] = [path.join(dir, 'elsewhere'), path.join(dir, 'nfs')];
    await Promise.all([mkdir(elsewhere), mkdir(hung)]);
    let lookups = 0;
    let release!: () => void;
    let hungLookup = new Promise<void>((resolve) => (release = resolve));
    fs.promises.realpath = (async (file: fs.PathLike, options?: fs.ObjectEncodingOptions | BufferEncoding | null) => {
      if (String(file) === hung) {
        lookups++;
        await hungLookup;
      }
      return realpathOfFs(file, options);
    }) as typeof fs.promises.realpath;
    syncBuiltinESMExports();

    // A listing at each refresh, and each training, checks through a confinement of its own.
    const answers = [confinementOf([hung]).allows(elsewhere), confinementOf([hung]).allows(elsewhere), confinementOf([hung]).allows(elsewhere)];
    expect(lookups).toBe(1);
    release();
    expect(await Promise.all(answers)).toEqual([false, false, false]);

    hungLookup = Promise.resolve();
    expect(await confinementOf([hung]).allows(path.join(hung, 'set'))).toBe(true);
    expect(await confinementOf([hung]).allows(elsewhere)).toBe(false);
    expect(lookups).toBe(2);
  });
});
