/**
 * TALL masks' fused output (tall_output: all T models of a chunk from one launch of the raw model bytes) against its
 * CPU twin (reference/linearMerge.ts tallOutputRef: combine, tall_mask, bitmask_apply and pack_add), and in whole
 * merges against the task-vector stack path (what runs with the interference metrics on) and the float64 reference.
 *
 * Kernel: 1, 2, 8 and 20 models, lengths that are not a multiple of the 16-element block, F32/F16/BF16 inputs and
 * outputs, per-task mask lambdas (0 included), equal task vectors (the strict comparison), theta0 -0 with tau +0, and
 * every ordered pair of finite edge values (the masks assume finite inputs, as tall_mask's). Tolerances: each output's
 * words bit-exact against the twin run with IEEE subnormals or with them flushed (WGSL lets a device flush them;
 * SwiftShader does); norms (theta0, each tau_t, output 0's delta) from per-thread f32 partials folded in float64,
 * relative error <= 1e-5 (with a NaN both sides NaN; a sum past f32's range may be Infinity on the GPU); the non-finite flags exactly the twin's. Merges: the fused bytes equal the stack path's bit
 * for bit, for every output, with small tensors sharing launches; and within 1e-5 of the float64 reference.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, type RawDType } from '../../src/engine/gpu/kernels';
import { foldLinearPartials, LinearMergeKernel, linearMergeOutBytes, linearMergeThreads } from '../../src/engine/gpu/linearMerge';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { RawUploader } from '../../src/engine/merge/stream';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { tallMaskModels } from '../../src/engine/reference/mergeReference';
import { tallOutputRef, type RawInput } from '../../src/engine/reference/linearMerge';
import type { RefModel } from '../../src/engine/reference/refModel';
import { rngKey, rngUniform } from '../../src/engine/rng';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { DTYPE_BYTES } from '../../src/engine/types';
import { gridModels, maxRelativeError } from '../helpers/gridModels';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';
import { EDGES, input, pack, randomValues, words } from '../helpers/rawInputs';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const NORM_RTOL = 1e-5;
const F32_MAX = 3.4028234663852886e38;

let ctx: GpuContext;
let kernel: LinearMergeKernel;
/** The mask lambdas the test kernel applies (every tensor alike). */
let lambdas = new Float32Array(0);
beforeAll(async () => {
  ctx = await testContext();
  kernel = new LinearMergeKernel(ctx, 'tall_output', undefined, () => ({ lambdas, k: 0 }));
});
afterAll(async () => {
  kernel.destroy();
  await releaseTestContext();
});

async function runGpu(inputs: readonly RawInput[], numel: number, outDtype: RawDType, flags: boolean) {
  const tasks = inputs.length - 1;
  const { bytes, segments } = pack(inputs, numel);
  const stride = linearMergeOutBytes(numel, outDtype);
  const rows = flags ? 1 : tasks + 2;
  const inBuf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
  ctx.device.queue.writeBuffer(inBuf, 0, bytes);
  const out = ctx.createBuffer('out', tasks * stride, testUsage());
  const partials = ctx.createBuffer('partials', rows * linearMergeThreads(numel) * 4, testUsage());
  try {
    await ctx.scoped('tall_output', () => {
      const encoder = ctx.device.createCommandEncoder();
      // The coefficients are not read: NaNs show that.
      kernel.encode(encoder, { inputs: inBuf, segments, numel, coeffs: new Float32Array(tasks).fill(NaN), outDtype, out, partials, flags, chunk: { name: 'w', shape: [numel], start: 0 } });
      ctx.device.queue.submit([encoder.finish()]);
    });
    const all = await readBuffer(ctx, out, tasks * stride);
    const outputs = Array.from({ length: tasks }, (_, t) => all.slice(t * stride, t * stride + numel * DTYPE_BYTES[outDtype]));
    const p = await readBuffer(ctx, partials, rows * linearMergeThreads(numel) * 4);
    const floats = new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4);
    return { outputs, totals: foldLinearPartials(floats, rows), floats };
  } finally {
    [inBuf, out, partials].forEach((b) => ctx.destroyBuffer(b));
  }
}

