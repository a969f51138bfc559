/**
 * DARE reference (methods.md section 5).
 *
 * Keep rule, shared bit for bit with the GPU: entry i (flat index within the tensor) of tensor `name` of task t is
 * kept iff rngUniform(rngKey(seed, t, stringId(name)), i) >= p. The GPU receives p as an f32 uniform, so p is
 * rounded to f32 here as well (Math.fround): the uniforms are multiples of 2^-24, exact in f32, and the comparison
 * then has the same outcome on both sides. Kept entries are divided by (1 - p) when `rescale` is on.
 *
 * linear_only (FusionBench only_on_linear_weights): only the weight matrices of Linear layers are dropped, as decided
 * from the name and shape by reference/linearWeights.ts (the rule OPCM uses too). Other tensors are passed on
 * undropped and unscaled.
 */
import { isLinearWeight } from '../linearWeights';
import { rngKey, rngUniform, stringId } from '../../rng';
import { mapModel, type RefModel } from '../refModel';

/** DARE drop settings. */
export interface DareSettings {
  /** Drop rate in [0, 1). */
  p: number;
  rescale: boolean;
  seed: number;
  linearOnly: boolean;
}

/** 0/1 keep mask of one tensor of task `task` (the exact CPU/GPU rule above). */
export function dareKeepMask(name: string, numel: number, task: number, seed: number, p: number): Uint8Array {
  const key = rngKey(seed, task, stringId(name));
  const p32 = Math.fround(p);
  const keep = new Uint8Array(numel);
  for (let i = 0; i < numel; i++) keep[i] = rngUniform(key, i) >= p32 ? 1 : 0;
  return keep;
}

/** Dropped (and rescaled) copy of task vector `tau` of task index `task`. */
export function dareDrop(tau: RefModel, task: number, s: DareSettings): RefModel {
  const scale = s.rescale ? 1 / (1 - s.p) : 1;
  return mapModel(tau, (name, d, shape) => {
    if (s.linearOnly && !isLinearWeight(name, shape)) return d.slice();
    const keep = dareKeepMask(name, d.length, task, s.seed, s.p);
    return d.map((x, i) => (keep[i] ? x * scale : 0));
  });
}
