/**
 * Random models whose values lie on a binary grid (multiples of 2^-8 for the base, 2^-12 for the fine-tuning deltas),
 * so theta_t, theta0 and tau_t = theta_t - theta0 are all exact in f32: the float64 CPU references and the f32 GPU
 * path then see the same task vectors, and magnitude ties (many, on a grid) are decided identically.
 */
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../../src/engine/io/model';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { numelOf } from '../../src/engine/types';
import { makeModelBytes } from './safetensorsFixtures';
import { seededRandom } from './safetensorsFixtures';

export interface GridModels {
  base: RefModel;
  models: RefModel[];
  /** The same models as safetensors files (F32). */
  baseBytes: Uint8Array;
  modelBytes: Uint8Array[];
}

function normal(rng: () => number): number {
  return (rng() + rng() + rng() + rng() - 2) * Math.sqrt(3);
}

/** Base + `tasks` fine-tuned models on a grid; `related` scales the deltas (SLERP wants far-apart models). */
export function gridModels(seed: number, tasks: number, shapes: Record<string, number[]>, deltaScale = 0.1): GridModels {
  const rng = seededRandom(seed);
  const base: RefModel = new Map();
  const models: RefModel[] = Array.from({ length: tasks }, () => new Map());
  for (const [name, shape] of Object.entries(shapes)) {
    const n = numelOf(shape);
    const b = Float64Array.from({ length: n }, () => Math.round(normal(rng) * 256) / 256);
    base.set(name, { shape, data: b });
    for (const m of models) m.set(name, { shape, data: b.map((x) => x + Math.round(normal(rng) * deltaScale * 4096) / 4096) });
  }
  const bytes = (m: RefModel) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: encodeFloats(t.data, 'F32') })));
  return { base, models, baseBytes: bytes(base), modelBytes: models.map(bytes) };
}

/** Opens in-memory safetensors bytes as engine models. */
export async function openModels(g: GridModels): Promise<{ base: Model; models: Model[] }> {
  const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
  return { base: await open('base.safetensors', g.baseBytes), models: await Promise.all(g.modelBytes.map((b, i) => open(`task${i}.safetensors`, b))) };
}

/** Largest |got - want| over a tensor relative to the tensor's largest |want| (0 for all-zero tensors that match). */
export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return scale === 0 ? err : err / scale;
}
