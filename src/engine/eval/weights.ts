/**
 * The f32 GPU weights a VisionTransformer reads, by canonical tensor name: unpacked from a model file (the base, a
 * fine-tuned model), or the merged tensors a merge left on the GPU completed by the base's other tensors.
 */
import type { GpuContext } from '../gpu/device';
import { unpack, uploadRaw, type RawDType } from '../gpu/kernels';
import type { Model } from '../io/model';
import { decodeToF32, encodeFloats } from '../tensor/dtype';
import type { DType } from '../types';
import { resolveVisionWeights, visionWeightShapes, type VisionConfig } from './visionConfig';

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Uploads one tensor of a model as f32 on the GPU. */
export async function tensorToGpu(ctx: GpuContext, model: Model, name: string, signal?: AbortSignal): Promise<GPUBuffer> {
  const info = model.tensors.get(name)!.info;
  const numel = info.shape.reduce((a, b) => a * b, 1);
  let bytes = await model.readTensor(name, undefined, signal);
  let dtype: DType = info.dtype;
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
    bytes = encodeFloats(decodeToF32(bytes, dtype), 'F32');
    dtype = 'F32';
  }
  const raw = uploadRaw(ctx, `${name}: bytes`, bytes);
  const out = ctx.createBuffer(`${model.name}: ${name}`, Math.max(numel, 1) * 4, storage());
  try {
    unpack(ctx, raw, dtype as RawDType, numel, out);
  } catch (e) {
    ctx.destroyBuffer(out);
    throw e;
  } finally {
    ctx.destroyBuffer(raw);
  }
  return out;
}

/** A set of vision-tower weights on the GPU. */
export class GpuWeights {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly byCanonical: Map<string, GPUBuffer>,
    private readonly owned: GPUBuffer[],
  ) {}

  /** Every weight of `model`, unpacked to f32. */
  static async fromModel(ctx: GpuContext, model: Model, config: VisionConfig, signal?: AbortSignal): Promise<GpuWeights> {
    return GpuWeights.fromMerged(ctx, model, config, new Map(), signal);
  }

  /**
   * Merged tensors (file name -> f32 buffer, owned by the caller) completed by the base's remaining tensors (e.g. a
   * visual projection that only the base has); the base tensors are uploaded and owned by the set.
   */
  static async fromMerged(ctx: GpuContext, base: Model, config: VisionConfig, merged: Map<string, GPUBuffer>, signal?: AbortSignal): Promise<GpuWeights> {
    const tensors = [...base.tensors.values()].map((t) => ({ name: t.info.name, shape: t.info.shape }));
    const resolved = resolveVisionWeights(config, tensors, base.name);
    const byCanonical = new Map<string, GPUBuffer>();
    const owned: GPUBuffer[] = [];
    try {
      for (const [canonical] of visionWeightShapes(resolved.config)) {
        const fileName = resolved.names.get(canonical)!;
        let buf = merged.get(fileName);
        if (!buf) {
          buf = await tensorToGpu(ctx, base, fileName, signal);
          owned.push(buf);
        }
        byCanonical.set(canonical, buf);
      }
    } catch (e) {
      for (const b of owned) ctx.destroyBuffer(b);
      throw e;
    }
    return new GpuWeights(ctx, byCanonical, owned);
  }

  /** The buffer of a canonical tensor name (what VisionTransformer asks for). */
  get = (canonical: string): GPUBuffer => {
    const b = this.byCanonical.get(canonical);
    if (!b) throw new Error(`no weight ${canonical} in this set`);
    return b;
  };

  destroy(): void {
    for (const b of this.owned) this.ctx.destroyBuffer(b);
    this.owned.length = 0;
  }
}
