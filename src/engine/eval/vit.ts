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
import { encoderLayers, namedLayerNorm, type EncoderBuffers } from './encoder';
import { ConfigError, GpuError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { matmul } from '../gpu/matmul';
import { TowerResources } from './towerResources';
import { featureDim, patchCount, tokenCount, visionWeightShapes, type VisionConfig } from './visionConfig';
import { biasAct, embedTokens, im2col, l2Normalize } from './vitKernels';

/** A classification head on the features [B, F]: weight is [K, F] (f32); `dim` is F and `classes` K. */
export type Head =
  /** CLIP zero-shot: logits = logitScale * normalize(features) . normalize(weight rows), the rows being class text embeddings. */
  | { kind: 'zero-shot'; weight: GPUBuffer; classes: number; dim: number; logitScale: number }
  /** A linear probe: logits = features weight^T + bias, bias [K]. */
  | { kind: 'linear'; weight: GPUBuffer; bias: GPUBuffer; classes: number; dim: number };

/** A CLIP vision tower on one GPU context. */
export class VisionTransformer {
  /** F: width of the features (the projection's size when the model has one, else hidden_size). */
  readonly featureDim: number;
  private readonly res: TowerResources;
  private readonly cols: GPUBuffer;
  /** The encoder's activations: the residual stream x [B * T, D], layer-norm and attention outputs, q, k, v, MLP. */
  private readonly act: EncoderBuffers;
  private readonly pooled: GPUBuffer;
  private readonly projected: GPUBuffer | null;
  private readonly normalized: GPUBuffer;
  /** Grown to the largest head seen: logits [maxBatch, K] and normalised class embeddings [K, F]. */
  private logitsBuf: GPUBuffer | null = null;
  private classBuf: GPUBuffer | null = null;

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
    TowerResources.checkHeads(config, 'num_attention_heads');
    const { hiddenSize: d, numChannels: c, patchSize: p } = config;
    this.featureDim = featureDim(config);
    this.res = new TowerResources(ctx, 'VisionTransformer', 'vit', `maxBatch ${maxBatch}`);
    this.res.bindWeights(visionWeightShapes(config), weights);
    try {
      this.cols = this.res.alloc('patches', maxBatch * patchCount(config) * c * p * p);
      this.act = this.res.encoderBuffers(config, maxBatch * tokenCount(config));
      this.pooled = this.res.alloc('pooled', maxBatch * d);
      this.projected = config.projectionDim === null ? null : this.res.alloc('features', maxBatch * config.projectionDim);
      this.normalized = this.res.alloc('normalized features', maxBatch * this.featureDim);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  private checkBatch(batch: number): void {
    this.res.assertAlive();
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) {
      throw new GpuError('validation', `VisionTransformer: batch must be an integer in 1..${this.maxBatch} (maxBatch), got ${batch}`);
    }
  }

  /** Features [batch, F] of images [batch, C, S, S] (f32, already normalised); the buffer is the model's. */
  features(images: GPUBuffer, batch: number): GPUBuffer {
    this.checkBatch(batch);
    const { ctx, config } = this;
    const { hiddenSize: d, patchSize: p, numChannels: c } = config;
    const tokens = tokenCount(config);
    const patches = patchCount(config);
    const rows = batch * tokens;
    const cpp = c * p * p;
    const weight = (name: string) => this.res.weight(name);
    const { residual, normed } = this.act;

    // Patch embeddings go straight into token rows 1..N of each image: a batched matmul over images with C offset by
    // one row (the CLS slot) and a stride of T rows.
    im2col(ctx, images, this.cols, { batch, channels: c, imageSize: config.imageSize, patchSize: p });
    matmul(ctx, this.cols, weight('embeddings.patch_embedding.weight'), normed, { m: patches, n: d, k: cpp, transB: true, batch, strideA: patches * cpp, strideB: 0, strideC: tokens * d, offsetC: d });
    embedTokens(ctx, weight('embeddings.class_embedding'), weight('embeddings.position_embedding.weight'), normed, batch, tokens, d);
    namedLayerNorm(ctx, weight, config, 'pre_layrnorm', normed, residual, rows);
    encoderLayers(ctx, weight, config, this.act, batch, tokens, false);
    // The CLS token of image b is row b * T.
    namedLayerNorm(ctx, weight, config, 'post_layernorm', residual, this.pooled, batch, tokens * d);
    if (this.projected === null || config.projectionDim === null) return this.pooled;
    matmul(ctx, this.pooled, weight('visual_projection.weight'), this.projected, { m: batch, n: config.projectionDim, k: d, transB: true });
    return this.projected;
  }

  /** Logits [batch, K] of features [batch, F] (e.g. from features()) under `head`; the buffer is the model's. */
  logits(features: GPUBuffer, batch: number, head: Head): GPUBuffer {
    this.checkBatch(batch);
    const { ctx } = this;
    const f = this.featureDim;
    if (head.dim !== f) throw new ConfigError('head.dim', `the head takes ${head.dim} features, the model gives ${f}`);
    if (!Number.isInteger(head.classes) || head.classes < 1) throw new ConfigError('head.classes', `must be a positive integer, got ${head.classes}`);
    const k = head.classes;
    this.logitsBuf = this.res.grow(this.logitsBuf, 'logits', this.maxBatch * k);
    if (head.kind === 'zero-shot') {
      if (!Number.isFinite(head.logitScale)) throw new ConfigError('head.logitScale', `must be finite, got ${head.logitScale}`);
      this.classBuf = this.res.grow(this.classBuf, 'normalized class embeddings', k * f);
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
    this.res.destroy();
    this.logitsBuf = null;
    this.classBuf = null;
  }
}
