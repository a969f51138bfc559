/**
 * The GPU vision transformer (src/engine/eval/vit.ts) on Dawn: parity with the PyTorch golden file
 * (tests/fixtures/vit/golden.safetensors, see generate.py) and with the CPU twin (src/engine/reference/vit.ts), both
 * to 1e-4 absolute on features and logits, for batches of 5 and 1 (the activation buffers are reused), plus a second
 * random configuration with 3 channels and sizes that are not multiples of 4 (scalar matmul loads, head size 6),
 * evaluateBatch, argument checks and freeing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, GpuError } from '../../src/engine/errors';
import type { GpuContext } from '../../src/engine/gpu/device';
import { evaluateBatch } from '../../src/engine/eval/evaluate';
import { featureDim, visionWeightShapes, type VisionConfig } from '../../src/engine/eval/visionConfig';
import { VisionTransformer, type Head } from '../../src/engine/eval/vit';
import { vitFeaturesRef, vitLogitsRef, type RefHead } from '../../src/engine/reference/vit';
import { numelOf } from '../../src/engine/types';
import { loadGolden, type GoldenCase } from '../fixtures/vit/golden';
import { readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

const TOL = 1e-4;

let ctx: GpuContext;
let cases: GoldenCase[];
beforeAll(async () => {
  ctx = await testContext();
  ({ cases } = await loadGolden());
});
afterAll(releaseTestContext);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(worst) ? Infinity : worst;
}

/** A model's weights, images and head uploaded to the GPU, with everything needed to free them. */
interface Uploaded {
  weights: Map<string, GPUBuffer>;
  images: GPUBuffer;
  head: Head;
  free(): void;
}

function upload(weights: Map<string, Float64Array>, images: Float64Array, head: RefHead): Uploaded {
  const buffers: GPUBuffer[] = [];
  const up = (label: string, values: Float64Array) => {
    const buf = uploadF32(ctx, label, Float32Array.from(values));
    buffers.push(buf);
    return buf;
  };
  const gpuWeights = new Map([...weights].map(([name, values]) => [name, up(name, values)] as const));
  const gpuHead: Head =
    head.kind === 'zero-shot'
      ? { ...head, weight: up('head', head.weight) }
      : { ...head, weight: up('head', head.weight), bias: up('head bias', head.bias) };
  return {
    weights: gpuWeights,
    images: up('images', images),
    head: gpuHead,
    free: () => buffers.forEach((b) => ctx.destroyBuffer(b)),
  };
}

function lookup(weights: Map<string, GPUBuffer>): (name: string) => GPUBuffer {
  return (name) => {
    const buf = weights.get(name);
    if (!buf) throw new Error(`test: no weight ${name}`);
    return buf;
  };
}

/** GPU features and logits of the first `batch` images. */
async function runGpu(model: VisionTransformer, up: Uploaded, batch: number): Promise<{ features: Float32Array; logits: Float32Array }> {
  const featBuf = model.features(up.images, batch);
  const features = await readF32(ctx, featBuf, batch * model.featureDim);
  const logits = await readF32(ctx, model.logits(featBuf, batch, up.head), batch * up.head.classes);
  return { features, logits };
}

describe('golden parity (PyTorch, float64)', () => {
  it.each(['zeroshot', 'linear'])('%s: GPU and CPU twin within 1e-4 for batches of 5 and 1', async (name) => {
    const c = cases.find((x) => x.name === name)!;
    const up = upload(c.weights, c.images, c.head);
    const model = new VisionTransformer(ctx, c.config, lookup(up.weights), c.batch);
    try {
      const gpu = await runGpu(model, up, c.batch);
      expect(maxAbsDiff(gpu.features, c.features)).toBeLessThan(TOL);
      expect(maxAbsDiff(gpu.logits, c.logits)).toBeLessThan(TOL);

      const twinFeatures = vitFeaturesRef(c.config, (n) => c.weights.get(n)!, c.images, c.batch);
      expect(maxAbsDiff(twinFeatures, c.features)).toBeLessThan(TOL);
      expect(maxAbsDiff(vitLogitsRef(twinFeatures, c.batch, c.head), c.logits)).toBeLessThan(TOL);

      const one = await runGpu(model, up, 1);
      const f = model.featureDim;
      const k = c.head.classes;
      expect(maxAbsDiff(one.features, c.features.subarray(0, f))).toBeLessThan(TOL);
      expect(maxAbsDiff(one.logits, c.logits.subarray(0, k))).toBeLessThan(TOL);
    } finally {
      model.destroy();
      up.free();
    }
  });

  it('evaluateBatch returns the argmax and cross-entropy of the golden logits', async () => {
    const c = cases.find((x) => x.name === 'zeroshot')!;
    const up = upload(c.weights, c.images, c.head);
    const model = new VisionTransformer(ctx, c.config, lookup(up.weights), c.batch);
    try {
      const k = c.head.classes;
      const labels = Int32Array.from({ length: c.batch }, (_, i) => (i * 2) % k);
      const result = await evaluateBatch(model, up.images, c.batch, up.head, labels);
      for (let b = 0; b < c.batch; b++) {
        const row = [...c.logits.subarray(b * k, (b + 1) * k)];
        const max = Math.max(...row);
        expect(result.predictions[b]).toBe(row.indexOf(max));
        const ce = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[labels[b]!]!;
        expect(Math.abs(result.loss[b]! - ce)).toBeLessThan(TOL);
      }
      await expect(evaluateBatch(model, up.images, c.batch, up.head, [0, 1, 2, 3, k])).rejects.toThrow(/labels\[4\]/);
    } finally {
      model.destroy();
      up.free();
    }
  });
});

