import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../init-backend.js';

describe('Cast on wasm', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('shares the data when the type stays, and the cast outlives its source', () => {
    const backend = tf.backend();
    const dataIds = backend.numDataIds();
    const x = tf.tensor1d([1.5, -2, 3]);
    const y = tf.cast(x, 'float32');
    expect(backend.numDataIds()).toBe(dataIds + 1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2, 3]);
    y.dispose();
    expect(backend.numDataIds()).toBe(dataIds);
  });

  it('converts between types as before', () => {
    tf.tidy(() => {
      expect(Array.from(tf.cast(tf.tensor1d([1.7, -2.2, 0]), 'int32').dataSync())).toEqual([1, -2, 0]);
      expect(Array.from(tf.cast(tf.tensor1d([3, 4], 'int32'), 'float32').dataSync())).toEqual([3, 4]);
    });
  });
});
