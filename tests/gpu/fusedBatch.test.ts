/**
 * Small tensors share chunks in the fused output pass (src/engine/merge/plans/fusedOutput.ts, SMALL_TENSOR): Task
 * Arithmetic over a model of many small tensors around large ones writes the same values and reports the same norms,
 * bit for bit, as the same merge with every tensor in a launch of its own; for F32 and BF16 models and F32, F16 and F64
 * outputs. The small tensors did go out in shared chunks, and a batch ends where the coefficients change (per-tensor
 * lambdas). DARE batches too (its drop keyed by each part's tensor and element: LinearMergeArgs.parts), writing the
 * bytes of unbatched launches and of the stack path (dare_drop), and with `linear_only` ends a batch between a dropped
 * and an undropped tensor. Consensus (consensus_output) batches too, ends a batch where the mask lambdas change, and
 * writes the stack path's bytes.
 */
import { describe, expect, it, vi } from 'vitest';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { FusedOutput } from '../../src/engine/merge/plans/fusedOutput';
import { RawUploader } from '../../src/engine/merge/stream';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels, maxRelativeError } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

// Runs of small tensors (1 to 16384 elements, the largest that batches) between tensors too large to batch; named so
// that their (alphabetical) order is the order written here.
const SHAPES: Record<string, number[]> = {};
const name = (i: number, what: string) => `blocks.${String(i).padStart(2, '0')}.${what}`;
for (let i = 0; i < 9; i++) SHAPES[name(i, 'bias')] = [1 + 37 * i];
SHAPES[name(9, 'weight')] = [200, 100];
SHAPES[name(10, 'weight')] = [128, 128];
SHAPES[name(11, 'bias')] = [3];
SHAPES[name(12, 'weight')] = [16385];
for (let i = 13; i < 20; i++) SHAPES[name(i, 'norm')] = [17 * i, 3];

type Dtype = 'F32' | 'BF16' | 'F64';
const bytesOf = (m: RefModel, dtype: Dtype) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFloats(t.data, dtype) })));

async function merge(method: string, params: Record<string, unknown>, base: Uint8Array, models: Uint8Array[], outputDtype: 'base' | 'F16', metrics = false) {
  const ctx = await testContext();
  const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
  const sink = memorySink('out');
  const report = await runMerge(ctx, {
    base: await open('base', base),
    models: await Promise.all(models.map((b, i) => open(`task${i}`, b))),
    config: resolveConfig({ method, params, options: { outputDtype } }),
    metrics,
    output: async () => sink,
  });
  expect(ctx.allocatedBytes).toBe(0);
  return { bytes: sink.bytes(), tensors: report.tensors };
}

/** Keeps every small tensor in a launch of its own (no tensor joins a waiting batch) until restored. */
const aloneEach = () => vi.spyOn(FusedOutput.prototype as unknown as { joins: () => boolean }, 'joins').mockReturnValue(false);

