/**
 * Model Breadcrumbs' row band on a CPU-emulated adapter (the host selects: merge/plans/rowBandHost.ts, the chunk's
 * task vectors formed by hostTaskVectorStack and written over the stack) against the GPU's kernel (row_band_mask,
 * the context marked as hardware): the same bytes, for F32, BF16 and F16 models (the host decodes them as
 * decode_stack does), rows of 1 to 96 entries over several chunks, ties everywhere (values on a coarse grid, a model
 * equal to the base in one tensor, so whole rows of zeros), bands that keep everything or nothing, with the
 * interference metrics on and off; and both equal to the float64 reference.
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

/** Breadcrumbs over the models' files; `hardware` marks the context as a GPU (the row_band_mask kernel selects). */
async function merge(base: Uint8Array, models: Uint8Array[], params: Record<string, unknown>, o: { hardware: boolean; metrics: boolean }): Promise<Uint8Array> {
  const ctx = await testContext();
  const info = ctx.info as { isSoftware: boolean };
  const software = info.isSoftware;
  if (o.hardware) info.isSoftware = false;
  try {
    const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
    const sink = memorySink('out');
    await runMerge(ctx, {
      base: await open('base', base),
      models: await Promise.all(models.map((b, i) => open(`task${i}`, b))),
      config: resolveConfig({ method: 'breadcrumbs', params, options: { chunkElements: 1024 } }),
      metrics: o.metrics,
      output: async () => sink,
    });
    expect(ctx.allocatedBytes).toBe(0);
    return sink.bytes();
  } finally {
    info.isSoftware = software;
  }
}

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
