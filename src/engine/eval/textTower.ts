/**
 * Batched inference of a CLIP text tower on the GPU (Hugging Face CLIPTextModel + text_projection), from f32 weight
 * buffers. The forward pass is src/engine/reference/textTower.ts's, step for step, with the vision tower's kernels:
 * token embeddings are a row gather (gather_rows) and the position embeddings a bias add over whole sequences
 * (vit_bias_act); the pre-LN encoder layers are the vision tower's with the causal flag of vit_attention; the
 * end-of-text token of each sequence is gathered (found on the host, where the ids are) and only those rows get the
 * final layer norm (a per-row operation, so this equals norming every token first); then the projection.
 *
 * Sequences may be padded to any length up to max_position_embeddings: with the causal mask, tokens after the
 * end-of-text token cannot change its output, so callers pad to the longest sequence of a batch, not to 77.
 */
import { encoderLayers, namedLayerNorm } from './encoder';
import { ConfigError, GpuError } from '../errors';
import { VIT_MAX_HEAD_DIM } from '../gpu/constants';
import type { GpuContext } from '../gpu/device';
import { itemGrid } from '../gpu/dispatch';
import { bind, launch } from '../gpu/launch';
import { matmul } from '../gpu/matmul';
import { numelOf } from '../types';
import { eosPositions, textFeatureDim, textWeightShapes, TEXT_PROJECTION_WEIGHT, type TextConfig } from './textConfig';
import { biasAct } from './vitKernels';

const F32_BYTES = 4;
const U32_BYTES = 4;

/** out[r, :] = table[index[r], :] for `rows` rows of width `dim`; the table has `tableRows` rows (gather_rows). */
export function gatherRows(ctx: GpuContext, table: GPUBuffer, tableRows: number, index: GPUBuffer, out: GPUBuffer, rows: number, dim: number): void {
  for (const [what, n] of Object.entries({ tableRows, rows, dim })) {
    if (!Number.isInteger(n) || n < 1 || n * dim > 0xffffffff) throw new GpuError('validation', `gather_rows: ${what} must be a positive integer (and fit u32 indexing), got ${n}`);
  }
  const bindings = [
    bind(ctx, 'gather_rows', table, tableRows * dim * F32_BYTES),
    bind(ctx, 'gather_rows', index, rows * U32_BYTES),
    bind(ctx, 'gather_rows', out, rows * dim * F32_BYTES),
  ];
  launch(ctx, 'gather_rows', [rows * dim, dim], bindings, itemGrid(rows * dim, ctx.info.limits.maxComputeWorkgroupsPerDimension));
}

/** A CLIP text tower on one GPU context. */
export class TextTransformer {
  /** F: width of the features (the projection's size when the model has one, else hidden_size). */
  readonly featureDim: number;
  private readonly weights = new Map<string, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private readonly ids: GPUBuffer;
  private readonly poolIndex: GPUBuffer;
  private readonly residual: GPUBuffer;
  private readonly normed: GPUBuffer;
  private readonly q: GPUBuffer;
  private readonly k: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly hidden: GPUBuffer;
  private readonly picked: GPUBuffer;
  private readonly pooled: GPUBuffer;
  private readonly projected: GPUBuffer | null;
  private destroyed = false;

