/**
 * Batched inference of a CLIP-style vision transformer on the GPU, reading its f32 weights straight from GPU
 * buffers (merged weights go into inference without a round trip through the host). The forward pass is
 * src/engine/reference/vit.ts's, step for step: patch embedding (im2col + matmul), CLS and position embeddings,
 * pre-LN encoder layers (layer norm, q/k/v projections, softmax attention, out_proj + residual, MLP + residual),
 * post_layernorm of the CLS token, optional visual_projection, then a zero-shot or linear head.
 *
 * Every matrix product is a call of src/engine/gpu/matmul.ts; the residual adds ride on its beta = 1 (C += A B^T)
 * and biases and activations are one in-place elementwise pass after it (vit_bias_act). Activation buffers are
 * allocated once for `maxBatch` images and reused; features() and logits() return buffers owned by the model that
 * the next call overwrites.
 */
import { encoderLayers, namedLayerNorm } from './encoder';
import { ConfigError, GpuError } from '../errors';
import { VIT_MAX_HEAD_DIM } from '../gpu/constants';
import type { GpuContext } from '../gpu/device';
import { matmul } from '../gpu/matmul';
import { numelOf } from '../types';
import { featureDim, patchCount, tokenCount, visionWeightShapes, type VisionConfig } from './visionConfig';
import { biasAct, embedTokens, im2col, l2Normalize } from './vitKernels';

/** A classification head on the features [B, F]: weight is [K, F] (f32); `dim` is F and `classes` K. */
export type Head =
  /** CLIP zero-shot: logits = logitScale * normalize(features) . normalize(weight rows), the rows being class text embeddings. */
  | { kind: 'zero-shot'; weight: GPUBuffer; classes: number; dim: number; logitScale: number }
  /** A linear probe: logits = features weight^T + bias, bias [K]. */
  | { kind: 'linear'; weight: GPUBuffer; bias: GPUBuffer; classes: number; dim: number };

const F32_BYTES = 4;

/** A CLIP vision tower on one GPU context. */
export class VisionTransformer {
  /** F: width of the features (the projection's size when the model has one, else hidden_size). */
  readonly featureDim: number;
  private readonly weights = new Map<string, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private readonly cols: GPUBuffer;
  /** The residual stream x [B * T, D]. */
  private readonly residual: GPUBuffer;
  /** Layer-norm outputs and attention outputs [B * T, D]. */
  private readonly normed: GPUBuffer;
  private readonly q: GPUBuffer;
  private readonly k: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly hidden: GPUBuffer;
  private readonly pooled: GPUBuffer;
  private readonly projected: GPUBuffer | null;
  private readonly normalized: GPUBuffer;
  /** Grown to the largest head seen: logits [maxBatch, K] and normalised class embeddings [K, F]. */
  private logitsBuf: GPUBuffer | null = null;
  private classBuf: GPUBuffer | null = null;
  private destroyed = false;