/** Runs the kernel (norms, then flags) and the twin (IEEE and flushed subnormals); compares every output, the norms and the flags. */
async function check(what: string, inputs: readonly RawInput[], numel: number, outDtype: RawDType): Promise<void> {
  const gpu = await runGpu(inputs, numel, outDtype, false);
  const exact = tallOutputRef(inputs, numel, lambdas, outDtype);
  const flushed = tallOutputRef(inputs, numel, lambdas, outDtype, { flushSubnormals: true });
  expect(gpu.outputs.length).toBe(inputs.length - 1);
  gpu.outputs.forEach((bytes, t) => {
    const [g, e, f] = [bytes, exact.outputs[t]!, flushed.outputs[t]!].map((b) => words(b, outDtype));
    const bad: string[] = [];
    for (let j = 0; j < g!.length && bad.length < 5; j++) {
      if (g![j] !== e![j] && g![j] !== f![j]) bad.push(`[${j}] gpu 0x${g![j]!.toString(16)} cpu 0x${e![j]!.toString(16)}`);
    }
    expect(bad, `${what}: output ${t}`).toEqual([]);
  });
  [exact.baseSq, ...exact.tvSq, exact.deltaSq].forEach((w, r) => {
    const got = gpu.totals[r]!;
    // A value BF16 rounds to an infinity makes a NaN task vector on both sides.
    if (Number.isNaN(w)) return expect(got, `${what}: norm row ${r}`).toBeNaN();
    // Squares past f32's range overflow the f32 partials (finite huge inputs).
    if (w > F32_MAX && got === Infinity) return;
    expect(Math.abs(got - w), `${what}: norm row ${r}: gpu ${got} cpu ${w}`).toBeLessThanOrEqual(NORM_RTOL * w + 1e-30);
  });
  const flagged = await runGpu(inputs, numel, outDtype, true);
  flagged.outputs.forEach((b, t) => expect(Buffer.from(b).equals(Buffer.from(gpu.outputs[t]!)), `${what}: output ${t} with flags`).toBe(true));
  expect(Array.from(flagged.floats), `${what}: flags`).toEqual(Array.from(exact.flags));
}

function randomInputs(seed: number, tasks: number, numel: number, dtype: RawDType): RawInput[] {
  const base = randomValues(seed, numel);
  return [input(base, dtype), ...Array.from({ length: tasks }, (_, t) => input(randomValues(seed + 1 + t, numel, base), dtype))];
}

const lambdasFor = (seed: number, tasks: number) => Float32Array.from({ length: tasks }, (_, t) => (t % 4 === 3 ? 0 : Math.fround(1.5 * rngUniform(rngKey(seed, 7, 8), t))));

