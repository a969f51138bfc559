/**
 * gram_raw (the Gram partials straight from a chunk's raw model bytes) against gram over decode_stack's rows on the
 * GPU and against the CPU twin (gramPartialsRef over decodeStackRef's rows), and Model Stock's and SLERP's Gram pass
 * reading the models raw when the fused output follows.
 *
 * Kernel: 1, 2, 3, 8 and 20 models, with and without theta0 as the last row, lengths that are not a multiple of 16 or
 * of the 256-element reduction block, F32/F16/BF16 inputs (base in another encoding than the models), edge values.
 * Tolerances: every partial bit-exact against gram on the GPU over the decoded rows (the same f32 operations in the same
 * order), and against the twin with IEEE subnormals or with them flushed (WGSL lets a device flush them; SwiftShader
 * does), NaNs compared as NaN. Merges: with the interference metrics off the pass launches gram_raw and no
 * decode_stack, leaves its raw chunks to the output pass (which then reads only the small tensors), and the output
 * bytes equal those of the stack path (metrics on), bit for bit, also where it cannot leave them.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { REDUCTION_BLOCK } from '../../src/engine/gpu/constants';
import { decodeStack, readBuffer, type RawDType } from '../../src/engine/gpu/kernels';
import { gramPartials, gramRawPartials } from '../../src/engine/gpu/mergeReductions';
import { memorySink } from '../../src/engine/io/byteSource';
import { DEFAULT_OPTIONS, resolveConfig } from '../../src/engine/merge/config';
import { rawChunkStep } from '../../src/engine/merge/plans/fusedOutput';
import { runMerge } from '../../src/engine/merge/runMerge';
import { decodeStackRef, type RawInput } from '../../src/engine/reference/linearMerge';
import { gramPartialsRef } from '../../src/engine/reference/mergeReductions';
import { gridModels, openModels } from '../helpers/gridModels';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';
import { EDGES, input, pack, randomValues } from '../helpers/rawInputs';

afterAll(releaseTestContext);

/** The rows gram sees on the stack path: the task vectors, then theta0 when `thetaRow`. */
function rowsOf(base: Float32Array, stack: Float32Array, tasks: number, numel: number, thetaRow: boolean): Float32Array {
  const rows = new Float32Array((tasks + (thetaRow ? 1 : 0)) * numel);
  rows.set(stack.subarray(0, tasks * numel));
  if (thetaRow) rows.set(base, tasks * numel);
  return rows;
}

const bitsOf = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
const same = (a: number, b: number) => a === b || ((a & 0x7fffffff) > 0x7f800000 && (b & 0x7fffffff) > 0x7f800000);

async function check(what: string, inputs: readonly RawInput[], numel: number, thetaRow: boolean): Promise<void> {
  const ctx = await testContext();
  const tasks = inputs.length - 1;
  const rows = tasks + (thetaRow ? 1 : 0);
  const { bytes, segments } = pack(inputs, numel);
  const inBuf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
  ctx.device.queue.writeBuffer(inBuf, 0, bytes);
  // The stack path's rows, decoded on the GPU.
  const { bytes: bytes4, segments: segments4 } = pack(inputs, numel, 4);
  const in4 = ctx.createBuffer('inputs (decode_stack layout)', bytes4.byteLength, testUsage());
  ctx.device.queue.writeBuffer(in4, 0, bytes4);
  const base = ctx.createBuffer('theta0', numel * 4, testUsage());
  const stack = ctx.createBuffer('stack', rows * numel * 4, testUsage());
  try {
    const raw = await ctx.scoped(what, () => gramRawPartials(ctx, { buffer: inBuf, segments }, numel, thetaRow));
    await ctx.scoped(what, () => decodeStack(ctx, { inputs: in4, segments: segments4, numel, base, stack }));
    if (thetaRow) {
      const encoder = ctx.device.createCommandEncoder();
      encoder.copyBufferToBuffer(base, 0, stack, tasks * numel * 4, numel * 4);
      ctx.device.queue.submit([encoder.finish()]);
    }
    const decoded = await gramPartials(ctx, stack, rows, numel);
    expect(bitsOf(raw), `${what}: gram_raw against gram over decode_stack`).toEqual(bitsOf(decoded));
    const twin = (flush: boolean) => {
      const d = decodeStackRef(inputs, numel, { flushSubnormals: flush });
      return bitsOf(gramPartialsRef(rowsOf(d.base, d.stack, tasks, numel, thetaRow), rows, numel));
    };
    const [g, e, f] = [bitsOf(raw), twin(false), twin(true)];
    const bad: string[] = [];
    for (let i = 0; i < g.length && bad.length < 5; i++) if (!same(g[i]!, e[i]!) && !same(g[i]!, f[i]!)) bad.push(`[${i}] gpu 0x${g[i]!.toString(16)} cpu 0x${e[i]!.toString(16)}`);
    expect(bad, `${what}: against the twin`).toEqual([]);
    expect(g.length).toBe(e.length);
  } finally {
    [inBuf, in4, base, stack].forEach((b) => ctx.destroyBuffer(b));
  }
}

