/**
 * Continual merging on the GPU against the float64 CPU reference (reference/continual.ts): OPCM on the toy fixture of
 * methods.md section 14 and on random models (its SVDs on the GPU and on the host), its invariants, the continual
 * baselines, and constant GPU memory in the number of models.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { GpuContext } from '../../src/engine/gpu/device';
import { svdBatchSize, SvdBatches } from '../../src/engine/gpu/opcmBatch';
import { svdBytesPerMatrix } from '../../src/engine/gpu/svd';
import { runContinual, type ContinualReport } from '../../src/engine/merge/continual';
import { runContinualReference } from '../../src/engine/reference/continual';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { nodeGpu } from '../../src/platform/nodeGpu';
import { gridModels, maxRelativeError, openModels, type GridModels } from '../helpers/gridModels';
import { readF32, testContext, uploadF32 } from '../helpers/gpu';
import { randomMatrix } from '../helpers/svdChecks';
import { readFloatTensors } from '../helpers/independent';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const SHAPES = {
  'vision_model.embeddings.class_embedding': [16],
  'vision_model.embeddings.position_embedding.weight': [5, 16],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [16, 16],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [16],
  'vision_model.encoder.layers.0.mlp.fc1.weight': [40, 16],
  'vision_model.encoder.layers.0.mlp.fc2.weight': [16, 40],
  'vision_model.post_layernorm.weight': [16],
};

async function gpuContinual(g: GridModels, method: string, params: Record<string, unknown>, svd?: 'gpu' | 'host'): Promise<{ merged: Map<string, Float64Array>; report: ContinualReport }> {
  const ctx = await testContext();
  const { base, models } = await openModels(g);
  const sink = memorySink('continual');
  const report = await runContinual(ctx, { base, models, config: resolveConfig({ method, params }), output: async () => sink, ...(svd ? { svd } : {}) });
  expect(ctx.allocatedBytes).toBe(0);
  return { merged: new Map([...readFloatTensors(sink.bytes())].map(([k, v]) => [k, v.values])), report };
}

function expectModel(got: Map<string, Float64Array>, want: RefModel, tol: number, label: string): void {
  for (const [name, t] of want) expect(maxRelativeError(got.get(name)!, t.data), `${label} ${name}`).toBeLessThanOrEqual(tol);
}

describe('continual methods on the GPU equal the float64 reference', () => {
  const g = gridModels(555, 5, SHAPES);
  const cases: [string, Record<string, unknown>, number][] = [
    ['opcm', {}, 1e-4],
    ['opcm', { alpha: 0.8, zero_diagonal: false, order: 'shuffle', seed: 3 }, 1e-4],
    ['opcm', { alpha: 0, class_embedding: 'keep-first', order: [4, 2, 0, 1, 3] }, 1e-4],
    ['opcm', { alpha: 1 }, 1e-4],
    ['continual_task_arithmetic', {}, 1e-5],
    ['continual_task_arithmetic', { lambda: { per_task: [0.1, 0.2, 0.3, 0.4, 0.5] } }, 1e-5],
    // lambda 0.5 keeps D exact in f32, so trim ties are decided as in float64.
    ['continual_ties', { lambda: 0.5 }, 1e-5],
    ['continual_ties', { k: 0.5, merge: 'mean' }, 1e-5],
    ['continual_average', {}, 1e-5],
    ['continual_magmax', {}, 1e-5],
  ];
  // OPCM's SVDs both ways: the GPU's block Jacobi, and the host's float64 Gram eigendecomposition.
  type Run = [string, Record<string, unknown>, number, 'gpu' | 'host' | undefined];
  const runs = cases.flatMap(([method, params, tol]): Run[] => (method === 'opcm' ? [[method, params, tol, 'gpu'], [method, params, tol, 'host']] : [[method, params, tol, undefined]]));
  for (const [method, params, tol, svd] of runs) {
    it(`${method} ${JSON.stringify(params)}${svd ? `, SVDs on the ${svd}` : ''}`, async () => {
      const want = runContinualReference(method, params, g.base, g.models);
      const { merged, report } = await gpuContinual(g, method, params, svd);
      expectModel(merged, want.merged, tol, method);
      // Jacobi sweeps are reported by the GPU's SVD only.
      for (const l of report.steps.flatMap((s) => s.layers)) expect(l.svdSweeps === undefined, l.tensor).toBe(svd === 'host');
      expect(report.order).toEqual(want.order);
      report.steps.forEach((s, i) => {
        const w = want.steps[i]!;
        expect(s.modelIndex).toBe(w.modelIndex);
        expect(s.taskVectorNorm).toBeCloseTo(w.taskVectorNorm, 4);
        expect(s.mergedNorm).toBeCloseTo(w.mergedNorm, 4);
        if (w.lambda !== null) expect(s.lambda!).toBeCloseTo(w.lambda, 4);
        expect(s.layers.map((l) => [l.tensor, l.protectedRank])).toEqual(w.layers.map((l) => [l.tensor, l.protectedRank]));
        s.layers.forEach((l, j) => expect(l.removedEnergy).toBeCloseTo(w.layers[j]!.removedEnergy, 4));
      });
      if (method === 'opcm') for (const s of report.steps) expect(s.mergedNorm / s.meanNorm).toBeCloseTo(1, 5); // ||M - theta0|| = N-bar
    });
  }
});

describe('OPCM toy fixture of methods.md section 14 (theta0 = 0, one 4x4 Linear weight and its bias)', () => {
  const W = [
    [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 2]],
    [[0, 1, 1, 0], [1, 0, 0, 2], [0, 2, 1, 0], [1, 0, 0, 1]],
    [[1, 0, 0, 1], [0, 0, 3, 0], [0, 1, 0, 0], [2, 0, 1, 0]],
  ];
  const b = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 1]];
  const file = (w: number[][] | null, bias: number[] | null) =>
    makeModelBytes([
      { name: 'layer.weight', dtype: 'F32', shape: [4, 4], data: encodeFloats(w ? w.flat() : new Array(16).fill(0), 'F32') },
      { name: 'layer.bias', dtype: 'F32', shape: [4], data: encodeFloats(bias ?? [0, 0, 0, 0], 'F32') },
    ]);
  const rows: [number, boolean, number, number, number[]][] = [
    // alpha, zero_diagonal, lambda at step 3, ||R|| at step 3, merged b at step 3
    [0.5, true, 1.50059, 6.220638, [0.666404, 0.666404, 1.332809, 0.666404]],
    [0.8, true, 1.485056, 6.156243, [0.673375, 0.673375, 1.34675, 0.673375]],
    [0.5, false, 1.807685, 7.493688, [0.553194, 0.553194, 1.106387, 0.553194]],
    [0.8, false, 1.535752, 6.366399, [0.651147, 0.651147, 1.302294, 0.651147]],
  ];
  for (const [alpha, zero, lambda, norm, bias] of rows) {
    it(`alpha ${alpha}, diagonal ${zero ? 'on' : 'off'}`, async () => {
      const ctx = await testContext();
      const open = (name: string, bytes: Uint8Array) => openSingleFileModel(name, memorySource(name, bytes));
      const base = await open('base', file(null, null));
      const models = await Promise.all(W.map((w, i) => open(`m${i}`, file(w, b[i]!))));
      const sink = memorySink('toy');
      const r = await runContinual(ctx, { base, models, config: resolveConfig({ method: 'opcm', params: { alpha, zero_diagonal: zero } }), output: async () => sink });
      expect(r.steps[2]!.lambda!).toBeCloseTo(lambda, 5);
      expect(r.steps[2]!.unscaledNorm!).toBeCloseTo(norm, 5);
      expect(r.steps[2]!.meanNorm).toBeCloseTo(4.145461, 5);
      const out = readFloatTensors(sink.bytes());
      out.get('layer.bias')!.values.forEach((v, i) => expect(v).toBeCloseTo(bias[i]!, 5));
      if (alpha === 0.8 && zero) {
        const w3 = [0.829156, 1.307921, 0.083879, -0.072356, 0.20213, -0.460622, 0.835203, 1.74516, 0.599746, 0.989084, 1.342889, -0.647794, 0.56243, -0.688831, 1.005334, 1.497236];
        out.get('layer.weight')!.values.forEach((v, i) => expect(v).toBeCloseTo(w3[i]!, 5));
      }
    });
  }

  it('orthogonal task vectors of equal norm give lambda_t = sqrt(t)', async () => {
    const ctx = await testContext();
    const open = (name: string, bytes: Uint8Array) => openSingleFileModel(name, memorySource(name, bytes));
    const base = await open('base', file(null, null));
    // Orthogonal task vectors of norm 2 in the bias (not projected; the weight stays zero). Vectors on a matrix
    // diagonal would not do: equal singular values leave the SVD basis, and so the projection, arbitrary.
    const models = await Promise.all([0, 1, 2, 3].map((at, i) => open(`m${i}`, file(null, [0, 1, 2, 3].map((j) => (j === at ? 2 : 0))))));
    const r = await runContinual(ctx, { base, models, config: resolveConfig({ method: 'opcm', params: { alpha: 0.5 } }) });
    r.steps.forEach((s) => expect(s.lambda!).toBeCloseTo(Math.sqrt(s.step + 1), 5));
  });
});

describe('OPCM with the SVDs of same-shape weights batched', () => {
  // Two layers: four 16 x 16 weights each, and the 40 x 16 / 16 x 40 pair, so batches form across layers.
  const layer = (i: number) => ({
    [`vision_model.encoder.layers.${i}.mlp.fc1.weight`]: [40, 16],
    [`vision_model.encoder.layers.${i}.mlp.fc2.weight`]: [16, 40],
    [`vision_model.encoder.layers.${i}.self_attn.k_proj.weight`]: [16, 16],
    [`vision_model.encoder.layers.${i}.self_attn.out_proj.weight`]: [16, 16],
    [`vision_model.encoder.layers.${i}.self_attn.q_proj.weight`]: [16, 16],
    [`vision_model.encoder.layers.${i}.self_attn.v_proj.weight`]: [16, 16],
  });
  const g = gridModels(777, 4, { ...layer(0), ...layer(1), 'vision_model.post_layernorm.weight': [16] });

  it('writes the model and the diagnostics of one SVD at a time, bit for bit, in batches of 3 or of all', async () => {
    const ctx = await testContext();
    const run = async (svdBatchBytes: number) => {
      const { base, models } = await openModels(g);
      const sink = memorySink('continual');
      const report = await runContinual(ctx, { base, models, config: resolveConfig({ method: 'opcm', params: { alpha: 0.8 } }), output: async () => sink, svdBatchBytes, svd: 'gpu' });
      expect(ctx.allocatedBytes).toBe(0);
      return { bytes: sink.bytes(), steps: report.steps };
    };
    const one = await run(0);
    const sweeps = one.steps.flatMap((s) => s.layers.map((l) => l.svdSweeps));
    expect(new Set(sweeps).size).toBeGreaterThan(1);
    for (const matrices of [3, 100]) {
      const batched = await run(matrices * svdBytesPerMatrix(16, 16).total);
      expect(batched.bytes, `${matrices} per batch`).toEqual(one.bytes);
      expect(batched.steps, `${matrices} per batch`).toEqual(one.steps);
    }
  });

  it('halves a batch that does not fit in GPU memory, down to one SVD at a time', async () => {
    const ctx = await testContext();
    const run = async (c: GpuContext, svdBatchBytes?: number) => {
      const { base, models } = await openModels(g);
      const sink = memorySink('continual');
      const report = await runContinual(c, { base, models, config: resolveConfig({ method: 'opcm' }), output: async () => sink, svdBatchBytes, svd: 'gpu' });
      return { bytes: sink.bytes(), peak: report.peakGpuBytes };
    };
    const one = await run(ctx, 0);
    const batched = await run(ctx);
    const limit = one.peak + 4096;
    expect(batched.peak).toBeGreaterThan(limit);
    const small = await GpuContext.create(await nodeGpu(), { label: 'small device', maxAllocatedBytes: limit });
    try {
      const fitted = await run(small);
      expect(fitted.bytes).toEqual(one.bytes);
      expect(fitted.peak).toBeLessThanOrEqual(limit);
      expect(small.allocatedBytes).toBe(0);
    } finally {
      small.destroy();
    }
  });

  it('names the weight whose delta holds NaN, not its place in the batch (and on the host)', async () => {
    const ctx = await testContext();
    const name = 'vision_model.encoder.layers.1.self_attn.q_proj.weight';
    const bad = new Map(g.models[0]!);
    const t = bad.get(name)!;
    bad.set(name, { shape: t.shape, data: t.data.map((x, i) => (i === 5 ? NaN : x)) });
    const modelBytes = [makeModelBytes([...bad].map(([n, x]) => ({ name: n, dtype: 'F32', shape: x.shape, data: encodeFloats(x.data, 'F32') }))), ...g.modelBytes.slice(1)];
    const { base, models } = await openModels({ ...g, modelBytes });
    for (const svd of ['gpu', 'host'] as const) {
      await expect(runContinual(ctx, { base, models, config: resolveConfig({ method: 'opcm' }), svd })).rejects.toThrow(`${name} delta: contains NaN or Infinity`);
      expect(ctx.allocatedBytes).toBe(0);
    }
  });

  it('factors again on the host a matrix whose GPU sweeps reached the cap, keeping the others of its batch', async () => {
    const ctx = await testContext();
    const n = 16;
    // Orthogonal columns of distinct norms converge in one sweep; a random matrix needs several.
    const easy = new Float32Array(n * n).map((_, i) => (i % (n + 1) === 0 ? 1 + i / n : 0));
    const hard = Float32Array.from(randomMatrix(n, n, 5));
    const deltas = [easy, hard].map((x, i) => uploadF32(ctx, `delta ${i}`, x));
    const items = deltas.map((delta, i) => ({ name: `w${i}`, m: n, n, delta }));
    const read = async (batches: SvdBatches, name: string) => {
      const f = await batches.factors(name);
      const u = await readF32(ctx, f.u, (f.index + 1) * n * n);
      const v = await readF32(ctx, f.v, (f.index + 1) * n * n);
      const at = f.index * n * n;
      return { sweeps: f.sweeps, s: Array.from(f.s), u: u.slice(at), v: v.slice(at) };
    };
    const capped = new SvdBatches(ctx, items, { maxSweeps: 2 });
    const host = new SvdBatches(ctx, items, { onHost: true });
    try {
      const [easyCapped, hardCapped, hardHost] = [await read(capped, 'w0'), await read(capped, 'w1'), await read(host, 'w1')];
      expect(easyCapped.sweeps).toBe(1);
      // The random one was refactored on the host: no sweeps, and the host's factors exactly.
      expect(hardCapped.sweeps).toBeUndefined();
      expect(hardCapped).toEqual(hardHost);
      capped.release('w0');
      capped.release('w1');
      host.release('w1');
    } finally {
      capped.destroy();
      host.destroy();
      deltas.forEach((b) => ctx.destroyBuffer(b));
    }
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('sizes a batch by its bytes and the binding limit, never below one matrix', async () => {
    const ctx = await testContext();
    const per = svdBytesPerMatrix(768, 768);
    expect(svdBatchSize(ctx, 768, 768, 0)).toBe(1);
    expect(svdBatchSize(ctx, 768, 768, 5.5 * per.total)).toBe(5);
    const byBinding = Math.floor(Math.min(ctx.info.limits.maxStorageBufferBindingSize, ctx.info.limits.maxBufferSize) / per.largestBinding);
    expect(svdBatchSize(ctx, 768, 768, 1e15)).toBe(byBinding);
  });
});

describe('cancelling OPCM', () => {
  it('stops between the weights of a step (after its last tensor is loaded), freeing everything, either SVD placement', async () => {
    const ctx = await testContext();
    const g = gridModels(321, 2, SHAPES);
    const last = Object.keys(SHAPES).at(-1)!;
    for (const svd of ['gpu', 'host'] as const) {
      const { base, models } = await openModels(g);
      const controller = new AbortController();
      const steps: number[] = [];
      // Fires once the second model's last tensor has been read: its loading ends, the projections have not begun.
      const second = models[1]!;
      const watched = { ...second, readTensor: async (...args: Parameters<typeof second.readTensor>) => {
        const bytes = await second.readTensor(...args);
        if (args[0] === last) controller.abort();
        return bytes;
      } };
      const run = runContinual(ctx, {
        base,
        models: [models[0]!, watched],
        config: resolveConfig({ method: 'opcm' }),
        svd,
        signal: controller.signal,
        onStep: (v) => void steps.push(v.diagnostics.step),
      });
      await expect(run, svd).rejects.toBeInstanceOf(CancelledError);
      expect(steps).toEqual([0]);
      expect(ctx.allocatedBytes).toBe(0);
    }
  });
});

describe('constant memory', () => {
  it('peak GPU bytes are the same for 2, 4, 8 and 16 models', async () => {
    const ctx = await testContext();
    const peaks: number[] = [];
    for (const n of [2, 4, 8, 16]) {
      const g = gridModels(900 + n, n, SHAPES);
      const { base, models } = await openModels(g);
      const r = await runContinual(ctx, { base, models, config: resolveConfig({ method: 'opcm' }), output: async () => memorySink('m') });
      peaks.push(r.peakGpuBytes);
    }
    expect(new Set(peaks).size).toBe(1);
  });
});