describe('tall_output', () => {
  it('matches the twin for 1, 2, 8 and 20 models, per-task mask lambdas, every input and output dtype', async () => {
    for (const [tasks, numel, dtype] of [
      [1, 37, 'F32'],
      [2, 16 * 9 + 5, 'F32'],
      [8, 1001, 'F32'],
      [20, 16 * 5 + 3, 'F32'],
      [3, 515, 'F16'],
      [3, 515, 'BF16'],
    ] as const) {
      const inputs = randomInputs(tasks * 31 + numel, tasks, numel, dtype);
      lambdas = lambdasFor(tasks, tasks);
      for (const out of ['F32', 'F16', 'BF16'] as const) await check(`${tasks} ${dtype} models x ${numel}, out ${out}`, inputs, numel, out);
    }
  });

  it('masks strictly, writes theta0 + (+0) where a task drops a weight, and carries finite edge values like the twin', async () => {
    // Two equal task vectors: mtl - tau = tau, so |tau| > 1 * |tau| fails and |tau| > 0.99 * |tau| holds (tau != 0).
    const numel = 16 * 3 + 5;
    const base = randomValues(41, numel);
    const m = randomValues(42, numel, base);
    for (const lambda of [1, 0.99, 0]) {
      lambdas = new Float32Array(2).fill(lambda);
      await check(`equal task vectors, mask lambda ${lambda}`, [input(base, 'F32'), input(m, 'F32'), input(m, 'F32')], numel, 'F32');
    }
    const negZero = new Float32Array(16).fill(-0);
    lambdas = Float32Array.from([0.5, 0.5]);
    await check('theta0 -0, tau +0', [input(negZero, 'F32'), input(negZero, 'F32'), input(negZero, 'F32')], 16, 'F32');
    // Every ordered pair of finite edge values as (theta0, model 0); model 1 = model 0 reversed.
    const finite = EDGES.filter(Number.isFinite);
    const n = finite.length ** 2;
    const a = Float32Array.from({ length: n }, (_, i) => finite[Math.floor(i / finite.length)]!);
    const b = Float32Array.from({ length: n }, (_, i) => finite[i % finite.length]!);
    lambdas = Float32Array.from([0.5, 1.5]);
    for (const dtype of ['F32', 'BF16'] as const) await check(`edges in ${dtype}`, [input(a, dtype), input(b, dtype), input(b.slice().reverse(), dtype)], n, 'F32');
  });

  it('flags the blocks where a task vector or an output is not finite', async () => {
    const numel = 16 * 4;
    const base = randomValues(51, numel);
    const models = [randomValues(52, numel, base), randomValues(53, numel, base)];
    models[0]![3] = NaN;
    models[1]![40] = Infinity;
    lambdas = Float32Array.from([0.6, 0.6]);
    const inputs = [input(base, 'F32'), ...models.map((x) => input(x, 'F32'))];
    const flags = (await runGpu(inputs, numel, 'F32', true)).floats;
    expect(Array.from(flags)).toEqual([1, 0, 1, 0]);
    expect(Array.from(flags)).toEqual(Array.from(tallOutputRef(inputs, numel, lambdas, 'F32').flags));
  });

  it('needs the masks, the chunk, and one mask lambda per model', () => {
    const encoder = ctx.device.createCommandEncoder();
    const buf = ctx.createBuffer('inputs', 1024, testUsage());
    const args = { inputs: buf, segments: [{ offset: 0, dtype: 'F32' as const }, { offset: 64, dtype: 'F32' as const }], numel: 16, coeffs: new Float32Array([1]), outDtype: 'F32' as const, out: buf, partials: null };
    expect(() => kernel.encode(encoder, args)).toThrow(/tall_output: needs the chunk's tensor/);
    lambdas = new Float32Array(2);
    expect(() => kernel.encode(encoder, { ...args, chunk: { name: 'w', shape: [16], start: 0 } })).toThrow(/tall_output: 2 mask lambdas for 1 models/);
    expect(() => new LinearMergeKernel(ctx, 'tall_output')).toThrow(/need each tensor's masks/);
    expect(kernel.outputs(5)).toBe(5);
    ctx.destroyBuffer(buf);
  });
});

// Small tensors (which share launches) around larger ones spanning several 1024-element chunks.
const SHAPES: Record<string, number[]> = {
  'blocks.00.bias': [7],
  'blocks.01.bias': [40],
  'blocks.02.weight': [48, 64],
  'blocks.03.norm': [33, 3],
  'blocks.04.bias': [5],
  'blocks.05.weight': [130, 20],
};

describe('TALL masks merges', () => {
  const g = gridModels(17, 4, SHAPES);
  const bytesOf = (m: RefModel, dtype: 'F32' | 'BF16') => makeModelBytes([...m].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFloats(t.data, dtype) })));

  async function merge(params: Record<string, unknown>, dtype: 'F32' | 'BF16', metrics: boolean, norms = true) {
    const open = (name: string, m: RefModel) => openSingleFileModel(name, memorySource(name, bytesOf(m, dtype)));
    const sinks: ReturnType<typeof memorySink>[] = [];
    // The kernel test's launcher holds its buffers: the merge itself must leave nothing behind.
    const before = ctx.allocatedBytes;
    const report = await runMerge(ctx, {
      base: await open('base', g.base),
      models: await Promise.all(g.models.map((m, i) => open(`task${i}`, m))),
      config: resolveConfig({ method: 'tall_masks', params, options: { chunkElements: 1024 } }),
      metrics,
      norms,
      output: async (i) => {
        const s = memorySink(`out${i}`);
        sinks.push(s);
        return s;
      },
    });
    expect(ctx.allocatedBytes).toBe(before);
    return { files: sinks.map((s) => s.bytes()!), report };
  }

  for (const [dtype, params] of [
    ['F32', {}],
    ['F32', { mask_lambda: { per_task: [0.2, 0.9, 0, 1.4] } }],
    ['BF16', { mask_lambda: [{ filter: 'blocks.01.', value: 0.9 }, { value: 0.3 }] }],
  ] as const) {
    it(`without metrics, one launch writes every task's model: the stack path's bytes (${dtype}, ${JSON.stringify(params)})`, async () => {
      const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
      const created = vi.spyOn(ctx, 'createBuffer');
      const fused = await merge(params, dtype, false);
      const shared = uploads.mock.calls.filter(([parts]) => parts.length > 1).length;
      const fusedReadback = created.mock.calls.some(([label]) => label === 'fused output readback staging');
      uploads.mockRestore();
      created.mockRestore();
      expect(fusedReadback).toBe(true);
      // The per-tensor lambda of blocks.01 ends a run of small tensors; the others share.
      expect(shared).toBeGreaterThan(0);
      const stacked = await merge(params, dtype, true);
      expect(fused.files.length).toBe(4);
      fused.files.forEach((f, t) => expect(Buffer.from(f).equals(Buffer.from(stacked.files[t]!)), `output ${t}`).toBe(true));
      // The report's norms (theta0, tau_t, output 0's delta) agree with the stack path's.
      for (const [a, b] of fused.report.tensors.map((t, i) => [t, stacked.report.tensors[i]!] as const)) {
        expect(a.name).toBe(b.name);
        expect(Math.abs(a.mergedNorm! - b.mergedNorm!), a.name).toBeLessThanOrEqual(1e-5 * b.mergedNorm! + 1e-30);
        a.taskVectorNorms!.forEach((n, t) => expect(Math.abs(n - b.taskVectorNorms![t]!), `${a.name} tau ${t}`).toBeLessThanOrEqual(1e-5 * n + 1e-30));
      }
      // Without norms: the same bytes, no non-finite values found.
      const bare = await merge(params, dtype, false, false);
      bare.files.forEach((f, t) => expect(Buffer.from(f).equals(Buffer.from(fused.files[t]!)), `output ${t} without norms`).toBe(true));
      expect(bare.report.nonFinite).toEqual([]);
      if (dtype === 'F32') {
        const want = tallMaskModels(resolveParams(getMethod('tall_masks'), params), g.base, g.models);
        fused.files.forEach((f, t) => {
          const got = readFloatTensors(f);
          for (const [name, w] of want[t]!) expect(maxRelativeError(got.get(name)!.values, w.data), `output ${t} ${name}`).toBeLessThanOrEqual(1e-5);
        });
      }
    });
  }
});
