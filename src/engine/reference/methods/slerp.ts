/**
 * SLERP reference (methods.md section 10, mergekit slerp): per tensor, on the raw weights a (first model) and b
 * (second model). Normalised copies are used only for the angle: a vector is divided by its norm when that norm is
 * > 1e-8 and left as it is otherwise (mergekit's `normalize`). With dot = <a_hat, b_hat>: |dot| > 0.9995 gives
 * lerp (1-t) a + t b; otherwise theta = arccos(dot) and the result is
 * sin((1-t) theta) / sin(theta) * a + sin(t theta) / sin(theta) * b, applied to the unnormalised a and b.
 */
import { mapModel, type RefModel } from '../refModel';
import { tensorOf, type CoefficientFn } from './contributions';

const DOT_THRESHOLD = 0.9995;
const NORM_EPS = 1e-8;

/** Spherical interpolation of two flat vectors at t (0 gives a, 1 gives b). */
export function slerpVectors(t: number, a: Float64Array, b: Float64Array): Float64Array {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  const [s0, s1] = slerpCoefficients(norm(a), norm(b), dot, t);
  return a.map((x, i) => s0 * x + s1 * b[i]!);
}

/** The weights [s0, s1] of result = s0 a + s1 b, from |a|, |b|, <a, b> and t (the GPU plan computes these three by reduction). */
export function slerpCoefficients(na: number, nb: number, dotAB: number, t: number): [number, number] {
  const sa = na > NORM_EPS ? 1 / na : 1;
  const sb = nb > NORM_EPS ? 1 / nb : 1;
  const dot = dotAB * sa * sb;
  if (Math.abs(dot) > DOT_THRESHOLD) return [1 - t, t];
  const theta = Math.acos(dot);
  return [Math.sin(theta - theta * t) / Math.sin(theta), Math.sin(theta * t) / Math.sin(theta)];
}

/** SLERP of two models tensor by tensor; t is evaluated per tensor (task index 0), like mergekit's gradients. */
export function slerpRef(base: RefModel, models: RefModel[], t: CoefficientFn): RefModel {
  const [first, second] = models;
  if (!first || !second || models.length !== 2) throw new Error('reference: slerp needs exactly two models');
  return mapModel(base, (name) => slerpVectors(t(name, 0), tensorOf(first, name).data, tensorOf(second, name).data));
}

function norm(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}
