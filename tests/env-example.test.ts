import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/index.js';

describe('.env.example', () => {
  it('lists every setting of every service (regenerate with `node scripts/env-example.js`)', () => {
    const result = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/env-example.js'), '--check'], {
      encoding: 'utf8',
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