function randomInputs(seed: number, tasks: number, numel: number, baseDtype: RawDType, dtype: RawDType): RawInput[] {
  const base = randomValues(seed, numel);
  return [input(base, baseDtype), ...Array.from({ length: tasks }, (_, t) => input(randomValues(seed + 1 + t, numel, base), dtype))];
}

describe('gram_raw', () => {
  it('gives gram\'s partials over the decoded task vectors (and theta0), bit for bit, for 1 to 20 models and every dtype', async () => {
    for (const [tasks, numel, baseDtype, dtype] of [
      [1, 5, 'F32', 'F32'],
      [2, 256 * 3 + 17, 'F32', 'F32'],
      [3, 600, 'F32', 'BF16'],
      [8, 1001, 'F32', 'F32'],
      [8, 513, 'BF16', 'F16'],
      [20, 16 * 7 + 3, 'F16', 'BF16'],
    ] as const) {
      const inputs = randomInputs(tasks * 13 + numel, tasks, numel, baseDtype, dtype);
      for (const thetaRow of [false, true]) await check(`${tasks} ${dtype} models (base ${baseDtype}) x ${numel}, theta0 row ${thetaRow}`, inputs, numel, thetaRow);
    }
  });

  it('carries edge values (zeros, subnormals, huge values, infinities, NaN) as the stack path does', async () => {
    const n = EDGES.length ** 2;
    const a = Float32Array.from({ length: n }, (_, i) => EDGES[Math.floor(i / EDGES.length)]!);
    const b = Float32Array.from({ length: n }, (_, i) => EDGES[i % EDGES.length]!);
    for (const dtype of ['F32', 'BF16'] as const) {
      for (const thetaRow of [false, true]) await check(`edges in ${dtype}, theta0 row ${thetaRow}`, [input(a, dtype), input(b, dtype), input(b.slice().reverse(), dtype), input(a, dtype)], n, thetaRow);
    }
  });
});

