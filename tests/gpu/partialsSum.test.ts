/**
 * partials_sum (shaders/partials_sum.wgsl) against its twin (reference/linearMerge.ts partialsSumRef), and the fused
 * output pass that uses it on hardware adapters (merge/plans/fusedOutput.ts: a chunk's norm partials are added in runs
 * of PARTIALS_GROUP on the GPU before they are read back).
 *
 * Tolerances: the kernel's sums are bit for bit the twin's (f32 additions in the same order) on normal values,
 * infinities and NaN; with subnormal partials a device may flush them (WGSL allows it; SwiftShader does), so there
 * each sum is within PARTIALS_GROUP x the smallest normal f32 of the twin's. A merge with the partials summed writes the
 * same bytes as one without, and its norms agree within a relative 1e-5 (the f32 sums round differently from float64
 * folding of the per-thread partials).
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PARTIALS_GROUP } from '../../src/engine/gpu/constants';
import type { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer } from '../../src/engine/gpu/kernels';
import { encodePartialsSum, PARTIALS_SUM_PARAMS_BYTES, partialsGroups } from '../../src/engine/gpu/linearMerge';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import type { MergeReport } from '../../src/engine/merge/report';
import { runMerge } from '../../src/engine/merge/runMerge';
import { partialsSumRef } from '../../src/engine/reference/linearMerge';
import { gridModels, openModels } from '../helpers/gridModels';
import { emptyF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

afterAll(releaseTestContext);

const F32_MIN_NORMAL = 2 ** -126;

async function partialsSum(ctx: GpuContext, partials: Float32Array, rows: number, threads: number): Promise<Float32Array> {
  const input = uploadF32(ctx, 'partials', partials);
  const sums = emptyF32(ctx, 'sums', Math.max(1, rows * partialsGroups(threads)));
  const params = ctx.createBuffer('params', PARTIALS_SUM_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  try {
    const encoder = ctx.device.createCommandEncoder();
    encodePartialsSum(ctx, encoder, params, input, sums, rows, threads);
    ctx.device.queue.submit([encoder.finish()]);
    const bytes = await readBuffer(ctx, sums, rows * partialsGroups(threads) * 4);
    return new Float32Array(bytes.buffer, bytes.byteOffset, rows * partialsGroups(threads));
  } finally {
    for (const b of [input, sums, params]) ctx.destroyBuffer(b);
  }
}

/** Partials as the fused kernels leave them: sums of squares over many magnitudes, and small counts. */
function randomPartials(seed: number, n: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rng() < 0.2 ? Math.floor(rng() * 17) : rng() * 2 ** Math.floor(rng() * 60 - 30)));
}

describe('partials_sum', () => {
  it.each([
    [1, 1],
    [1, 15],
    [3, 16],
    [2, 17],
    [11, 1000],
    [10, 4099],
  ])('%i rows x %i threads: bit for bit the twin', async (rows, threads) => {
    const ctx = await testContext();
    const partials = randomPartials(rows * 7919 + threads, rows * threads);
    const got = await partialsSum(ctx, partials, rows, threads);
    expect(got.length).toBe(rows * Math.ceil(threads / PARTIALS_GROUP));
    expect(Array.from(got)).toEqual(Array.from(partialsSumRef(partials, rows, threads, PARTIALS_GROUP)));
  });

  it('infinities, NaN, zeros and the largest f32 as the twin; subnormals within the flushing bound', async () => {
    const ctx = await testContext();
    const threads = 5 * PARTIALS_GROUP + 3;
    const edge = [0, Infinity, NaN, 3.4028234663852886e38, 1, 0.5, 2 ** -20];
    const partials = Float32Array.from({ length: 2 * threads }, (_, i) => edge[(i * 5 + (i >> 4)) % edge.length]!);
    const got = await partialsSum(ctx, partials, 2, threads);
    const want = partialsSumRef(partials, 2, threads, PARTIALS_GROUP);
    got.forEach((x, i) => (Number.isNaN(want[i]!) ? expect(x).toBeNaN() : expect(x).toBe(want[i]!)));
    const tiny = Float32Array.from({ length: threads }, (_, i) => (i % 3 === 0 ? 2 ** -140 : i % 3 === 1 ? 2 ** -100 : 0));
    const gotTiny = await partialsSum(ctx, tiny, 1, threads);
    const wantTiny = partialsSumRef(tiny, 1, threads, PARTIALS_GROUP);
    gotTiny.forEach((x, i) => expect(Math.abs(x - wantTiny[i]!)).toBeLessThanOrEqual(PARTIALS_GROUP * F32_MIN_NORMAL));
  });
});

describe('fused output with the partials summed on the GPU (as on a hardware adapter)', () => {
  const SHAPES = { 'layers.0.fc1.weight': [48, 70], 'layers.0.fc1.bias': [48], 'layers.0.fc2.weight': [70, 48], 'head.weight': [10, 70] };

  async function merge(ctx: GpuContext, method: string, hardware: boolean) {
    const { base, models } = await openModels(gridModels(21, 3, SHAPES));
    const info = ctx.info as { isSoftware: boolean };
    const software = info.isSoftware;
    info.isSoftware = !hardware;
    const created = vi.spyOn(ctx, 'createBuffer');
    try {
      const sink = memorySink('merged');
      const report = await runMerge(ctx, { base, models, config: resolveConfig({ method, options: { chunkElements: 1024 } }), metrics: false, output: async () => sink });
      const summed = created.mock.calls.some(([label]) => label === 'fused output partial sums');
      return { bytes: sink.bytes()!, report, summed };
    } finally {
      created.mockRestore();
      info.isSoftware = software;
    }
  }

  const close = (a: number | null, b: number | null) => {
    expect(a === null).toBe(b === null);
    if (a !== null && b !== null) expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.max(Math.abs(b), 1e-30));
  };

  it.each(['task_arithmetic', 'magmax', 'consensus', 'ties', 'dare'])('%s: the same bytes, the same norms within 1e-5', async (method) => {
    const ctx = await testContext();
    const hw = await merge(ctx, method, true);
    const sw = await merge(ctx, method, false);
    expect(hw.summed).toBe(true);
    expect(sw.summed).toBe(false);
    expect(hw.bytes).toEqual(sw.bytes);
    const tensors = (r: MergeReport) => r.tensors.filter((t) => t.action === 'merge');
    expect(tensors(hw.report).length).toBe(Object.keys(SHAPES).length);
    tensors(hw.report).forEach((t, i) => {
      const s = tensors(sw.report)[i]!;
      expect(t.name).toBe(s.name);
      close(t.baseNorm, s.baseNorm);
      close(t.mergedNorm, s.mergedNorm);
      t.taskVectorNorms!.forEach((n, k) => close(n, s.taskVectorNorms![k]!));
      expect(t.mergedNorm).toBeGreaterThan(0);
    });
    expect(ctx.allocatedBytes).toBe(0);
  });
});
