/**
 * Evaluation throughput (issue 5's benchmark): images/s of the GPU vision transformer (src/engine/eval/vit.ts) and of
 * its float64 CPU twin (src/engine/reference/vit.ts) on the same images in the same run, with the FLOPs of one image
 * and the GPU path's fraction of the measured matmul peak.
 *
 * Demo suite: the base model of public/demo (loaded with the engine's suite loader), scored by SuiteEvaluator on a
 * stratified sample of every task; a timed run is one evaluate() call (forward passes, heads, logit readbacks and
 * host-side scoring), after one untimed call that uploads the images and compiles the pipelines.
 * Random ViT: bench/models.ts weights of a ViT-B/32-shaped CLIPVisionModel (224 x 224 x 3 images, 32 x 32 patches,
 * no projection) and a 10-class zero-shot head; a timed run is evaluateBatch over every batch of the images.
 * The twin runs once on (a prefix of) the same normalised images; its predictions are compared with the GPU's.
 */
import type { GpuContext } from '../src/engine/gpu/device';
import { uploadRaw } from '../src/engine/gpu/kernels';
import { evaluateBatch } from '../src/engine/eval/evaluate';
import type { Suite } from '../src/engine/eval/suite';
import { normalizedImages, SuiteEvaluator } from '../src/engine/eval/suiteEvaluator';
import { featureDim, patchCount, tokenCount, type VisionConfig } from '../src/engine/eval/visionConfig';
import { VisionTransformer, type Head } from '../src/engine/eval/vit';
import { GpuWeights } from '../src/engine/eval/weights';
import type { Model } from '../src/engine/io/model';
import { refVisionWeights, vitPredictRef, type RefHead } from '../src/engine/reference/vit';
import { toRefModel } from './baselines';
import { generateModels } from './models';
import type { EvalFigure } from './results';
import { timeIt, type Repeats } from './stats';
import { parameterCount, sizeLabel, vitTensors, type VitSize } from './vitShapes';

/**
 * Matrix-product FLOPs (2 per multiply-add) of one image: patch embedding 2 N C P^2 D; per layer q, k, v and out
 * projections 8 T D^2, attention scores and weighted values 4 T^2 D, MLP 4 T D I; the projection 2 D E; the head 2 F K.
 * Layer norms, softmax and activations (O(T D) each) are left out.
 */
export function flopsPerImage(config: VisionConfig, classes: number): number {
  const { hiddenSize: d, intermediateSize: inter, patchSize: p, numChannels: c } = config;
  const t = tokenCount(config);
  const layer = 8 * t * d * d + 4 * t * t * d + 4 * t * d * inter;
  const projection = config.projectionDim === null ? 0 : 2 * d * config.projectionDim;
  return 2 * patchCount(config) * c * p * p * d + config.numLayers * layer + projection + 2 * featureDim(config) * classes;
}

/** The CLIPVisionModel config of a bench/vitShapes size (heads of 64, as in CLIP; 224 x 224 RGB images). */
export function vitConfigOf(size: VitSize): VisionConfig {
  const grid = Math.sqrt(size.positions - 1);
  if (!Number.isInteger(grid) || size.width % 64 !== 0) throw new RangeError(`vitConfigOf: ${sizeLabel(size)} has no square patch grid or no 64-wide heads`);
  return {
    hiddenSize: size.width,
    numLayers: size.layers,
    numHeads: size.width / 64,
    intermediateSize: size.mlp,
    patchSize: size.patch,
    imageSize: grid * size.patch,
    numChannels: 3,
    hiddenAct: 'quick_gelu',
    layerNormEps: 1e-5,
    projectionDim: null,
  };
}

function modelInfo(config: VisionConfig, params: number): EvalFigure['model'] {
  return { hiddenSize: config.hiddenSize, layers: config.numLayers, imageSize: config.imageSize, patchSize: config.patchSize, channels: config.numChannels, params };
}

function gpuFigure(timing: EvalFigure['gpu']['timing'], images: number, flops: number, matmulGflops: number | null): EvalFigure['gpu'] {
  const imagesPerSecond = images / (timing.ms / 1000);
  const gflops = (imagesPerSecond * flops) / 1e9;
  return { timing, imagesPerSecond, gflops, fractionOfMatmul: matmulGflops ? gflops / matmulGflops : null };
}

