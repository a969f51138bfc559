/**
 * The shape shared by the batch reference methods: each method turns the task vectors into per-task
 * contributions c_t (the masked, trimmed or normalised pieces of tau_t) such that the merged task vector at scale 1
 * is sum_t c_t. The final model is theta0 + sum_t lambda(tensor, t) * c_t, so every coefficient (lambda, alpha,
 * beta, ...) can vary by layer, filter, task or table without changing which entries a method keeps: scaling never
 * feeds back into trimming or sign election.
 */
import { coefficientAt, countLayers, type CoefficientSetting } from '../../methods/scaling';
import { mapModel, type RefModel } from '../refModel';

/** Per-task contributions c_t, each with the tensors of the base. */
export type Contributions = RefModel[];

/** A coefficient evaluated at one tensor of one task. */
export type CoefficientFn = (tensor: string, task: number) => number;

/** Evaluates `setting` per (tensor, task) for the model `base` (its layer count sets the depth of each tensor). */
export function coefficientFn(setting: CoefficientSetting, base: RefModel, fallback: number): CoefficientFn {
  const layers = countLayers(base.keys());
  return (tensor, task) => coefficientAt(setting, { tensor, task, layers }, fallback);
}

/** theta = theta0 + sum_t coef(tensor, t) * c_t, tensor by tensor. */
export function applyContributions(base: RefModel, contributions: Contributions, coef: CoefficientFn): RefModel {
  return mapModel(base, (name, b) => {
    const out = b.slice();
    contributions.forEach((c, t) => {
      const s = coef(name, t);
      const d = tensorOf(c, name).data;
      for (let i = 0; i < out.length; i++) out[i]! += s * d[i]!;
    });
    return out;
  });
}

/** The merged task vector at scale 1: sum_t c_t. */
export function sumContributions(base: RefModel, contributions: Contributions): RefModel {
  return mapModel(base, (name, b) => {
    const out = new Float64Array(b.length);
    for (const c of contributions) {
      const d = tensorOf(c, name).data;
      for (let i = 0; i < out.length; i++) out[i]! += d[i]!;
    }
    return out;
  });
}

/** Elementwise product of a model with a mask of the same tensors (entries 0 or 1). */
export function maskModel(model: RefModel, mask: RefModel): RefModel {
  return mapModel(model, (name, d) => {
    const m = tensorOf(mask, name).data;
    return d.map((x, i) => (m[i]! !== 0 ? x : 0));
  });
}

/** The tensor `name` of `model`, or an error naming it. */
export function tensorOf(model: RefModel, name: string): { shape: number[]; data: Float64Array } {
  const t = model.get(name);
  if (!t) throw new Error(`reference: tensor ${name} is missing`);
  return t;
}
