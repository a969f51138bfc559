/**
 * Raw inputs kept on the GPU across merges (merge/residentInputs.ts): a second merge of the same models takes every
 * chunk the first kept instead of reading the files, and writes the same bytes and report as a merge without the store;
 * a byte limit keeps the first chunks only; other inputs, a failed upload and a full device leave nothing stale behind.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { GpuContext } from '../../src/engine/gpu/device';
import { memorySink } from '../../src/engine/io/byteSource';
import type { Model } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { inputsKey, ResidentInputs } from '../../src/engine/merge/residentInputs';
import { runMerge, type MergeRun } from '../../src/engine/merge/runMerge';
import { nodeGpu } from '../../src/platform/nodeGpu';
import { gridModels, openModels } from '../helpers/gridModels';
import { releaseTestContext, testContext } from '../helpers/gpu';

afterAll(releaseTestContext);

const SHAPES = { 'layers.0.fc1.weight': [48, 64], 'layers.0.fc1.bias': [48], 'layers.0.fc2.weight': [64, 48], 'head.weight': [10, 64] };

/** The models, each counting the bytes read from it. */
async function countedModels(seed: number, tasks: number) {
  const { base, models } = await openModels(gridModels(seed, tasks, SHAPES));
  const read = { bytes: 0 };
  const counted = (m: Model): Model => ({
    ...m,
    readTensor: async (name, range, signal) => {
      const bytes = await m.readTensor(name, range, signal);
      read.bytes += bytes.byteLength;
      return bytes;
    },
  });
  return { base: counted(base), models: models.map(counted), read };
}

async function mergeBytes(ctx: GpuContext, run: Omit<MergeRun, 'output'>) {
  const sink = memorySink('merged.safetensors');
  const report = await runMerge(ctx, { ...run, output: async () => sink });
  const { elapsedMs: _e, peakGpuBytes: _p, ...rest } = report as typeof report & { elapsedMs?: number; peakGpuBytes?: number };
  return { bytes: sink.bytes()!, report: rest };
}

