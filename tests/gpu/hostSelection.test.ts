/**
 * The selections a CPU-emulated adapter makes on the host against the GPU's (the context marked as hardware), in whole
 * merges: the same bytes, for F32, BF16 and F16 models (the host decodes them as decode_stack does), ties everywhere
 * (values on a coarse grid, a model equal to the base in one tensor, so whole rows of zeros), several chunks per tensor.
 * - Breadcrumbs' row band (merge/plans/rowBandHost.ts, the chunk's task vectors formed by hostTaskVectorStack and
 *   written over the stack; on a GPU row_band_mask): rows of 1 to 96 entries, bands that keep everything or nothing,
 *   with the interference metrics on and off; and both equal to the float64 reference.
 * - The exact magnitude select (merge/plans/hostSelect.ts; on a GPU MagnitudeSelect): per-tensor TIES and
 *   Breadcrumbs (scope tensor), DARE then TIES (global and per tensor: the drop's host twin, dare_drop's on the GPU),
 *   and the interference report's top-k curve; and the host's quickselect of small scopes against its radix passes.
 */
import { describe, expect, it } from 'vitest';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { HostMagnitudeSelect } from '../../src/engine/merge/plans/hostSelect';
import { runMerge } from '../../src/engine/merge/runMerge';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { numelOf } from '../../src/engine/types';
import { maxRelativeError } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';
import { makeModelBytes, seededRandom } from '../helpers/safetensorsFixtures';

const SHAPES: Record<string, number[]> = {
  'vision_model.embeddings.class_embedding': [24],
  'vision_model.embeddings.patch_embedding.weight': [8, 3, 4, 4],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [40, 24],
  'vision_model.encoder.layers.0.layer_norm1.weight': [1],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [48, 96],
  'vision_model.logit_bias': [],
};

/** A base and 3 models on a grid of 1/8 (deltas of a few steps: ties in every row); model 1 equals the base in fc1. */
function tiedModels(): { base: RefModel; models: RefModel[] } {
  const rng = seededRandom(77);
  const base: RefModel = new Map();
  const models: RefModel[] = [new Map(), new Map(), new Map()];
  for (const [name, shape] of Object.entries(SHAPES)) {
    const b = Float64Array.from({ length: numelOf(shape) }, () => Math.round((rng() - 0.5) * 32) / 8);
    base.set(name, { shape, data: b });
    models.forEach((m, t) => {
      const same = t === 1 && name.includes('fc1');
      m.set(name, { shape, data: b.map((x) => (same ? x : x + Math.round((rng() - 0.5) * 10) / 8)) });
    });
  }
  return { base, models };
}

type Dtype = 'F32' | 'BF16' | 'F16';
const TOLERANCE: Record<Dtype, number> = { F32: 1e-5, BF16: 2 ** -8, F16: 2 ** -11 };
const fileOf = (m: RefModel, dtype: Dtype) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFloats(t.data, dtype) })));

/** A merge of the models' files (Breadcrumbs unless `method`); `hardware` marks the context as a GPU (the GPU's kernels select). */
async function mergeRun(base: Uint8Array, models: Uint8Array[], params: Record<string, unknown>, o: { hardware: boolean; metrics: boolean; method?: string }) {
  const ctx = await testContext();
  const info = ctx.info as { isSoftware: boolean };
  const software = info.isSoftware;
  if (o.hardware) info.isSoftware = false;
  try {
    const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
    const sink = memorySink('out');
    const report = await runMerge(ctx, {
      base: await open('base', base),
      models: await Promise.all(models.map((b, i) => open(`task${i}`, b))),
      config: resolveConfig({ method: o.method ?? 'breadcrumbs', params, options: { chunkElements: 1024 } }),
      metrics: o.metrics,
      output: async () => sink,
    });
    expect(ctx.allocatedBytes).toBe(0);
    return { bytes: sink.bytes(), report };
  } finally {
    info.isSoftware = software;
  }
}

const merge = async (...args: Parameters<typeof mergeRun>) => (await mergeRun(...args)).bytes;

describe('Breadcrumbs: the host row band writes the bytes of the GPU kernel', () => {
  const { base, models } = tiedModels();
  const PARAMS: Record<string, unknown>[] = [{}, { density: 0.4, gamma: 0.1 }, { density: 1, gamma: 0 }, { density: 0.05, gamma: 0.5, lambda: { per_task: [0.3, -0.6, 1.2] } }];
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    it(`${dtype} models`, async () => {
      const baseBytes = fileOf(base, dtype);
      const modelBytes = models.map((m) => fileOf(m, dtype));
      for (const params of PARAMS) {
        const label = `${dtype} ${JSON.stringify(params)}`;
        const host = await merge(baseBytes, modelBytes, params, { hardware: false, metrics: false });
        const kernel = await merge(baseBytes, modelBytes, params, { hardware: true, metrics: false });
        expect(Buffer.from(host).equals(Buffer.from(kernel)), label).toBe(true);
        const withMetrics = await merge(baseBytes, modelBytes, params, { hardware: false, metrics: true });
        expect(Buffer.from(withMetrics).equals(Buffer.from(host)), `${label} with metrics`).toBe(true);
        // The grid's values are exact in every dtype here, so the float64 reference sees the same task vectors; the
        // merged model is written in the base's dtype (half an ulp: 2^-8 of the largest entry in BF16, 2^-11 in F16).
        const want = mergeReference('breadcrumbs', resolveParams(getMethod('breadcrumbs'), params), base, models);
        const got = readFloatTensors(host);
        for (const [name, t] of want) expect(maxRelativeError(got.get(name)!.values, t.data), `${label} ${name}`).toBeLessThanOrEqual(TOLERANCE[dtype]);
      }
    });
  }
});

