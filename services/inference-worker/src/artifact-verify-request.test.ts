import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { initBackend, loadModel, readArtifactDir } from '@btd/model';
import { ArtifactVerificationError, ModelRuntimeUnavailableError, type VerifiableModel } from '@btd/shared';
import { answerVerifyRequest, verifyReplyError, type VerifyRequest } from './artifact-verify-request.js';

/** The thread's backend, started. */
const wasm = Promise.resolve({ name: 'wasm' });

const request: VerifyRequest = { id: 7, task: 'tumor-binary', version: 'v2', files: { 'probe.png': new Uint8Array([1]) } };

const loadedModel = (probabilities: Record<string, number>): VerifiableModel => ({
  manifest: {
    task: 'tumor-binary',
    classes: ['tumor', 'no_tumor'],
    inputSize: 96,
    expectedOutput: { image: 'probe.png', probabilities: { tumor: 0.2, no_tumor: 0.8 } },
  },
  predict: () => Promise.resolve({ probabilities }),
  dispose: () => undefined,
});

describe('a verifier thread answering a request', () => {
  it('passes an artifact that loads and is a model of its task', async () => {
    const reply = await answerVerifyRequest(request, wasm, () => Promise.resolve(loadedModel({ tumor: 0.2, no_tumor: 0.8 })));
    expect(reply).toEqual({ id: 7, ok: true, backend: 'wasm' });
  });

  it('refuses an artifact whose probe image gives other probabilities than its manifest records', async () => {
    const reply = await answerVerifyRequest(request, wasm, () => Promise.resolve(loadedModel({ tumor: 0.9, no_tumor: 0.1 })));
    expect(reply).toEqual({ id: 7, ok: false, refused: true, reason: 'probe image gives tumor=0.9000, manifest expects 0.2000' });
  });

  it('refuses the shipped detector with a locator head whose weights are NaN: its probe heatmap is checked, not only its probabilities', async () => {
    await initBackend({ prefer: 'wasm' });
    const files = await readArtifactDir(fileURLToPath(new URL('../../../models/tumor-binary', import.meta.url)));
    const shipped = { ...request, files };
    expect(await answerVerifyRequest(shipped, wasm, loadModel)).toEqual({ id: 7, ok: true, backend: 'wasm' });
    const locator = new Float32Array(files['locator.bin']!.slice().buffer).fill(Number.NaN);
    const reply = await answerVerifyRequest({ ...shipped, files: { ...files, 'locator.bin': new Uint8Array(locator.buffer) } }, wasm, loadModel);
    expect(reply).toMatchObject({ ok: false, refused: true, reason: expect.stringMatching(/probe prediction failed: .*gave NaN in its activation map/) });
  });

  it('refuses an artifact that does not load', async () => {
    const reply = await answerVerifyRequest(request, wasm, () => Promise.reject(new Error('weights do not match the topology')));
    expect(reply).toMatchObject({ id: 7, ok: false, refused: true });
    expect(reply.ok || reply.reason).toMatch(/does not load: weights do not match/);
  });

  it('does not blame the artifact when the thread backend failed to start', async () => {
    let loads = 0;
    const reply = await answerVerifyRequest(request, Promise.reject(new Error("TensorFlow.js backend 'wasm' failed to initialise")), () => {
      loads += 1;
      return Promise.resolve(loadedModel({}));
    });
    expect(reply).toEqual({ id: 7, ok: false, refused: false, reason: "TensorFlow.js backend 'wasm' failed to initialise" });
    expect(loads).toBe(0);
  });

  it('does not blame the artifact when the model runtime is unavailable', async () => {
    const reply = await answerVerifyRequest(request, wasm, () => Promise.reject(new ModelRuntimeUnavailableError('model threads are gone')));
    expect(reply).toMatchObject({ ok: false, refused: false, reason: 'model threads are gone' });
  });
});

describe('the error a failed reply stands for', () => {
  it('is a refusal of the version only when the artifact was refused', () => {
    const refused = verifyReplyError({ id: 1, ok: false, refused: true, reason: 'probe differs' }, 'tumor-binary', 'v2');
    expect(refused).toBeInstanceOf(ArtifactVerificationError);
    expect(refused.message).toBe('model tumor-binary/v2 refused: probe differs');
    const unavailable = verifyReplyError({ id: 1, ok: false, refused: false, reason: 'backend failed' }, 'tumor-binary', 'v2');
    expect(unavailable).not.toBeInstanceOf(ArtifactVerificationError);
    expect(unavailable.message).toMatch(/could not verify tumor-binary\/v2: backend failed/);
  });
});