describe('the Gram pass of Model Stock and SLERP', () => {
  it('splits tensors where the output pass does at the default chunk size too (rawChunkStep: whole 256-element blocks)', async () => {
    const ctx = await testContext();
    for (let tasks = 1; tasks <= 32; tasks++) expect(rawChunkStep(ctx, tasks, DEFAULT_OPTIONS.chunkElements) % REDUCTION_BLOCK, `${tasks} models`).toBe(0);
    // One tensor longer than a chunk of 2 models: both of its chunks go from the Gram pass to the output pass.
    const g = gridModels(77, 2, { 'layers.0.fc1.weight': [640, 640] }, 2);
    expect(rawChunkStep(ctx, 2, DEFAULT_OPTIONS.chunkElements)).toBeLessThan(640 * 640);
    const { base, models } = await openModels(g);
    const reads = new Map<string, number>();
    const created = vi.spyOn(ctx, 'createBuffer');
    try {
      await runMerge(ctx, { base, models, metrics: false, config: resolveConfig({ method: 'model_stock' }), output: async () => memorySink('out'), onProgress: (q) => reads.set(q.phase, Math.max(reads.get(q.phase) ?? 0, q.doneBytes)) });
      expect(created.mock.calls.filter(([label]) => label.endsWith('raw inputs (kept)')).length).toBe(2);
    } finally {
      created.mockRestore();
    }
    expect(reads.get('Model Stock angles')).toBe(640 * 640 * 4 * 3);
    expect(reads.get('merge') ?? 0).toBe(0);
    expect(ctx.allocatedBytes).toBe(0);
  });

  const SHAPES = { 'layers.0.fc1.weight': [48, 64], 'layers.0.fc1.bias': [48], 'layers.0.fc2.bias': [64], 'layers.1.fc1.weight': [40, 70] };
  for (const [method, tasks, params] of [
    ['model_stock', 3, {}],
    ['model_stock', 2, { angle: 'angle' }],
    ['slerp', 2, { t: 0.3 }],
  ] as const) {
    it(`${method} ${JSON.stringify(params)}: read raw without metrics (no decode_stack), the stack path's bytes`, async () => {
      const ctx = await testContext();
      const g = gridModels(31 + tasks, tasks, SHAPES, 2);
      const run = async (metrics: boolean, o: { cacheBytes?: number } = {}) => {
        const { base, models } = await openModels(g);
        const sink = memorySink('out');
        const created = vi.spyOn(ctx, 'createBuffer');
        // Bytes read from the models in each phase (the Gram pass, then the output pass 'merge').
        const reads = new Map<string, number>();
        try {
          await runMerge(ctx, {
            base,
            models,
            metrics,
            config: resolveConfig({ method, params, options: { chunkElements: 1024 } }),
            output: async () => sink,
            ...(o.cacheBytes !== undefined ? { cacheBytes: o.cacheBytes } : {}),
            onProgress: (q) => reads.set(q.phase, Math.max(reads.get(q.phase) ?? 0, q.doneBytes)),
          });
          const labels = created.mock.calls.map(([label]) => label);
          return {
            bytes: sink.bytes()!,
            raw: labels.filter((l) => l === 'gram_raw partials').length,
            stacks: labels.filter((l) => l.endsWith('] task vectors') || l === 'gram batch task vectors').length,
            kept: labels.filter((l) => l.endsWith('raw inputs (kept)')).length,
            outputReads: reads.get('merge') ?? 0,
          };
        } finally {
          created.mockRestore();
        }
      };
      const fused = await run(false);
      const stacked = await run(true);
      // Two tensors of 3072 and 2800 elements in chunks, two small ones in one batch.
      expect(fused.raw).toBeGreaterThanOrEqual(3);
      expect(fused.stacks).toBe(0);
      expect(stacked.raw).toBe(0);
      expect(stacked.stacks).toBeGreaterThan(0);
      expect(Buffer.from(fused.bytes).equals(Buffer.from(stacked.bytes))).toBe(true);
      // The output pass takes the Gram pass's raw chunks of the large tensors (3 + 3 chunks, the last one of 752
      // elements padded to 768 there): it reads only the small ones, 48 + 64 elements of f32 theta0 and models.
      const small = (48 + 64) * 4 * (tasks + 1);
      expect(fused.kept).toBe(6);
      expect(fused.outputReads).toBe(small);
      // Without room to keep them the output pass reads everything again, and writes the same bytes.
      const again = await run(false, { cacheBytes: 0 });
      expect(again.kept).toBe(0);
      expect(again.outputReads).toBe((48 * 64 + 48 + 64 + 40 * 70) * 4 * (tasks + 1));
      expect(Buffer.from(again.bytes).equals(Buffer.from(stacked.bytes))).toBe(true);
      expect(ctx.allocatedBytes).toBe(0);
    });
  }
});
