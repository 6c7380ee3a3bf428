import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readArtifactDir } from '@btd/model';
import { ArtifactVerifierThread } from './artifact-verifier-thread.js';

const shippedDetector = () => readArtifactDir(fileURLToPath(new URL('../../../models/tumor-binary', import.meta.url)));

describe('the artifact verifier thread', () => {
  it('probes a version on the backend the models are served on (TF_BACKEND), not on its own choice', async () => {
    const verifier = new ArtifactVerifierThread('cpu');
    try {
      expect(await verifier.verify('tumor-binary', 'shipped', await shippedDetector())).toBe('cpu');
    } finally {
      await verifier.close();
    }
  });

  it('makes the same automatic choice as the serving threads when no backend is set', async () => {
    const verifier = new ArtifactVerifierThread();
    try {
      // tfjs-node when it loads, else wasm: on a machine without tfjs-node, wasm.
      expect(['tensorflow', 'wasm']).toContain(await verifier.verify('tumor-binary', 'shipped', await shippedDetector()));
    } finally {
      await verifier.close();
    }
  });
});