function modelParams(model: Model): number {
  let n = 0;
  for (const t of model.tensors.values()) n += t.info.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Options of both workloads: images per task (demo) or in all (random ViT), the GPU batch, and the twin's share. */
export interface EvalOptions {
  batch: number;
  repeats: Repeats;
  /** Images the twin scores (a prefix of the GPU's, per task for the demo); 0 skips the twin. */
  twinImages: number;
  matmulGflops: number | null;
}

/** The demo suite's base model on `samples` stratified images of every task. */
export async function demoThroughput(ctx: GpuContext, suite: Suite, samples: number, o: EvalOptions): Promise<EvalFigure> {
  const evaluator = new SuiteEvaluator(ctx, suite, o.batch);
  const weights = await GpuWeights.fromModel(ctx, suite.base, suite.config);
  try {
    const run = () => evaluator.evaluate(weights.get, { samples, seed: 0, predictions: true });
    let scores = await run();
    const timing = await timeIt(o.repeats, async () => void (scores = await run()));
    const images = scores.reduce((n, s) => n + s.samples, 0);
    const classes = Math.max(...suite.tasks.map((t) => t.head.classes));
    const flops = suite.tasks.reduce((sum, t, i) => sum + scores[i]!.samples * flopsPerImage(suite.config, t.head.classes), 0) / images;
    const figure: EvalFigure = {
      workload: `demo suite base model (${suite.manifest.name}), ${samples} images per task x ${suite.tasks.length} tasks`,
      model: modelInfo(suite.config, modelParams(suite.base)),
      images,
      batch: o.batch,
      flopsPerImage: flops,
      gpu: gpuFigure(timing, images, flops, o.matmulGflops),
      twin: null,
      agreement: null,
    };
    if (o.twinImages > 0 && classes > 0) {
      const w = refVisionWeights(suite.config, await toRefModel(suite.base), suite.base.name);
      // Inputs are prepared before the clock starts: the twin is timed on the forward passes and heads only.
      const jobs = suite.tasks.map((t, i) => {
        const idx = scores[i]!.images!.subarray(0, o.twinImages);
        const head: RefHead = { kind: 'zero-shot', weight: Float64Array.from(t.head.weight), classes: t.head.classes, dim: t.head.dim, logitScale: t.head.logitScale };
        return { images: Float64Array.from(normalizedImages(suite, t, idx)), count: idx.length, head, gpu: scores[i]!.predictions!.subarray(0, idx.length) };
      });
      const agreement = { compared: 0, same: 0 };
      const twinTiming = await timeIt({ warmups: 0, reps: 1 }, async () => {
        for (const job of jobs) {
          const { predictions } = vitPredictRef(suite.config, w, job.images, job.count, job.head);
          agreement.compared += job.count;
          predictions.forEach((p, j) => (agreement.same += p === job.gpu[j] ? 1 : 0));
        }
      });
      figure.twin = { timing: twinTiming, images: agreement.compared, imagesPerSecond: agreement.compared / (twinTiming.ms / 1000) };
      figure.agreement = agreement;
    }
    return figure;
  } finally {
    weights.destroy();
    evaluator.destroy();
  }
}

/** Deterministic values in [-scale, scale) (a linear congruential stream; only their size matters here). */
function noise(count: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  let x = seed >>> 0;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

const CLASSES = 10;

/** A random ViT-shaped model of `size` on `images` random images in batches of o.batch. */
export async function randomVitThroughput(ctx: GpuContext, size: VitSize, images: number, o: EvalOptions): Promise<EvalFigure> {
  const config = vitConfigOf(size);
  const { base } = await generateModels({ size, dtype: 'F32', tasks: 0 });
  const per = config.numChannels * config.imageSize ** 2;
  const pixels = noise(images * per, 7, 1);
  const headWeight = noise(CLASSES * featureDim(config), 11, 0.02);
  const flops = flopsPerImage(config, CLASSES);
  const weights = await GpuWeights.fromModel(ctx, base, config);
  const owned: GPUBuffer[] = [];
  const model = new VisionTransformer(ctx, config, weights.get, o.batch);
  try {
    const upload = (label: string, values: Float32Array) => {
      const buf = uploadRaw(ctx, label, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      owned.push(buf);
      return buf;
    };
    const head: Head = { kind: 'zero-shot', weight: upload('bench head', headWeight), classes: CLASSES, dim: featureDim(config), logitScale: 100 };
    const batches: { buf: GPUBuffer; count: number }[] = [];
    for (let start = 0; start < images; start += o.batch) {
      const count = Math.min(o.batch, images - start);
      batches.push({ buf: upload(`bench images ${start}`, pixels.subarray(start * per, (start + count) * per)), count });
    }
    const labels = new Uint8Array(o.batch);
    const predictions = new Int32Array(images);
    // Compiles the pipelines on one image first, so that a profile without warm-up runs still times no compilation.
    await evaluateBatch(model, batches[0]!.buf, 1, head, labels);
    const timing = await timeIt(o.repeats, async () => {
      let at = 0;
      for (const b of batches) {
        predictions.set((await evaluateBatch(model, b.buf, b.count, head, labels)).predictions, at);
        at += b.count;
      }
    });
    const figure: EvalFigure = {
      workload: `random ${sizeLabel(size)} (CLIPVisionModel shapes, ${CLASSES}-class zero-shot head), ${images} image(s)`,
      model: modelInfo(config, parameterCount(vitTensors(size))),
      images,
      batch: o.batch,
      flopsPerImage: flops,
      gpu: gpuFigure(timing, images, flops, o.matmulGflops),
      twin: null,
      agreement: null,
    };
    const twinCount = Math.min(o.twinImages, images);
    if (twinCount > 0) {
      const w = refVisionWeights(config, await toRefModel(base), base.name);
      const input = Float64Array.from(pixels.subarray(0, twinCount * per));
      const refHead: RefHead = { kind: 'zero-shot', weight: Float64Array.from(headWeight), classes: CLASSES, dim: featureDim(config), logitScale: 100 };
      let twinPredictions: ArrayLike<number> = [];
      const twinTiming = await timeIt({ warmups: 0, reps: 1 }, async () => void ({ predictions: twinPredictions } = vitPredictRef(config, w, input, twinCount, refHead)));
      figure.twin = { timing: twinTiming, images: twinCount, imagesPerSecond: twinCount / (twinTiming.ms / 1000) };
      figure.agreement = { compared: twinCount, same: Array.from(twinPredictions).filter((p, i) => p === predictions[i]).length };
    }
    return figure;
  } finally {
    model.destroy();
    for (const b of owned) ctx.destroyBuffer(b);
    weights.destroy();
  }
}