describe('the host magnitude select gives the GPU select\'s results', () => {
  const { base, models } = tiedModels();
  for (const dtype of ['F32', 'BF16'] as const) {
    it(`${dtype} models: per-tensor TIES and Breadcrumbs, and DARE then TIES (the drop's host twin before the select)`, async () => {
      const baseBytes = fileOf(base, dtype);
      const modelBytes = models.map((m) => fileOf(m, dtype));
      for (const [method, params] of [
        ['ties', { scope: 'tensor', k: 0.3 }],
        ['ties', { scope: 'tensor', k: 0.05, merge: 'max' }],
        ['breadcrumbs', { scope: 'tensor', density: 0.3, gamma: 0.05 }],
        ['dare', { then: 'ties', k: 0.3, p: 0.3, seed: 3 }],
        ['dare', { then: 'ties', scope: 'tensor', k: 0.2, p: 0.5, seed: 8 }],
        ['dare', { then: 'ties', merge: 'max', rescale: false, linear_only: true, p: 0.2 }],
      ] as const) {
        const label = `${dtype} ${method} ${JSON.stringify(params)}`;
        const host = await merge(baseBytes, modelBytes, params, { hardware: false, metrics: false, method });
        const gpu = await merge(baseBytes, modelBytes, params, { hardware: true, metrics: false, method });
        expect(Buffer.from(host).equals(Buffer.from(gpu)), label).toBe(true);
        const want = mergeReference(method, resolveParams(getMethod(method), params), base, models);
        const got = readFloatTensors(host);
        for (const [name, t] of want) expect(maxRelativeError(got.get(name)!.values, t.data), `${label} ${name}`).toBeLessThanOrEqual(TOLERANCE[dtype]);
      }
    });
  }

  it("the interference report's top-k curve", async () => {
    const baseBytes = fileOf(base, 'F32');
    const modelBytes = models.map((m) => fileOf(m, 'F32'));
    const host = await mergeRun(baseBytes, modelBytes, {}, { hardware: false, metrics: true, method: 'task_arithmetic' });
    const gpu = await mergeRun(baseBytes, modelBytes, {}, { hardware: true, metrics: true, method: 'task_arithmetic' });
    const topk = (r: typeof host.report) => r.interference?.topk;
    expect(topk(host.report)?.retained.length).toBe(3);
    expect(topk(host.report)).toEqual(topk(gpu.report));
  });
});

describe('the host quickselect of small scopes (HostMagnitudeSelect.quickSelect)', () => {
  /** The radix passes' result over the same chunks ([segments, count] each). */
  const radix = async (chunks: Float32Array[], counts: number[], ranks: number[][]) => {
    const sel = new HostMagnitudeSelect('radix', ranks.length, ranks);
    while (!sel.done) {
      sel.beginPass();
      chunks.forEach((c, i) => sel.feed(c, ranks.length, counts[i]!, ranks.map((_, s) => s)));
      await sel.endPass();
    }
    return sel.results();
  };

  it('gives the radix passes\' keys and counts: ties, zeros of both signs, NaN, infinities, subnormals, several chunks', async () => {
    const rng = seededRandom(5);
    const special = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3e38];
    for (const [segments, counts] of [[1, [1]], [3, [5, 17]], [2, [64, 64, 3]], [4, [1000, 24]], [8, [4096]]] as const) {
      const chunks = counts.map((n) =>
        Float32Array.from({ length: segments * n }, () => {
          const u = rng();
          // A coarse grid (many ties), special values, or any float.
          return u < 0.4 ? Math.round((rng() - 0.5) * 16) / 4 : u < 0.5 ? special[Math.floor(rng() * special.length)]! : (rng() - 0.5) * 10 ** (rng() * 10 - 5);
        }),
      );
      const total = counts.reduce((a, b) => a + b, 0);
      const ranks = Array.from({ length: segments }, (_, s) => (s % 3 === 2 ? [] : [0, total - 1, Math.floor(rng() * total), Math.floor(rng() * total), Math.floor(total / 2)]));
      const got = HostMagnitudeSelect.quickSelect('quick', chunks, [...counts], ranks);
      expect(got, `${segments} segments, ${counts.join(' + ')} elements`).toEqual(await radix(chunks, [...counts], ranks));
    }
  });

  it('refuses a rank beyond the scope as the passes do', () => {
    const chunk = new Float32Array([1, 2, 3]);
    expect(() => HostMagnitudeSelect.quickSelect('quick', [chunk], [3], [[3]])).toThrow(/quick segment 0.*rank 3 requested but the segment has only 3 elements/);
  });
});