/** Random weights for `config` (f32 values in float64 arrays), scaled so activations stay of order 1. */
function randomWeights(config: VisionConfig, seed: number): Map<string, Float64Array> {
  const rng = seededRandom(seed);
  const uniform = (std: number, mean = 0) => Math.fround(mean + (2 * rng() - 1) * Math.sqrt(3) * std);
  const weights = new Map<string, Float64Array>();
  for (const [name, shape] of visionWeightShapes(config)) {
    const fanIn = shape.length >= 2 ? numelOf(shape.slice(1)) : 0;
    const isNormScale = /norm\d?\.weight$|layrnorm\.weight$/.test(name);
    const [std, mean] = fanIn > 0 ? [1 / Math.sqrt(fanIn), 0] : name.includes('embedding') ? [0.5, 0] : isNormScale ? [0.1, 1] : [0.1, 0];
    weights.set(name, Float64Array.from({ length: numelOf(shape) }, () => uniform(std, mean)));
  }
  return weights;
}

describe('a second random configuration (3 channels, sizes not multiples of 4)', () => {
  const config: VisionConfig = {
    hiddenSize: 30,
    numLayers: 2,
    numHeads: 5,
    intermediateSize: 44,
    patchSize: 5,
    imageSize: 15,
    numChannels: 3,
    hiddenAct: 'gelu',
    layerNormEps: 1e-5,
    projectionDim: 11,
  };
  const batch = 3;

  it('GPU matches the CPU twin within 1e-4 for both head kinds', async () => {
    const rng = seededRandom(7);
    const weights = randomWeights(config, 3);
    const images = Float64Array.from({ length: batch * 3 * 15 * 15 }, () => Math.fround(2 * rng() - 1));
    const f = featureDim(config);
    const k = 7;
    const headWeight = Float64Array.from({ length: k * f }, () => Math.fround(rng() - 0.5));
    const heads: RefHead[] = [
      { kind: 'zero-shot', weight: headWeight, classes: k, dim: f, logitScale: 30 },
      { kind: 'linear', weight: headWeight, bias: Float64Array.from({ length: k }, () => Math.fround(rng() - 0.5)), classes: k, dim: f },
    ];
    const twinFeatures = vitFeaturesRef(config, (n) => weights.get(n)!, images, batch);
    for (const head of heads) {
      const up = upload(weights, images, head);
      // maxBatch above the batch: buffers are larger than the work.
      const model = new VisionTransformer(ctx, config, lookup(up.weights), batch + 1);
      try {
        const gpu = await runGpu(model, up, batch);
        expect(maxAbsDiff(gpu.features, twinFeatures)).toBeLessThan(TOL);
        expect(maxAbsDiff(gpu.logits, vitLogitsRef(twinFeatures, batch, head))).toBeLessThan(TOL);
      } finally {
        model.destroy();
        up.free();
      }
    }
  });

  it('checks its arguments and frees what it allocated', async () => {
    const weights = randomWeights(config, 4);
    const up = upload(weights, new Float64Array(2 * 3 * 15 * 15), { kind: 'linear', weight: new Float64Array(2 * 11), bias: new Float64Array(2), classes: 2, dim: 11 });
    const before = ctx.allocatedBytes;
    const model = new VisionTransformer(ctx, config, lookup(up.weights), 2);
    try {
      expect(() => model.features(up.images, 3)).toThrow(GpuError);
      expect(() => model.features(up.images, 0)).toThrow(/batch must be an integer in 1\.\.2/);
      const feats = model.features(up.images, 2);
      expect(() => model.logits(feats, 2, { ...up.head, dim: 10 })).toThrow(ConfigError);
      model.logits(feats, 2, up.head);
      expect(ctx.allocatedBytes).toBeGreaterThan(before);
    } finally {
      model.destroy();
    }
    expect(ctx.allocatedBytes).toBe(before);
    expect(() => model.features(up.images, 1)).toThrow(/after destroy/);

    // The uploaded conv weight is [30, 3, 5, 5]; a 30-channel config needs ten times that.
    expect(() => new VisionTransformer(ctx, { ...config, numChannels: 30 }, lookup(up.weights), 1)).toThrow(
      /weight "embeddings\.patch_embedding\.weight" \[30, 30, 5, 5\] needs 90000 bytes/,
    );
    expect(() => new VisionTransformer(ctx, config, lookup(up.weights), 1e7)).toThrow(/maxStorageBufferBindingSize .*; use a smaller batch/);
    expect(() => new VisionTransformer(ctx, { ...config, hiddenSize: 300, numHeads: 2 }, lookup(up.weights), 1)).toThrow(/head size .* 150 is above/);
    expect(() => new VisionTransformer(ctx, config, lookup(up.weights), 0)).toThrow(/maxBatch/);
    expect(ctx.allocatedBytes).toBe(before);
    up.free();
  });
});
