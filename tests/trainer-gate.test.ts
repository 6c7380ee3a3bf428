import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ArtifactVerificationError, createLogger } from '@btd/shared';
import { evaluateCandidate, type GateContext } from '../services/trainer/src/candidate-evaluation.js';
import { makeArtifact, promoteConstantBaseline, scrambleWeights, useRegistryEnv } from './registry-fixtures.js';
import { linkDataset } from './trainer-fixtures.js';

const logger = createLogger({ name: 'gate-test', level: 'silent', pretty: false });
const env = useRegistryEnv();
let evalDir: string;

beforeEach(async () => {
  // Real slices, 12 with a tumour and 4 without (linked, not copied).
  evalDir = await linkDataset(path.join(env.dir, 'eval'), { yes: 12, no: 4 }, 200);
});

function gate(overrides: Partial<GateContext> = {}): GateContext {
  return {
    registry: env.registry,
    logger,
    evaluationDir: evalDir,
    evaluationSet: evalDir,
    maxImages: 100,
    tolerance: 0,
    cacheDir: path.join(env.dir, 'cache'),
    ...overrides,
  };
}

const promoteBaseline = (alwaysSays: string): Promise<string> => promoteConstantBaseline(env, alwaysSays);

describe('the promotion gate on a fixed evaluation set', () => {
  it('refuses a candidate that misses tumours the promoted model finds, and says why', async () => {
    const baseline = await promoteBaseline('tumor');
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });

    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());

    expect(evidence.baseline).toEqual({ version: baseline, metrics: { n: 16, accuracy: 0.75, sensitivity: 1, macroRecall: 0.5 } });
    expect(evidence.candidate).toEqual({ n: 16, accuracy: 0.25, sensitivity: 0, macroRecall: 0.5 });
    expect(evidence.comparedWith).toBe(baseline);
    expect(evidence.decision).toEqual({
      promote: false,
      reasons: ["accuracy 25.0% is below the promoted model's 75.0%", "sensitivity 0.0% is below the promoted model's 100.0%"],
    });
  });

  it('passes a candidate at least as good as the promoted model', async () => {
    await promoteBaseline('no_tumor');
    const better = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'tumor' });
    expect((await evaluateCandidate('tumor-binary', better, gate())).decision).toEqual({ promote: true, reasons: [] });
    const equal = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    expect((await evaluateCandidate('tumor-binary', equal, gate())).decision.promote).toBe(true);
  });

  it('accepts a small drop within the configured tolerance only', async () => {
    await promoteBaseline('tumor');
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    // A drop of 50 points in accuracy and 100 in sensitivity is beyond the largest tolerance.
    expect((await evaluateCandidate('tumor-binary', candidate, gate({ tolerance: 0.2 }))).decision.promote).toBe(false);
  });

  it('compares with nothing when the promoted model no longer loads', async () => {
    const baseline = await promoteBaseline('tumor');
    const key = `models/tumor-binary/${baseline}/weights.bin`;
    await env.store.put(key, (await env.store.get(key)).subarray(0, 64), 'application/octet-stream');
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());
    expect(evidence).toMatchObject({ baseline: null, comparedWith: baseline, decision: { promote: true } });
  });

  it('fails, instead of comparing with nothing, when reading the promoted model fails once', async () => {
    const baseline = await promoteBaseline('tumor');
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    const get = env.store.get.bind(env.store);
    let failures = 0;
    env.store.get = async (key: string) => {
      if (failures === 0 && key === `models/tumor-binary/${baseline}/weights.bin`) {
        failures += 1;
        throw Object.assign(new Error('socket timed out after 30000 ms'), { name: 'TimeoutError' });
      }
      return get(key);
    };
    await expect(evaluateCandidate('tumor-binary', candidate, gate())).rejects.toThrow(/timed out/);
    expect(failures).toBe(1);
    // The retry reads it and refuses the worse candidate.
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());
    expect(evidence).toMatchObject({ baseline: { version: baseline }, decision: { promote: false } });
  });

  it('compares with nothing when the promoted model is gone from the registry', async () => {
    const baseline = await promoteBaseline('tumor');
    await env.store.delete(`models/tumor-binary/${baseline}/content-hash.json`);
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());
    expect(evidence).toMatchObject({ baseline: null, comparedWith: baseline, decision: { promote: true } });
  });

  it('compares with nothing when a file of the promoted model is gone from the registry', async () => {
    const baseline = await promoteBaseline('tumor');
    await env.store.delete(`models/tumor-binary/${baseline}/weights.bin`);
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());
    expect(evidence).toMatchObject({ baseline: null, comparedWith: baseline, decision: { promote: true } });
  });

  it('compares with nothing when the promoted model fails its own probe', async () => {
    const dir = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'tumor' });
    await scrambleWeights(dir);
    const { version: baseline } = await env.registry.publishDirectory('tumor-binary', dir);
    await env.registry.promote('tumor-binary', baseline, { by: 'test', reason: 'baseline' });
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate());
    expect(evidence).toMatchObject({ baseline: null, comparedWith: baseline, decision: { promote: true } });
  });

  it('keeps the candidate back, recording null, when the set has no tumour image to measure sensitivity on', async () => {
    const baseline = await promoteBaseline('tumor');
    const healthyOnly = await linkDataset(path.join(env.dir, 'eval-healthy'), { yes: 0, no: 4 }, 200);
    const candidate = await makeArtifact(env.dir, 'tumor-binary', { alwaysSays: 'no_tumor' });

    const evidence = await evaluateCandidate('tumor-binary', candidate, gate({ evaluationDir: healthyOnly, evaluationSet: healthyOnly }));

    expect(evidence.baseline).toEqual({ version: baseline, metrics: { n: 4, accuracy: 0, sensitivity: null, macroRecall: 0 } });
    expect(evidence.candidate).toEqual({ n: 4, accuracy: 1, sensitivity: null, macroRecall: 1 });
    expect(evidence.decision).toEqual({
      promote: false,
      reasons: ['sensitivity was not measured: the evaluation set has no tumour image to measure it on, so the candidate cannot be shown as good as the promoted model'],
    });
  });

  it('keeps the candidate back when no evaluation set is configured', async () => {
    const candidate = await makeArtifact(env.dir, 'tumor-binary');
    const evidence = await evaluateCandidate('tumor-binary', candidate, gate({ evaluationDir: null, evaluationSet: null }));
    expect(evidence.decision).toEqual({ promote: false, reasons: ['no evaluation set is configured for tumor-binary'] });
  });

  it('refuses outright a candidate whose artifact fails its own probe', async () => {
    const candidate = await makeArtifact(env.dir, 'tumor-binary');
    await scrambleWeights(candidate);
    await expect(evaluateCandidate('tumor-binary', candidate, gate())).rejects.toBeInstanceOf(ArtifactVerificationError);
  });
});