  /**
   * @param weights returns the f32 buffer of a tensor by canonical name (see resolveTextWeights); read, never freed.
   * @param maxBatch the most sequences one features() call takes; @param maxTokens their longest padded length.
   */
  constructor(
    readonly ctx: GpuContext,
    readonly config: TextConfig,
    weights: (name: string) => GPUBuffer,
    readonly maxBatch: number,
    readonly maxTokens: number = config.maxPositions,
  ) {
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new ConfigError('maxBatch', `must be a positive integer, got ${maxBatch}`);
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1 || maxTokens > config.maxPositions) {
      throw new ConfigError('maxTokens', `must be an integer in 1..${config.maxPositions} (max_position_embeddings), got ${maxTokens}`);
    }
    const { hiddenSize: d, numHeads, intermediateSize: inter } = config;
    if (d % numHeads !== 0) throw new ConfigError('text_config.num_attention_heads', `${numHeads} does not divide hidden_size ${d}`);
    if (d / numHeads > VIT_MAX_HEAD_DIM) {
      throw new ConfigError('text_config.num_attention_heads', `head size ${d / numHeads} is above the attention kernel's limit of ${VIT_MAX_HEAD_DIM}`);
    }
    this.featureDim = textFeatureDim(config);
    for (const [name, shape] of textWeightShapes(config)) {
      const buf = weights(name);
      const bytes = numelOf(shape) * F32_BYTES;
      if (buf.size < bytes) throw new GpuError('validation', `TextTransformer: weight "${name}" [${shape.join(', ')}] needs ${bytes} bytes, its buffer '${buf.label}' has ${buf.size}`);
      this.weights.set(name, buf);
    }
    const rows = maxBatch * maxTokens;
    try {
      this.ids = this.alloc('token ids', rows);
      this.poolIndex = this.alloc('end-of-text rows', maxBatch);
      this.residual = this.alloc('residual', rows * d);
      this.normed = this.alloc('normed', rows * d);
      this.q = this.alloc('q', rows * d);
      this.k = this.alloc('k', rows * d);
      this.v = this.alloc('v', rows * d);
      this.hidden = this.alloc('mlp hidden', rows * inter);
      this.picked = this.alloc('end-of-text tokens', maxBatch * d);
      this.pooled = this.alloc('pooled', maxBatch * d);
      this.projected = config.projectionDim === null ? null : this.alloc('features', maxBatch * config.projectionDim);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** A model-owned buffer of `elements` 4-byte values, checked against the binding limit. */
  private alloc(what: string, elements: number): GPUBuffer {
    const bytes = elements * F32_BYTES;
    const limit = this.ctx.info.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuError('out-of-memory', `TextTransformer: the ${what} buffer for maxBatch ${this.maxBatch} x maxTokens ${this.maxTokens} needs ${bytes} bytes, over the device's maxStorageBufferBindingSize ${limit}; use a smaller batch`);
    }
    const buf = this.ctx.createBuffer(`text ${what}`, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.owned.push(buf);
    return buf;
  }

  private weight(name: string): GPUBuffer {
    return this.weights.get(name)!;
  }

  /**
   * Features [batch, F] of `batch` sequences of `tokens` ids each (row-major, each holding its end-of-text token,
   * padded after it with anything in the vocabulary); the buffer is the model's and the next call overwrites it.
   */
  features(ids: ArrayLike<number>, batch: number, tokens: number): GPUBuffer {
    if (this.destroyed) throw new GpuError('validation', 'TextTransformer: used after destroy()');
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) throw new GpuError('validation', `TextTransformer: batch must be an integer in 1..${this.maxBatch} (maxBatch), got ${batch}`);
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) throw new GpuError('validation', `TextTransformer: tokens must be an integer in 1..${this.maxTokens} (maxTokens), got ${tokens}`);
    const { ctx, config } = this;
    const { hiddenSize: d, vocabSize } = config;
    const rows = batch * tokens;
    if (ids.length < rows) throw new RangeError(`TextTransformer: ${ids.length} token ids for ${batch} sequences of ${tokens}`);
    const words = new Uint32Array(rows);
    for (let r = 0; r < rows; r++) {
      const id = ids[r]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`token id ${id} of sequence ${Math.floor(r / tokens)} is outside the vocabulary (size ${vocabSize})`);
      words[r] = id;
    }
    const eos = Uint32Array.from(eosPositions(ids, batch, tokens, config.eosTokenId), (t, b) => b * tokens + t);
    ctx.device.queue.writeBuffer(this.ids, 0, words);
    ctx.device.queue.writeBuffer(this.poolIndex, 0, eos);

    gatherRows(ctx, this.weight('embeddings.token_embedding.weight'), vocabSize, this.ids, this.residual, rows, d);
    // Position t's embedding is column block t of a sequence's T * D values: a bias over rows of length T * D.
    biasAct(ctx, this.weight('embeddings.position_embedding.weight'), this.residual, batch, tokens * d, 'none');
    const weight = (name: string) => this.weight(name);
    encoderLayers(ctx, weight, config, { residual: this.residual, normed: this.normed, q: this.q, k: this.k, v: this.v, hidden: this.hidden }, batch, tokens, true);
    gatherRows(ctx, this.residual, rows, this.poolIndex, this.picked, batch, d);
    namedLayerNorm(ctx, weight, config, 'final_layer_norm', this.picked, this.pooled, batch);
    if (this.projected === null || config.projectionDim === null) return this.pooled;
    matmul(ctx, this.pooled, this.weight(TEXT_PROJECTION_WEIGHT), this.projected, { m: batch, n: config.projectionDim, k: d, transB: true });
    return this.projected;
  }

  /** Frees every buffer the model allocated (not the weights it was given). */
  destroy(): void {
    this.destroyed = true;
    for (const buf of this.owned) this.ctx.destroyBuffer(buf);
    this.owned.length = 0;
  }
}