describe('small tensors share chunks in the fused output pass', () => {
  const g = gridModels(3, 4, SHAPES);
  for (const [dtype, outputDtype] of [
    ['F32', 'base'],
    ['BF16', 'base'],
    ['F32', 'F16'],
    ['F64', 'base'],
  ] as const) {
    it(`${dtype} models, ${outputDtype} output: the bytes and norms of unbatched launches`, async () => {
      const base = bytesOf(g.base, dtype);
      const models = g.models.map((m) => bytesOf(m, dtype));
      const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
      const ta = await merge('task_arithmetic', { lambda: 0.3 }, base, models, outputDtype);
      const shared = uploads.mock.calls.filter(([parts]) => parts.length > 1).map(([parts]) => parts.length);
      uploads.mockClear();
      const alone = aloneEach();
      const single = await merge('task_arithmetic', { lambda: 0.3 }, base, models, outputDtype);
      alone.mockRestore();
      const unbatched = uploads.mock.calls.filter(([parts]) => parts.length > 1).length;
      uploads.mockRestore();
      // Two runs of small tensors: 9 biases, then the 128 x 128 weight and one bias; then the 7 norms.
      expect(shared).toEqual([9, 2, 7]);
      expect(unbatched).toBe(0);
      // The files' metadata names the method: compare the tensors.
      expect(Buffer.from(ta.bytes).equals(Buffer.from(single.bytes))).toBe(true);
      expect([...readFloatTensors(ta.bytes).keys()]).toEqual(Object.keys(SHAPES));
      expect(ta.tensors).toEqual(single.tensors);
      // Norms were filled in for every tensor (bf16 may round a tiny tensor's task vectors to zero).
      expect(ta.tensors.every((t) => Number.isFinite(t.mergedNorm) && t.taskVectorNorms!.every(Number.isFinite))).toBe(true);
      expect(ta.tensors.filter((t) => t.mergedNorm! > 0).length).toBeGreaterThan(Object.keys(SHAPES).length / 2);
      if (outputDtype === 'base' && dtype !== 'BF16') {
        const want = mergeReference('task_arithmetic', resolveParams(getMethod('task_arithmetic'), { lambda: 0.3 }), g.base, g.models);
        const got = readFloatTensors(ta.bytes);
        for (const [name, t] of want) expect(maxRelativeError(got.get(name)!.values, t.data), name).toBeLessThanOrEqual(1e-5);
      }
    });
  }

  for (const dtype of ['F32', 'BF16'] as const) {
    it(`DARE on ${dtype} models: the bytes and norms of unbatched launches and the stack path's bytes`, async () => {
      const base = bytesOf(g.base, dtype);
      const models = g.models.map((m) => bytesOf(m, dtype));
      const params = { p: 0.5, seed: 11, lambda: 0.3 };
      const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
      const dare = await merge('dare', params, base, models, 'base');
      const shared = uploads.mock.calls.filter(([parts]) => parts.length > 1).map(([parts]) => parts.length);
      uploads.mockRestore();
      expect(shared).toEqual([9, 2, 7]);
      const alone = aloneEach();
      const single = await merge('dare', params, base, models, 'base');
      alone.mockRestore();
      expect(Buffer.from(dare.bytes).equals(Buffer.from(single.bytes))).toBe(true);
      expect(dare.tensors).toEqual(single.tensors);
      // With the interference metrics on, DARE runs on the task-vector stack (dare_drop, its keys from the host).
      const stacked = await merge('dare', params, base, models, 'base', true);
      const [a, b] = [readFloatTensors(dare.bytes), readFloatTensors(stacked.bytes)];
      for (const [n, t] of a) expect(Array.from(t.values), n).toEqual(Array.from(b.get(n)!.values));
      // Something was dropped in every tensor of more than a few entries, and rescaled (else p = 0 would pass too).
      const plain = readFloatTensors((await merge('task_arithmetic', { lambda: 0.3 }, base, models, 'base')).bytes);
      for (const [n, t] of a) if (t.values.length >= 16) expect(Array.from(t.values), n).not.toEqual(Array.from(plain.get(n)!.values));
      if (dtype === 'F32') {
        const want = mergeReference('dare', resolveParams(getMethod('dare'), params), g.base, g.models);
        for (const [name, t] of want) expect(maxRelativeError(a.get(name)!.values, t.data), name).toBeLessThanOrEqual(1e-5);
      }
    });
  }

  it('DARE with linear_only ends a batch between a dropped and an undropped tensor', async () => {
    const base = bytesOf(g.base, 'F32');
    const models = g.models.map((m) => bytesOf(m, 'F32'));
    const params = { p: 0.5, seed: 5, lambda: 0.3, linear_only: true };
    const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
    const dare = await merge('dare', params, base, models, 'base');
    const sizes = uploads.mock.calls.map(([parts]) => parts.map((q) => q.t.name.slice(7)).join(' '));
    uploads.mockRestore();
    // The 128 x 128 weight (a Linear weight, dropped) and the bias after it (left alone) go out one by one.
    expect(sizes.slice(0, 4)).toEqual([[...Array(9).keys()].map((i) => `0${i}.bias`).join(' '), '09.weight', '10.weight', '11.bias']);
    const stacked = await merge('dare', params, base, models, 'base', true);
    expect(Buffer.from(readFloatTensors(dare.bytes).get('blocks.10.weight')!.values.buffer).equals(Buffer.from(readFloatTensors(stacked.bytes).get('blocks.10.weight')!.values.buffer))).toBe(true);
    const want = mergeReference('dare', resolveParams(getMethod('dare'), params), g.base, g.models);
    const got = readFloatTensors(dare.bytes);
    for (const [name, t] of want) expect(maxRelativeError(got.get(name)!.values, t.data), name).toBeLessThanOrEqual(1e-5);
  });

  it('ends a batch where the coefficients change', async () => {
    const base = bytesOf(g.base, 'F32');
    const models = g.models.map((m) => bytesOf(m, 'F32'));
    const lambda = [{ filter: 'blocks.04.', value: 0.5 }, { value: 0.3 }];
    const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
    const ta = await merge('task_arithmetic', { lambda }, base, models, 'base');
    const sizes = uploads.mock.calls.map(([parts]) => parts.length);
    uploads.mockRestore();
    expect(sizes.slice(0, 3)).toEqual([4, 1, 4]);
    const want = mergeReference('task_arithmetic', resolveParams(getMethod('task_arithmetic'), { lambda }), g.base, g.models);
    const got = readFloatTensors(ta.bytes);
    for (const [name, t] of want) expect(maxRelativeError(got.get(name)!.values, t.data), name).toBeLessThanOrEqual(1e-5);
  });

  it('Consensus batches too, ends a batch where the mask lambdas change, and writes the stack path\'s bytes', async () => {
    const base = bytesOf(g.base, 'F32');
    const models = g.models.map((m) => bytesOf(m, 'F32'));
    const params = { k: 2, mask_lambda: [{ filter: 'blocks.04.', value: 0.9 }, { value: 0.4 }] };
    const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
    const fused = await merge('consensus', params, base, models, 'base');
    const sizes = uploads.mock.calls.map(([parts]) => parts.length);
    uploads.mockRestore();
    expect(sizes.slice(0, 3)).toEqual([4, 1, 4]);
    // With the interference metrics on, Consensus runs on the task-vector stack.
    const stacked = await merge('consensus', params, base, models, 'base', true);
    const [a, b] = [readFloatTensors(fused.bytes), readFloatTensors(stacked.bytes)];
    for (const [n, t] of a) expect(Array.from(t.values), n).toEqual(Array.from(b.get(n)!.values));
    const want = mergeReference('consensus', resolveParams(getMethod('consensus'), params), g.base, g.models);
    for (const [name, t] of want) expect(maxRelativeError(a.get(name)!.values, t.data), name).toBeLessThanOrEqual(1e-5);
  });
});
