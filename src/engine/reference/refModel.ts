/**
 * The data model of the CPU reference methods: whole tensors in float64, keyed by tensor name. The references are
 * the readable specification that the streaming GPU path is tested against; they favour clarity over speed.
 */
import type { Model } from '../io/model';
import { decodeFloats } from '../tensor/dtype';
import { numelOf } from '../types';

/** One tensor in float64. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** A model (or a task vector): float tensors by name. Iteration order is irrelevant; global ops sort names. */
export type RefModel = Map<string, RefTensor>;

/** Every tensor of a model file in float64 (the references' input). */
export async function readRefModel(model: Model): Promise<RefModel> {
  const out: RefModel = new Map();
  for (const [name, t] of model.tensors) out.set(name, { shape: t.info.shape, data: decodeFloats(await model.readTensor(name), t.info.dtype) });
  return out;
}

/** Task vectors tau_t = theta_t - theta0 for every model, tensor by tensor. */
export function refTaskVectors(base: RefModel, models: RefModel[]): RefModel[] {
  return models.map((m) => mapModel(base, (name, b) => {
    const t = m.get(name);
    if (!t) throw new Error(`reference: tensor ${name} missing from a fine-tuned model`);
    return b.map((x, i) => t.data[i]! - x);
  }));
}

/** theta0 + delta, tensor by tensor. */
export function refAddDelta(base: RefModel, delta: RefModel): RefModel {
  return mapModel(base, (name, b) => {
    const d = delta.get(name);
    return d ? b.map((x, i) => x + d.data[i]!) : b.slice();
  });
}

/** Applies `f` to every tensor of `model`, keeping shapes. */
export function mapModel(model: RefModel, f: (name: string, data: Float64Array, shape: number[]) => Float64Array): RefModel {
  const out: RefModel = new Map();
  for (const [name, t] of model) {
    const data = f(name, t.data, t.shape);
    if (data.length !== numelOf(t.shape)) throw new Error(`reference: ${name} changed size`);
    out.set(name, { shape: t.shape.slice(), data });
  }
  return out;
}

/** Tensor names in sorted order (the "flattened vector" order of FusionBench's global operations). */
export function sortedNames(model: RefModel): string[] {
  return [...model.keys()].sort();
}