describe('resident inputs', () => {
  it.each([
    ['task_arithmetic', false],
    ['ties', false],
    ['task_arithmetic', true],
    ['breadcrumbs', true],
  ] as const)('%s (metrics %s): the second merge reads nothing and writes the same bytes', async (method, metrics) => {
    const ctx = await testContext();
    const { base, models, read } = await countedModels(5, 3);
    const config = resolveConfig({ method, options: { chunkElements: 1024 } });
    read.bytes = 0;
    const plain = await mergeBytes(ctx, { base, models, config, metrics });
    const plainRead = read.bytes;
    const resident = new ResidentInputs(64 * 2 ** 20);
    const first = await mergeBytes(ctx, { base, models, config, metrics, resident });
    expect(resident.size).toBeGreaterThan(0);
    expect(ctx.allocatedBytes).toBe(resident.bytes);
    read.bytes = 0;
    const hits = resident.hits;
    const second = await mergeBytes(ctx, { base, models, config, metrics, resident });
    // On a CPU-emulated adapter global TIES scans the sources on the host for its statistics (and samples them),
    // Breadcrumbs forms each chunk's task vectors there for its row band, and the metrics' top-k curve counts its
    // selection there: those read them, with the uploads still taken from the store.
    if ((method === 'ties' || method === 'breadcrumbs' || metrics) && ctx.info.isSoftware) expect(read.bytes).toBeLessThan(plainRead);
    else expect(read.bytes).toBe(0);
    expect(resident.hits - hits).toBeGreaterThanOrEqual(resident.size);
    expect(first.bytes).toEqual(plain.bytes);
    expect(second.bytes).toEqual(plain.bytes);
    expect(second.report).toEqual(plain.report);
    resident.clear();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('keeps chunks up to its limit; the rest are read again', async () => {
    const ctx = await testContext();
    const { base, models, read } = await countedModels(6, 2);
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 1024 } });
    const plain = await mergeBytes(ctx, { base, models, config, metrics: false });
    const all = read.bytes;
    // Room for a few chunks (each holds theta0 and two models of at most 1024 f32 elements).
    const resident = new ResidentInputs(3 * 3 * 4096);
    await mergeBytes(ctx, { base, models, config, metrics: false, resident });
    expect(resident.size).toBeGreaterThan(0);
    expect(resident.bytes).toBeLessThanOrEqual(resident.limitBytes);
    read.bytes = 0;
    const second = await mergeBytes(ctx, { base, models, config, metrics: false, resident });
    expect(read.bytes).toBeGreaterThan(0);
    expect(read.bytes).toBeLessThan(all);
    expect(second.bytes).toEqual(plain.bytes);
    resident.clear();
  });

  it.each([
    ['another model', 'task_arithmetic', [0, 1, 3]],
    ['the same models in another order', 'slerp', [1, 0]],
  ] as const)('other inputs (%s) free the kept chunks and are read afresh', async (_what, method, order) => {
    const ctx = await testContext();
    const { base, models, read } = await countedModels(7, 4);
    const config = resolveConfig({ method, params: method === 'slerp' ? { t: 0.3 } : {}, options: { chunkElements: 1024 } });
    const resident = new ResidentInputs(64 * 2 ** 20);
    const first = order.length === 2 ? [models[0]!, models[1]!] : models.slice(0, 3);
    await mergeBytes(ctx, { base, models: first, config, metrics: false, resident });
    const other = order.map((i) => models[i]!);
    const plain = await mergeBytes(ctx, { base, models: other, config, metrics: false });
    const stale = await mergeBytes(ctx, { base, models: first, config, metrics: false });
    // The two inputs merge to different bytes, so a chunk of the first taken for the second would show.
    expect(stale.bytes).not.toEqual(plain.bytes);
    read.bytes = 0;
    const hits = resident.hits;
    const again = await mergeBytes(ctx, { base, models: other, config, metrics: false, resident });
    expect(resident.hits).toBe(hits);
    expect(read.bytes).toBeGreaterThan(0);
    expect(again.bytes).toEqual(plain.bytes);
    resident.clear();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('a read that fails mid-merge keeps no half-filled chunk', async () => {
    const ctx = await testContext();
    const { base, models } = await countedModels(8, 2);
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 1024 } });
    let reads = 0;
    const failing: Model = {
      ...models[1]!,
        readTensor: async (name, range, signal) => {
        if (++reads === 4) throw new Error('disk went away');
        return models[1]!.readTensor(name, range, signal);
      },
    };
    const resident = new ResidentInputs(64 * 2 ** 20);
    await expect(runMerge(ctx, { base, models: [models[0]!, failing], config, metrics: false, resident, output: async () => memorySink('x') })).rejects.toThrow('disk went away');
    // Only the chunks uploaded before the failure are kept, and they are complete: a merge after it equals a plain one.
    expect(ctx.allocatedBytes).toBe(resident.bytes);
    const plain = await mergeBytes(ctx, { base, models: [models[0]!, failing], config, metrics: false });
    const again = await mergeBytes(ctx, { base, models: [models[0]!, failing], config, metrics: false, resident });
    expect(again.bytes).toEqual(plain.bytes);
    resident.clear();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('a chunk kept twice while two merges hold the store stays valid until the last one releases it', async () => {
    const ctx = await testContext();
    const { base, models } = await countedModels(10, 2);
    const resident = new ResidentInputs(64 * 2 ** 20);
    const key = inputsKey(base, models);
    const first = resident.use(ctx, base, models);
    const second = resident.use(ctx, base, models);
    const a = resident.reserve(ctx, key, 'a', 4096, GPUBufferUsage.STORAGE)!;
    const b = resident.reserve(ctx, key, 'b', 4096, GPUBufferUsage.STORAGE)!;
    a.keep('same layout', []);
    b.keep('same layout', []);
    expect(resident.size).toBe(1);
    expect(resident.bytes).toBe(4096);
    expect(ctx.allocatedBytes).toBe(8192);
    first();
    expect(ctx.allocatedBytes).toBe(8192);
    second();
    expect(ctx.allocatedBytes).toBe(4096);
    resident.clear();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('the store cleared while a merge reads an upload (a model removed mid-merge) fails nothing', async () => {
    const ctx = await testContext();
    const { base, models } = await countedModels(11, 3);
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 1024 } });
    const plain = await mergeBytes(ctx, { base, models, config, metrics: false });
    // The last model clears the store at its `clearAt`-th read, as the playground does when a model is removed.
    let reads = 0;
    let clearAt = Infinity;
    let store: ResidentInputs | null = null;
    const clearing: Model = {
      ...models[2]!,
        readTensor: async (name, range, signal) => {
        const bytes = await models[2]!.readTensor(name, range, signal);
        if (++reads === clearAt) store!.clear();
        return bytes;
      },
    };
    const inputs = [models[0]!, models[1]!, clearing];
    const merge = async (resident: ResidentInputs) => {
      store = resident;
      reads = 0;
      return mergeBytes(ctx, { base, models: inputs, config, metrics: false, resident });
    };
    // Count the reads of one merge (its reads go into chunks being uploaded), then clear at the last but one.
    const scratch = new ResidentInputs(64 * 2 ** 20);
    await merge(scratch);
    scratch.clear();
    const counted = reads;
    expect(counted).toBeGreaterThan(2);
    clearAt = counted - 1;
    const resident = new ResidentInputs(64 * 2 ** 20);
    const cleared = await merge(resident);
    // The clear came mid-merge (what the merge took from the store after it, it reads and uploads again).
    expect(reads).toBeGreaterThanOrEqual(counted);
    expect(cleared.bytes).toEqual(plain.bytes);
    expect(resident.retiredCount).toBe(0);
    expect(ctx.allocatedBytes).toBe(resident.bytes);
    resident.clear();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('a device without room keeps nothing more; a merge on another device frees what was kept', async () => {
    const { base, models } = await countedModels(9, 2);
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 1024 } });
    const ctx = await testContext();
    const resident = new ResidentInputs(64 * 2 ** 20);
    await mergeBytes(ctx, { base, models, config, metrics: false, resident });
    expect(resident.bytes).toBeGreaterThan(0);
    const small = await GpuContext.create(await nodeGpu(), { label: 'small device', maxAllocatedBytes: 64 * 1024 });
    try {
      const release = resident.use(small, base, models);
      expect(ctx.allocatedBytes).toBe(0);
      expect(resident.size).toBe(0);
      const key = inputsKey(base, models);
      const usage = GPUBufferUsage.STORAGE;
      // More than the device has left: no buffer, no error, nothing counted.
      expect(resident.reserve(small, key, 'big', 128 * 1024, usage)).toBeNull();
      const fits = resident.reserve(small, key, 'fits', 16 * 1024, usage)!;
      expect(fits).not.toBeNull();
      fits.keep('layout', []);
      expect(resident.bytes).toBe(16 * 1024);
      // Another set of inputs may not reserve or take anything.
      expect(resident.reserve(small, inputsKey(base, [models[1]!, models[0]!]), 'other', 16, usage)).toBeNull();
      expect(resident.get(small, inputsKey(base, [models[1]!, models[0]!]), 'layout')).toBeNull();
      expect(resident.get(small, key, 'layout')?.bytes).toBe(16 * 1024);
      // A reservation made before the store was cleared neither joins nor counts against the new chunks; while the
      // merge that holds the store runs, what the store let go stays allocated (the merge may still submit it).
      const late = resident.reserve(small, key, 'late', 16 * 1024, usage)!;
      resident.clear();
      late.keep('late', []);
      expect(resident.size).toBe(0);
      expect(resident.bytes).toBe(0);
      expect(resident.retiredCount).toBe(2);
      expect(small.allocatedBytes).toBe(32 * 1024);
      release();
      release();
      expect(resident.retiredCount).toBe(0);
      expect(small.allocatedBytes).toBe(0);
    } finally {
      small.destroy();
    }
  });
});
