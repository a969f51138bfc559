/**
 * Deterministic in-memory models for the benchmark: a base and T fine-tuned models (base + small noise) as whole
 * safetensors files in memory, opened through memorySource, so the benchmark times the engine and not a disk.
 * Nothing here is timed. Outputs go to a sink that counts and drops bytes.
 */
import type { ByteSink } from '../src/engine/io/byteSource';
import { memorySource } from '../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../src/engine/io/model';
import { SafetensorsWriter, type TensorSpec } from '../src/engine/io/safetensorsWriter';
import { DTYPE_BYTES } from '../src/engine/types';
import { parameterCount, vitTensors, type VitSize } from './vitShapes';

/** Input dtypes the benchmark generates. */
export type BenchDType = 'F32' | 'BF16';

/** A base and its fine-tuned models, all in memory. */
export interface BenchModels {
  base: Model;
  models: Model[];
  dtype: BenchDType;
  /** Parameters per model and bytes of one model's tensor data. */
  elements: number;
  modelBytes: number;
}

/** Scale of the base weights and of the fine-tuning noise (typical of CLIP weights and their task vectors). */
const BASE_SCALE = 0.02;
const DELTA_SCALE = 0.002;

/** xorshift32 stream of values in [-1, 1), summed in pairs for a bell-shaped (triangular) distribution. */
function fillNoise(out: Float32Array, seed: number, scale: number, add?: Float32Array): void {
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  const k = scale / 2 ** 31;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const a = x | 0;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const v = (a + (x | 0)) * 0.5 * k;
    out[i] = add ? add[i]! + v : v;
  }
}

/** bf16 bits of f32 values, rounded to nearest even (the benchmark's data has no NaN). */
function toBf16(values: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}

/** The safetensors header (with its 8-byte length prefix) for a tensor list. */
async function headerOf(specs: TensorSpec[]): Promise<Uint8Array> {
  let header: Uint8Array | null = null;
  const capture: ByteSink = {
    name: 'header',
    write: async (chunk) => void (header = chunk.slice()),
    close: async () => undefined,
    abort: async () => undefined,
  };
  await SafetensorsWriter.create(capture, specs);
  return header!;
}

/** One safetensors file: header, then every tensor's values (f32 values written in `dtype`). */
function fileBytes(header: Uint8Array, values: Float32Array, dtype: BenchDType): Uint8Array {
  const out = new Uint8Array(header.byteLength + values.length * DTYPE_BYTES[dtype]);
  out.set(header);
  // The header is padded to 8 bytes, so the data area is aligned for typed views.
  if (dtype === 'F32') new Float32Array(out.buffer, header.byteLength, values.length).set(values);
  else toBf16(values, new Uint16Array(out.buffer, header.byteLength, values.length));
  return out;
}

/** Generates a base and `tasks` fine-tuned ViT models of size `size` (same seed, same bytes, every time). */
export async function generateModels(opts: { size: VitSize; dtype: BenchDType; tasks: number; seed?: number }): Promise<BenchModels> {
  const { size, dtype, tasks } = opts;
  const seed = opts.seed ?? 1;
  const tensors = vitTensors(size);
  const elements = parameterCount(tensors);
  const header = await headerOf(tensors.map((t) => ({ ...t, dtype })));
  const baseValues = new Float32Array(elements);
  fillNoise(baseValues, seed, BASE_SCALE);
  const open = (name: string, bytes: Uint8Array) => openSingleFileModel(name, memorySource(name, bytes));
  const base = await open('base.safetensors', fileBytes(header, baseValues, dtype));
  const scratch = new Float32Array(elements);
  const models: Model[] = [];
  for (let t = 0; t < tasks; t++) {
    fillNoise(scratch, seed + 1000 * (t + 1), DELTA_SCALE, baseValues);
    models.push(await open(`task${t}.safetensors`, fileBytes(header, scratch, dtype)));
  }
  return { base, models, dtype, elements, modelBytes: elements * DTYPE_BYTES[dtype] };
}

/** A sink that counts the bytes written and keeps none of them (the merge's output cost without a copy). */
export function countingSink(name: string): ByteSink & { readonly bytes: number } {
  let bytes = 0;
  return {
    name,
    get bytes() {
      return bytes;
    },
    write: async (chunk) => void (bytes += chunk.byteLength),
    close: async () => undefined,
    abort: async () => undefined,
  };
}
