/**
 * Models stored in F64: WGSL has no f64, so the GPU merges their values rounded to f32 and an output in the base's
 * dtype is widened back to F64 on the host (plans/util.ts outputBytes). Checked on the fused output pass (Task
 * Arithmetic, global TIES: no interference metrics) and on the task-vector-stack path (metrics on), against the float64
 * reference twins (the grid values are exact in f32, so rounding the inputs loses nothing). Tolerance as in
 * methods.test.ts: 1e-5 relative to the tensor's largest entry.
 */
import { describe, expect, it } from 'vitest';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels, maxRelativeError } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const SHAPES = {
  'vision_model.embeddings.class_embedding': [24],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [40, 24],
  'vision_model.encoder.layers.0.mlp.fc1.weight': [48, 96],
};

const f64Bytes = (m: RefModel) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype: 'F64', shape: t.shape, data: encodeFloats(t.data, 'F64') })));

describe('models stored in F64', () => {
  const g = gridModels(7, 3, SHAPES);
  for (const [method, metrics] of [
    ['task_arithmetic', false],
    ['task_arithmetic', true],
    ['ties', false],
    ['ties', true],
  ] as const) {
    it(`${method}, interference metrics ${metrics ? 'on' : 'off'}: an F64 output equal to the twin, widened from f32`, async () => {
      const ctx = await testContext();
      const open = (name: string, m: RefModel) => openSingleFileModel(name, memorySource(name, f64Bytes(m)));
      const base = await open('base.safetensors', g.base);
      const models = await Promise.all(g.models.map((m, i) => open(`task${i}.safetensors`, m)));
      expect(base.tensors.get('vision_model.encoder.layers.0.mlp.fc1.weight')!.info.dtype).toBe('F64');
      const sink = memorySink('merged.safetensors');
      const config = resolveConfig({ method, options: { chunkElements: 1024, outputDtype: 'base' } });
      await runMerge(ctx, { base, models, config, metrics, output: async () => sink });
      expect(ctx.allocatedBytes).toBe(0);
      const got = readFloatTensors(sink.bytes());
      const want = mergeReference(method, resolveParams(getMethod(method), {}), g.base, g.models);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [name, t] of want) {
        const out = got.get(name)!;
        expect(out.dtype, name).toBe('F64');
        expect(maxRelativeError(out.values, t.data), name).toBeLessThanOrEqual(1e-5);
        // Every value went through f32 on the GPU: widening keeps it exactly.
        expect(out.values.every((v) => Math.fround(v) === v || Number.isNaN(v)), name).toBe(true);
      }
    });
  }
});