  /**
   * @param weights returns the f32 buffer of a tensor by canonical name (the checkpoint name without `vision_model.`,
   *   see resolveVisionWeights), holding at least the tensor's elements; the model reads but never frees them.
   * @param maxBatch the most images one features() call takes; activation buffers are sized for it.
   */
  constructor(
    readonly ctx: GpuContext,
    readonly config: VisionConfig,
    weights: (name: string) => GPUBuffer,
    readonly maxBatch: number,
  ) {
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new ConfigError('maxBatch', `must be a positive integer, got ${maxBatch}`);
    const { hiddenSize: d, numHeads, intermediateSize: inter, numChannels: c, patchSize: p } = config;
    if (d % numHeads !== 0) throw new ConfigError('num_attention_heads', `${numHeads} does not divide hidden_size ${d}`);
    if (d / numHeads > VIT_MAX_HEAD_DIM) {
      throw new ConfigError('num_attention_heads', `head size hidden_size / num_attention_heads = ${d / numHeads} is above the attention kernel's limit of ${VIT_MAX_HEAD_DIM}`);
    }
    this.featureDim = featureDim(config);
    for (const [name, shape] of visionWeightShapes(config)) {
      const buf = weights(name);
      const bytes = numelOf(shape) * F32_BYTES;
      if (buf.size < bytes) {
        throw new GpuError('validation', `VisionTransformer: weight "${name}" [${shape.join(', ')}] needs ${bytes} bytes, its buffer '${buf.label}' has ${buf.size}`);
      }
      this.weights.set(name, buf);
    }
    const rows = maxBatch * tokenCount(config);
    try {
      this.cols = this.alloc('patches', maxBatch * patchCount(config) * c * p * p);
      this.residual = this.alloc('residual', rows * d);
      this.normed = this.alloc('normed', rows * d);
      this.q = this.alloc('q', rows * d);
      this.k = this.alloc('k', rows * d);
      this.v = this.alloc('v', rows * d);
      this.hidden = this.alloc('mlp hidden', rows * inter);
      this.pooled = this.alloc('pooled', maxBatch * d);
      this.projected = config.projectionDim === null ? null : this.alloc('features', maxBatch * config.projectionDim);
      this.normalized = this.alloc('normalized features', maxBatch * this.featureDim);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** A model-owned activation buffer of `elements` f32s, checked against the binding limit. */
  private alloc(what: string, elements: number): GPUBuffer {
    const bytes = elements * F32_BYTES;
    const limit = this.ctx.info.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuError('out-of-memory', `VisionTransformer: the ${what} buffer for maxBatch ${this.maxBatch} needs ${bytes} bytes, over the device's maxStorageBufferBindingSize ${limit}; use a smaller batch`);
    }
    // COPY_SRC: callers read features and logits back.
    const buf = this.ctx.createBuffer(`vit ${what}`, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    this.owned.push(buf);
    return buf;
  }

  private weight(name: string): GPUBuffer {
    return this.weights.get(name)!;
  }

  private checkBatch(batch: number): void {
    if (this.destroyed) throw new GpuError('validation', 'VisionTransformer: used after destroy()');
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) {
      throw new GpuError('validation', `VisionTransformer: batch must be an integer in 1..${this.maxBatch} (maxBatch), got ${batch}`);
    }
  }

  /** y = x W^T (+ old y when accumulate) + bias, then the activation, for x [rows, inDim] and W [outDim, inDim]. */
  /** Features [batch, F] of images [batch, C, S, S] (f32, already normalised); the buffer is the model's. */
  features(images: GPUBuffer, batch: number): GPUBuffer {
    this.checkBatch(batch);
    const { ctx, config } = this;
    const { hiddenSize: d, patchSize: p, numChannels: c } = config;
    const tokens = tokenCount(config);
    const patches = patchCount(config);
    const rows = batch * tokens;
    const cpp = c * p * p;
    const weight = (name: string) => this.weight(name);

    // Patch embeddings go straight into token rows 1..N of each image: a batched matmul over images with C offset by
    // one row (the CLS slot) and a stride of T rows.
    im2col(ctx, images, this.cols, { batch, channels: c, imageSize: config.imageSize, patchSize: p });
    const patchWeight = this.weight('embeddings.patch_embedding.weight');
    matmul(ctx, this.cols, patchWeight, this.normed, { m: patches, n: d, k: cpp, transB: true, batch, strideA: patches * cpp, strideB: 0, strideC: tokens * d, offsetC: d });
    embedTokens(ctx, this.weight('embeddings.class_embedding'), this.weight('embeddings.position_embedding.weight'), this.normed, batch, tokens, d);
    namedLayerNorm(ctx, weight, config, 'pre_layrnorm', this.normed, this.residual, rows);
    encoderLayers(ctx, weight, config, { residual: this.residual, normed: this.normed, q: this.q, k: this.k, v: this.v, hidden: this.hidden }, batch, tokens, false);
    // The CLS token of image b is row b * T.
    namedLayerNorm(ctx, weight, config, 'post_layernorm', this.residual, this.pooled, batch, tokens * d);
    if (this.projected === null || config.projectionDim === null) return this.pooled;
    matmul(ctx, this.pooled, this.weight('visual_projection.weight'), this.projected, { m: batch, n: config.projectionDim, k: d, transB: true });
    return this.projected;
  }

  /** A model-owned buffer of at least `elements` f32s, replacing `current` when it is too small. */
  private grow(current: GPUBuffer | null, what: string, elements: number): GPUBuffer {
    if (current && current.size >= elements * F32_BYTES) return current;
    if (current) {
      this.owned.splice(this.owned.indexOf(current), 1);
      this.ctx.destroyBuffer(current);
    }
    return this.alloc(what, elements);
  }

  /** Logits [batch, K] of features [batch, F] (e.g. from features()) under `head`; the buffer is the model's. */
  logits(features: GPUBuffer, batch: number, head: Head): GPUBuffer {
    this.checkBatch(batch);
    const { ctx } = this;
    const f = this.featureDim;
    if (head.dim !== f) throw new ConfigError('head.dim', `the head takes ${head.dim} features, the model gives ${f}`);
    if (!Number.isInteger(head.classes) || head.classes < 1) throw new ConfigError('head.classes', `must be a positive integer, got ${head.classes}`);
    const k = head.classes;
    this.logitsBuf = this.grow(this.logitsBuf, 'logits', this.maxBatch * k);
    if (head.kind === 'zero-shot') {
      if (!Number.isFinite(head.logitScale)) throw new ConfigError('head.logitScale', `must be finite, got ${head.logitScale}`);
      this.classBuf = this.grow(this.classBuf, 'normalized class embeddings', k * f);
      l2Normalize(ctx, features, this.normalized, batch, f, head.logitScale);
      l2Normalize(ctx, head.weight, this.classBuf, k, f, 1);
      matmul(ctx, this.normalized, this.classBuf, this.logitsBuf, { m: batch, n: k, k: f, transB: true });
    } else {
      matmul(ctx, features, head.weight, this.logitsBuf, { m: batch, n: k, k: f, transB: true });
      biasAct(ctx, head.bias, this.logitsBuf, batch, k, 'none');
    }
    return this.logitsBuf;
  }

  /** Frees every buffer the model allocated (not the weights, images or heads it was given). */
  destroy(): void {
    this.destroyed = true;
    for (const buf of this.owned) this.ctx.destroyBuffer(buf);
    this.owned.length = 0;
    this.logitsBuf = null;
    this.classBuf = null;
  }
}
