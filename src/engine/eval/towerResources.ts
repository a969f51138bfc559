/**
 * What a CLIP tower (VisionTransformer, TextTransformer) owns on its GPU context: its weight buffers, each checked
 * against its tensor's shape; its activation buffers, sized once for its largest call and checked against the binding
 * limit; and their release. Errors name the tower, the weight or buffer, and what to change.
 */
import { ConfigError, GpuError } from '../errors';
import { VIT_MAX_HEAD_DIM } from '../gpu/constants';
import type { GpuContext } from '../gpu/device';
import { numelOf } from '../types';
import type { EncoderBuffers, EncoderShape } from './encoder';

const F32_BYTES = 4;

export class TowerResources {
  private readonly weights = new Map<string, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private destroyed = false;

  /**
   * @param tower names the tower in errors (`VisionTransformer`); @param prefix its buffer labels (`vit`);
   * @param sizedFor what the activation buffers are sized for, in errors (`maxBatch 8`).
   */
  constructor(
    readonly ctx: GpuContext,
    private readonly tower: string,
    private readonly prefix: string,
    private readonly sizedFor: string,
  ) {}

  /** Throws a ConfigError (field `headsField`) unless the heads split hidden_size into sizes vit_attention takes. */
  static checkHeads(cfg: Pick<EncoderShape, 'hiddenSize' | 'numHeads'>, headsField: string): void {
    const { hiddenSize: d, numHeads } = cfg;
    if (d % numHeads !== 0) throw new ConfigError(headsField, `${numHeads} does not divide hidden_size ${d}`);
    if (d / numHeads > VIT_MAX_HEAD_DIM) {
      throw new ConfigError(headsField, `head size hidden_size / num_attention_heads = ${d / numHeads} is above the attention kernel's limit of ${VIT_MAX_HEAD_DIM}`);
    }
  }

  /** Takes every weight by canonical name from `lookup`, checking that its buffer holds the tensor's f32 elements. */
  bindWeights(shapes: Iterable<readonly [string, readonly number[]]>, lookup: (name: string) => GPUBuffer): void {
    for (const [name, shape] of shapes) {
      const buf = lookup(name);
      const bytes = numelOf(shape as number[]) * F32_BYTES;
      if (buf.size < bytes) throw new GpuError('validation', `${this.tower}: weight "${name}" [${shape.join(', ')}] needs ${bytes} bytes, its buffer '${buf.label}' has ${buf.size}`);
      this.weights.set(name, buf);
    }
  }

  /** The buffer of weight `name` (bound by bindWeights). */
  weight(name: string): GPUBuffer {
    return this.weights.get(name)!;
  }

  /** A tower-owned buffer of `elements` 4-byte values, checked against the binding limit. */
  alloc(what: string, elements: number): GPUBuffer {
    const bytes = elements * F32_BYTES;
    const limit = this.ctx.info.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuError('out-of-memory', `${this.tower}: the ${what} buffer for ${this.sizedFor} needs ${bytes} bytes, over the device's maxStorageBufferBindingSize ${limit}; use a smaller batch`);
    }
    // COPY_SRC: callers read features and logits back; COPY_DST: the text tower writes its token ids.
    const buf = this.ctx.createBuffer(`${this.prefix} ${what}`, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.owned.push(buf);
    return buf;
  }

  /** A tower-owned buffer of at least `elements` values, replacing `current` (freed) when it is too small. */
  grow(current: GPUBuffer | null, what: string, elements: number): GPUBuffer {
    if (current && current.size >= elements * F32_BYTES) return current;
    if (current) {
      this.owned.splice(this.owned.indexOf(current), 1);
      this.ctx.destroyBuffer(current);
    }
    return this.alloc(what, elements);
  }

  /** The encoder's activation buffers for `rows` token rows. */
  encoderBuffers(cfg: Pick<EncoderShape, 'hiddenSize' | 'intermediateSize'>, rows: number): EncoderBuffers {
    const d = cfg.hiddenSize;
    return {
      residual: this.alloc('residual', rows * d),
      normed: this.alloc('normed', rows * d),
      q: this.alloc('q', rows * d),
      k: this.alloc('k', rows * d),
      v: this.alloc('v', rows * d),
      hidden: this.alloc('mlp hidden', rows * cfg.intermediateSize),
    };
  }

  /** Throws once destroy() has run. */
  assertAlive(): void {
    if (this.destroyed) throw new GpuError('validation', `${this.tower}: used after destroy()`);
  }

  /** Frees every buffer the tower allocated (not the weights it was given). */
  destroy(): void {
    this.destroyed = true;
    for (const buf of this.owned) this.ctx.destroyBuffer(buf);
    this.owned.length = 0;
  }
}
