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
import { encoderLayers, namedLayerNorm, type EncoderBuffers } from './encoder';
import { ConfigError, GpuError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { itemGrid } from '../gpu/dispatch';
import { bind, launch } from '../gpu/launch';
import { matmul } from '../gpu/matmul';
import { eosPositions, textFeatureDim, textWeightShapes, TEXT_PROJECTION_WEIGHT, type TextConfig } from './textConfig';
import { TowerResources } from './towerResources';
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
  private readonly res: TowerResources;
  private readonly ids: GPUBuffer;
  private readonly poolIndex: GPUBuffer;
  /** The encoder's activations (residual stream, layer-norm and attention outputs, q, k, v, MLP). */
  private readonly act: EncoderBuffers;
  private readonly picked: GPUBuffer;
  private readonly pooled: GPUBuffer;
  private readonly projected: GPUBuffer | null;

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
    TowerResources.checkHeads(config, 'text_config.num_attention_heads');
    const d = config.hiddenSize;
    this.featureDim = textFeatureDim(config);
    this.res = new TowerResources(ctx, 'TextTransformer', 'text', `maxBatch ${maxBatch} x maxTokens ${maxTokens}`);
    this.res.bindWeights(textWeightShapes(config), weights);
    const rows = maxBatch * maxTokens;
    try {
      this.ids = this.res.alloc('token ids', rows);
      this.poolIndex = this.res.alloc('end-of-text rows', maxBatch);
      this.act = this.res.encoderBuffers(config, rows);
      this.picked = this.res.alloc('end-of-text tokens', maxBatch * d);
      this.pooled = this.res.alloc('pooled', maxBatch * d);
      this.projected = config.projectionDim === null ? null : this.res.alloc('features', maxBatch * config.projectionDim);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /**
   * Features [batch, F] of `batch` sequences of `tokens` ids each (row-major, each holding its end-of-text token,
   * padded after it with anything in the vocabulary); the buffer is the model's and the next call overwrites it.
   */
  features(ids: ArrayLike<number>, batch: number, tokens: number): GPUBuffer {
    this.res.assertAlive();
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

    const weight = (name: string) => this.res.weight(name);
    const { residual } = this.act;
    gatherRows(ctx, weight('embeddings.token_embedding.weight'), vocabSize, this.ids, residual, rows, d);
    // Position t's embedding is column block t of a sequence's T * D values: a bias over rows of length T * D.
    biasAct(ctx, weight('embeddings.position_embedding.weight'), residual, batch, tokens * d, 'none');
    encoderLayers(ctx, weight, config, this.act, batch, tokens, true);
    gatherRows(ctx, residual, rows, this.poolIndex, this.picked, batch, d);
    namedLayerNorm(ctx, weight, config, 'final_layer_norm', this.picked, this.pooled, batch);
    if (this.projected === null || config.projectionDim === null) return this.pooled;
    matmul(ctx, this.pooled, weight(TEXT_PROJECTION_WEIGHT), this.projected, { m: batch, n: config.projectionDim, k: d, transB: true });
    return this.projected;
  }

  /** Frees every buffer the model allocated (not the weights it was given). */
  destroy(): void {
    this.res.destroy();
  }
}
