/**
 * Every batch method on the GPU (streaming plans and WGSL kernels) against its float64 CPU reference twin, on random
 * models of 3-4 tasks with 0-D, 1-D, 2-D and 4-D tensors, streamed in small chunks (several per tensor) with and
 * without the GPU cache. Tolerance: max error <= 1e-5 relative to the tensor's largest entry (f32 vs float64).
 */
import { describe, expect, it, vi } from 'vitest';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { mergeReference, tallMaskModels } from '../../src/engine/reference/mergeReference';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import type { RefModel } from '../../src/engine/reference/refModel';
import { gridModels, maxRelativeError, openModels, type GridModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';

const SHAPES = {
  'vision_model.embeddings.class_embedding': [24],
  'vision_model.embeddings.patch_embedding.weight': [8, 3, 4, 4],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [40, 24],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [40],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [48, 96],
  'vision_model.encoder.layers.2.mlp.fc2.weight': [24, 48],
  'vision_model.logit_bias': [],
};

/** Runs one method on the GPU; returns the merged model(s) decoded from the written files. */
async function gpuMerge(g: GridModels, method: string, params: Record<string, unknown>, cacheBytes: number): Promise<Map<string, Float64Array>[]> {
  const ctx = await testContext();
  const { base, models } = await openModels(g);
  const sinks: ReturnType<typeof memorySink>[] = [];
  const config = resolveConfig({ method, params, options: { chunkElements: 1024 } });
  await runMerge(ctx, { base, models, config, cacheBytes, output: async (i) => { const s = memorySink(`out${i}`); sinks.push(s); return s; } });
  expect(ctx.allocatedBytes).toBe(0);
  return sinks.map((s) => new Map([...readFloatTensors(s.bytes())].map(([k, v]) => [k, v.values])));
}

function expectClose(got: Map<string, Float64Array>, want: RefModel, label: string): void {
  expect([...got.keys()].sort(), label).toEqual([...want.keys()].sort());
  for (const [name, t] of want) expect(maxRelativeError(got.get(name)!, t.data), `${label} ${name}`).toBeLessThanOrEqual(1e-5);
}

const CASES: [string, Record<string, unknown>][] = [
  ['task_arithmetic', {}],
  ['task_arithmetic', { lambda: [{ filter: 'mlp', value: [0.1, 0.9] }, { value: 0.25 }] }],
  ['task_arithmetic', { lambda: { per_task: [0.2, 0.5, 1.0] } }],
  ['simple_average', {}],
  ['ties', {}],
  ['ties', { k: 0.5, merge: 'mean' }],
  ['ties', { k: 0.3, merge: 'max', lambda: 0.8 }],
  ['ties', { scope: 'tensor', merge: 'mean', k: 0.35 }],
  ['ties', { k: 1 }],
  ['dare', {}],
  ['dare', { then: 'ties', p: 0.3, seed: 7 }],
  ['dare', { linear_only: true, rescale: false, p: 0.6 }],
  ['breadcrumbs', {}],
  ['breadcrumbs', { density: 0.4, gamma: 0.1 }],
  ['breadcrumbs', { scope: 'tensor', density: 0.3, gamma: 0.05 }],
  ['consensus', {}],
  ['consensus', { then: 'ties', k: 1, mask_lambda: 0.4 }],
  ['lines', {}],
  ['lines', { then: 'ties', beta: 0.5 }],
  ['lines', { then: 'ties', alpha: 0.4, beta: [{ filter: 'mlp', value: 0.9 }, { value: 0.3 }], merge: 'mean' }],
  ['lines', { then: 'consensus', alpha: 0.2 }],
  ['magmax', {}],
  ['model_stock', {}],
  ['model_stock', { angle: 'angle' }],
];

describe('GPU merge equals the CPU reference', () => {
  const g = gridModels(101, 3, SHAPES);
  for (const [method, params] of CASES) {
    it(`${method} ${JSON.stringify(params)}`, async () => {
      const want = mergeReference(method, resolveParams(getMethod(method), params), g.base, g.models);
      const [streamed] = await gpuMerge(g, method, params, 0);
      expectClose(streamed!, want, 'streamed');
      const [cached] = await gpuMerge(g, method, params, 1 << 28);
      expectClose(cached!, want, 'cached');
    });
  }

  it('slerp on two far-apart models (slerp) and on two close ones (lerp fallback)', async () => {
    for (const scale of [2, 0.01]) {
      const two = gridModels(202, 2, SHAPES, scale);
      for (const t of [0.3, [0.1, 0.9]]) {
        const want = mergeReference('slerp', resolveParams(getMethod('slerp'), { t }), two.base, two.models);
        const [got] = await gpuMerge(two, 'slerp', { t }, 0);
        expectClose(got!, want, `scale ${scale} t ${JSON.stringify(t)}`);
      }
    }
  });

  it('the fused output kernels (no interference metrics) write the bytes of the task-vector stack path', async () => {
    const ctx = await testContext();
    const bytesOf = async (method: string, params: Record<string, unknown>, metrics: boolean) => {
      const { base, models } = await openModels(g);
      const sink = memorySink('out');
      await runMerge(ctx, { base, models, metrics, config: resolveConfig({ method, params, options: { chunkElements: 1024 } }), output: async () => sink });
      return sink.bytes();
    };
    for (const [method, params] of [
      ['task_arithmetic', { lambda: { per_task: [0.2, -0.5, 1.0] } }],
      ['magmax', {}],
      ['magmax', { lambda: { per_task: [0.2, 0, 1.5] } }],
      ['magmax', { lambda: [{ filter: 'mlp', value: 0.9 }, { value: 0.25 }] }],
      ['dare', {}],
      ['dare', { linear_only: true, rescale: false, p: 0.6, seed: 9 }],
      ['dare', { lambda: { per_task: [0.2, 0.7, 1.1] }, p: 0.2 }],
      ['model_stock', {}],
      ['model_stock', { angle: 'angle' }],
      ['consensus', {}],
      ['consensus', { k: 1, mask_lambda: { per_task: [0.2, 0.8, 1.5] }, lambda: { per_task: [0.5, -0.3, 1.2] } }],
      ['consensus', { k: 3, mask_lambda: [{ filter: 'mlp', value: 0.1 }, { value: 0.7 }] }],
      ['consensus', { k: 0 }],
      // LiNeS then TIES with alpha given (no alpha pass): global TIES's fused kernel with LiNeS's per-task scales.
      ['lines', { then: 'ties', alpha: 0.4, beta: { per_task: [0.2, -0.5, 1.0] } }],
      ['lines', { then: 'ties', alpha: 0.25, merge: 'max', k: 0.5 }],
    ] as const) {
      const [fused, stacked] = [await bytesOf(method, params, false), await bytesOf(method, params, true)];
      expect(Buffer.from(fused).equals(Buffer.from(stacked)), `${method} ${JSON.stringify(params)}`).toBe(true);
    }
  });

  it("SLERP's fused output (linear_merge with theta0's coefficient) writes the bytes of its stack path", async () => {
    const ctx = await testContext();
    for (const scale of [2, 0.01]) {
      const two = gridModels(202, 2, SHAPES, scale);
      for (const t of [0.3, [0.1, 0.9], 1]) {
        const bytesOf = async (metrics: boolean) => {
          const { base, models } = await openModels(two);
          const sink = memorySink('out');
          const created = vi.spyOn(ctx, 'createBuffer');
          try {
            await runMerge(ctx, { base, models, metrics, config: resolveConfig({ method: 'slerp', params: { t }, options: { chunkElements: 1024 } }), output: async () => sink });
            // Without metrics the output pass is the fused one (its readbacks), with them the stack's.
            expect(created.mock.calls.some(([label]) => label === 'fused output readback staging'), `fused with metrics ${metrics}`).toBe(!metrics);
          } finally {
            created.mockRestore();
          }
          return sink.bytes();
        };
        const [fused, stacked] = [await bytesOf(false), await bytesOf(true)];
        expect(Buffer.from(fused).equals(Buffer.from(stacked)), `scale ${scale} t ${JSON.stringify(t)}`).toBe(true);
      }
    }
  });

  it('merges 20 models (stacks are one binding whatever the number of models)', async () => {
    const many = gridModels(404, 20, { 'encoder.layers.0.mlp.fc1.weight': [16, 40], 'encoder.layers.1.mlp.fc1.bias': [16] });
    for (const [method, params] of [['ties', { merge: 'mean' }], ['consensus', { k: 3 }], ['dare', { then: 'ties' }]] as const) {
      const want = mergeReference(method, resolveParams(getMethod(method), params), many.base, many.models);
      const [got] = await gpuMerge(many, method, params, 0);
      expectClose(got!, want, method);
    }
  });

  it('tall_masks writes one model per task, each equal to the reference', async () => {
    const four = gridModels(303, 4, SHAPES);
    const want = tallMaskModels(resolveParams(getMethod('tall_masks'), { mask_lambda: 0.4 }), four.base, four.models);
    const got = await gpuMerge(four, 'tall_masks', { mask_lambda: 0.4 }, 0);
    expect(got).toHaveLength(4);
    got.forEach((m, t) => expectClose(m, want[t]!, `task ${t}`));
  });

  it('DARE is bit-identical across runs and chunkings for the same seed, and differs for another seed', async () => {
    const runBytes = async (seed: number, chunkElements: number) => {
      const ctx = await testContext();
      const { base, models } = await openModels(g);
      const sink = memorySink('dare');
      await runMerge(ctx, { base, models, config: resolveConfig({ method: 'dare', params: { seed }, options: { chunkElements } }), output: async () => sink });
      // Tensor data only: the metadata records the config, which differs between seeds.
      return Buffer.concat([...readFloatTensors(sink.bytes()).values()].map((t) => Buffer.from(new Float32Array(t.values).buffer)));
    };
    const a = await runBytes(5, 1024);
    expect((await runBytes(5, 1024)).equals(a)).toBe(true);
    expect((await runBytes(5, 4096)).equals(a)).toBe(true);
    expect((await runBytes(6, 1024)).equals(a)).toBe(false);
  });
});
