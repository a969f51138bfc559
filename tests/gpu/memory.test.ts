/**
 * Bounded GPU memory: a merge streams tensors in chunks, so the engine's peak of allocated GPU bytes depends on the
 * chunk size and the number of models, not on the model's size. The model here is much larger than the budget.
 * (Interference metrics add selection histograms of a fixed size per task, also independent of the model; they
 * are off here so that the bound is tight.)
 */
import { describe, expect, it } from 'vitest';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { rawChunksInFlight } from '../../src/engine/merge/plans/fusedOutput';
import { testContext } from '../helpers/gpu';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';

const TASKS = 4;
const CHUNK = 8 * 1024;
const shapesOf = (layers: number) => Object.fromEntries(Array.from({ length: layers }, (_, i) => [`encoder.layers.${i}.mlp.fc1.weight`, [64, 1024]]));

async function models(layers = 12) {
  const { base, finetuned } = makeRelatedModels({ seed: 3, dtype: 'F32', models: TASKS, shapes: shapesOf(layers) });
  const open = (name: string, bytes: Uint8Array) => openSingleFileModel(name, memorySource(name, bytes));
  return { base: await open('base', makeModelBytes(base)), models: await Promise.all(finetuned.map((m, i) => open(`ft${i}`, makeModelBytes(m)))) };
}

describe('GPU memory stays bounded', () => {
  it('peak allocated bytes stay within a few chunks per model, far below the model size', async () => {
    const ctx = await testContext();
    const { base, models: fts } = await models();
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: CHUNK } });
    const modelFloats = 12 * 64 * 1024;
    // Budget, per chunk: the raw inputs of T + 1 models in the upload buffer and in each staging buffer (one more than
    // the chunks in flight), the output and the norm partials once per chunk in flight and once in use; plus small
    // parameter buffers.
    const inFlight = rawChunksInFlight(ctx);
    const raw = (TASKS + 1) * CHUNK * 4;
    const budget = raw * (inFlight + 2) + (inFlight + 1) * (CHUNK * 4 + ((TASKS + 2) * CHUNK) / 4) + 64 * 1024;
    expect((TASKS + 1) * modelFloats * 4).toBeGreaterThan(10 * budget);
    const streamed = await runMerge(ctx, { base, models: fts, config, cacheBytes: 0, metrics: false });
    expect(streamed.peakGpuBytes!).toBeLessThanOrEqual(budget);
    expect(ctx.allocatedBytes).toBe(0);
    // A model a quarter of the size needs exactly the same peak: memory does not grow with the model.
    const small = await models(3);
    const smaller = await runMerge(ctx, { base: small.base, models: small.models, config, cacheBytes: 0, metrics: false });
    expect(smaller.peakGpuBytes).toBe(streamed.peakGpuBytes);
    // One chunk per tensor (chunks as large as the tensors) needs more: the measurement sees the chunk size.
    const whole = await runMerge(ctx, { base, models: fts, config: resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 64 * 1024 } }), cacheBytes: 0, metrics: false });
    expect(whole.peakGpuBytes!).toBeGreaterThan(2 * streamed.peakGpuBytes!);
  });
});
