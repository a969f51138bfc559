import { describe, expect, it } from 'vitest';
import { AlignmentError, ConfigError } from '../../src/engine/errors';
import { continualAverage } from '../../src/engine/methods/continualAverage';
import { continualMagmax } from '../../src/engine/methods/continualMagmax';
import { continualTaskArithmetic } from '../../src/engine/methods/continualTaskArithmetic';
import { continualTies } from '../../src/engine/methods/continualTies';
import { opcm } from '../../src/engine/methods/opcm';
import { resolveParams } from '../../src/engine/methods/params';
import { rngKey, rngUniform } from '../../src/engine/rng';
import { runContinualReference, type ContinualStep } from '../../src/engine/reference/continual';
import { resolveOrder, shuffledOrder } from '../../src/engine/methods/order';
import type { RefModel } from '../../src/engine/reference/refModel';

const SHAPES: Record<string, number[]> = {
  'embeddings.position_embedding.weight': [3, 4],
  'encoder.layers.0.self_attn.q_proj.weight': [4, 4],
  'encoder.layers.0.self_attn.q_proj.bias': [4],
  'encoder.layers.1.mlp.fc1.weight': [5, 4],
  'encoder.layers.1.layer_norm1.weight': [4],
};

function randomModel(seed: number): RefModel {
  return new Map(Object.entries(SHAPES).map(([name, shape], t) => {
    const key = rngKey(seed, 5, t);
    const len = shape.reduce((a, b) => a * b, 1);
    return [name, { shape, data: Float64Array.from({ length: len }, (_, i) => 2 * rngUniform(key, i) - 1) }];
  }));
}

function vectorModel(data: number[]): RefModel {
  return new Map([['w', { shape: [data.length], data: Float64Array.from(data) }]]);
}

/** theta0 + sum_t lambda(tensor, t) (theta_t - theta0), written out independently of the code under test. */
function batchTaskArithmetic(base: RefModel, models: RefModel[], lambda: (tensor: string, t: number) => number): RefModel {
  return new Map([...base].map(([name, b]) => [name, {
    shape: b.shape,
    data: b.data.map((x, i) => x + models.reduce((s, m, t) => s + lambda(name, t) * (m.get(name)!.data[i]! - x), 0)),
  }]));
}

function maxModelDiff(a: RefModel, b: RefModel): number {
  let d = 0;
  for (const [name, t] of a) t.data.forEach((x, i) => { d = Math.max(d, Math.abs(x - b.get(name)!.data[i]!)); });
  return d;
}

const base = randomModel(1);
const models = [2, 3, 4, 5].map(randomModel);

describe('method specs', () => {
  it('declares the five continual methods with the documented defaults', () => {
    for (const spec of [opcm, continualTaskArithmetic, continualTies, continualAverage, continualMagmax]) expect(spec.family).toBe('continual');
    expect(resolveParams(opcm)).toEqual({ alpha: 0.5, zero_diagonal: true, order: 'given', seed: 0, class_embedding: 'merge' });
    expect(resolveParams(continualTaskArithmetic)).toEqual({ lambda: 0.3 });
    expect(resolveParams(continualTies)).toEqual({ k: 0.2, lambda: 0.3, merge: 'sum' });
    expect(resolveParams(continualAverage)).toEqual({});
    expect(resolveParams(continualMagmax)).toEqual({ lambda: 0.5 });
  });
});

describe('continual Task Arithmetic', () => {
  it('ends at batch Task Arithmetic with the same lambda', () => {
    const { merged, steps } = runContinualReference('continual_task_arithmetic', { lambda: 0.3 }, base, models);
    expect(maxModelDiff(merged, batchTaskArithmetic(base, models, () => 0.3))).toBeLessThan(1e-14);
    expect(steps.map((s) => [s.step, s.modelIndex, s.lambda, s.layers.length])).toEqual([[0, 0, null, 0], [1, 1, null, 0], [2, 2, null, 0], [3, 3, null, 0]]);
  });

  it('evaluates per-layer and per-task lambdas per tensor and per model index', () => {
    const { merged } = runContinualReference('continual_task_arithmetic', { lambda: { per_task: [0.1, 0.2, [0.3, 0.5], 0.4] } }, base, models);
    // Layers 0 and 1 of a 2-layer model sit at depth 0 and 1; tensors outside layers at depth 0.
    const lambda = (name: string, t: number) => (t === 2 ? (name.includes('layers.1.') ? 0.5 : 0.3) : [0.1, 0.2, 0, 0.4][t]!);
    expect(maxModelDiff(merged, batchTaskArithmetic(base, models, lambda))).toBeLessThan(1e-14);
  });
});

describe('continual average', () => {
  it('ends at the simple average and is the running mean after every step', () => {
    const snapshots: RefModel[] = [];
    const { merged } = runContinualReference('continual_average', {}, base, models, (s) => snapshots.push(s.merged));
    models.forEach((_, k) => {
      const mean = batchTaskArithmetic(base, models.slice(0, k + 1), () => 1 / (k + 1));
      expect(maxModelDiff(snapshots[k]!, mean)).toBeLessThan(1e-14);
    });
    expect(maxModelDiff(merged, snapshots[3]!)).toBe(0);
  });
});

describe('continual MagMax', () => {
  it('keeps the largest-magnitude entry per coordinate, ties going to the newer model', () => {
    const zero = vectorModel([0, 0, 0, 0]);
    const ms = [vectorModel([1, -2, 3, 0.5]), vectorModel([-1, 2, -1, -0.25]), vectorModel([0.5, 0, -3, 0])];
    const { merged, steps } = runContinualReference('continual_magmax', { lambda: 0.5 }, zero, ms);
    // tau_max = [-1 (tie, newer), 2 (tie, newer), -3 (tie with 3, newest), 0.5]
    expect([...merged.get('w')!.data]).toEqual([-0.5, 1, -1.5, 0.25]);
    expect(steps[2]!.mergedNorm).toBeCloseTo(Math.hypot(0.5, 1, 1.5, 0.25), 14);
  });

  it('keeps the max-magnitude vector even at lambda = 0 and works with a nonzero base', () => {
    const b = vectorModel([1, 1]);
    const ms = [vectorModel([3, 0]), vectorModel([0, 1.5])];
    expect([...runContinualReference('continual_magmax', { lambda: 0 }, b, ms).merged.get('w')!.data]).toEqual([1, 1]);
    expect([...runContinualReference('continual_magmax', { lambda: 1 }, b, ms).merged.get('w')!.data]).toEqual([3, 0]);
  });
});

describe('continual TIES', () => {
  // tau1 = [1, -2, 3, -4], tau2 = [2, 2, 1, -0.5], theta0 = 0, lambda = 0.5, k = 0.5. Step 1: M = 0.5 tau1 = Delta.
  // Trim (keep |x| >= 2nd smallest |x|): Delta -> [0, -1, 1.5, -2], tau2 -> [2, 2, 1, 0]; signs of the sums [+, +, +, -].
  // Agreeing: col 0 tau2 (2), col 1 tau2 (2), col 2 both (1.5, 1), col 3 Delta (-2).
  const zero = vectorModel([0, 0, 0, 0]);
  const ms = [vectorModel([1, -2, 3, -4]), vectorModel([2, 2, 1, -0.5])];
  it.each([
    ['sum', [1.5, 0, 2.75, -3]],
    ['mean', [1.5, 0, 2.125, -3]],
    ['max', [1.5, 0, 2.25, -3]],
  ])('adds lambda * TIES([Delta, tau]) on top of M (merge %s)', (merge, expected) => {
    const snapshots: RefModel[] = [];
    const { merged } = runContinualReference('continual_ties', { k: 0.5, lambda: 0.5, merge }, zero, ms, (s) => snapshots.push(s.merged));
    expect([...snapshots[0]!.get('w')!.data]).toEqual([0.5, -1, 1.5, -2]); // the first model is not trimmed
    expect([...merged.get('w')!.data]).toEqual(expected);
  });

  it('trims globally over the whole model, not per tensor', () => {
    // Two tensors; with k = 0.25 the single kept entry of tau2 (>= rule: d - floor(d k) = 3rd smallest of 4) is in 'b'.
    const two = (a: number[], b: number[]): RefModel => new Map([['a', { shape: [2], data: Float64Array.from(a) }], ['b', { shape: [2], data: Float64Array.from(b) }]]);
    const { merged } = runContinualReference('continual_ties', { k: 0.25, lambda: 1 }, two([0, 0], [0, 0]), [two([0, 0], [0, 0]), two([1, 0.1], [5, 4])]);
    // Delta = 0 at step 1; tau2 trimmed globally keeps |x| >= 4: a -> [0, 0], b -> [5, 4].
    expect([...merged.get('a')!.data]).toEqual([0, 0]);
    expect([...merged.get('b')!.data]).toEqual([5, 4]);
  });
});

describe('merge order', () => {
  it('accepts "given", "shuffle" and permutations, and names params.order for anything else', () => {
    expect(resolveOrder('given', 0, 3)).toEqual([0, 1, 2]);
    expect(resolveOrder([2, 0, 1], 0, 3)).toEqual([2, 0, 1]);
    for (const bad of [[0, 0, 1], [0, 1], [0, 1, 3], [0, 1.5, 2], [-1, 0, 1]]) {
      expect(() => resolveOrder(bad, 0, 3)).toThrow(ConfigError);
      expect(() => resolveOrder(bad, 0, 3)).toThrow(/params\.order.*permutation of 0\.\.2/);
    }
  });

  it('shuffles deterministically per seed (a permutation; different seeds give different orders)', () => {
    const orders = Array.from({ length: 10 }, (_, seed) => shuffledOrder(8, seed));
    for (const [seed, o] of orders.entries()) {
      expect([...o].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(shuffledOrder(8, seed)).toEqual(o);
      expect(resolveOrder('shuffle', seed, 8)).toEqual(o);
    }
    expect(new Set(orders.map((o) => o.join(','))).size).toBeGreaterThan(5);
    expect(shuffledOrder(1, 3)).toEqual([0]);
    expect(shuffledOrder(0, 3)).toEqual([]);
  });

  it('runs OPCM in the shuffled order, identical to passing that order explicitly, and order matters', () => {
    const order = shuffledOrder(4, 7);
    const shuffled = runContinualReference('opcm', { order: 'shuffle', seed: 7 }, base, models);
    const explicit = runContinualReference('opcm', { order }, base, models);
    const given = runContinualReference('opcm', {}, base, models);
    expect(shuffled.order).toEqual(order);
    expect(shuffled.steps.map((s) => s.modelIndex)).toEqual(order);
    expect(maxModelDiff(shuffled.merged, explicit.merged)).toBe(0);
    expect(order).not.toEqual([0, 1, 2, 3]);
    expect(maxModelDiff(shuffled.merged, given.merged)).toBeGreaterThan(1e-3);
  });
});

describe('runContinualReference', () => {
  it('calls onStep once per model with a merged model that later steps do not change', () => {
    const seen: ContinualStep[] = [];
    const copies: Float64Array[] = [];
    const result = runContinualReference('opcm', { order: [3, 1, 0, 2] }, base, models, (s) => {
      seen.push(s);
      copies.push(s.merged.get('encoder.layers.0.self_attn.q_proj.weight')!.data.slice());
    });
    expect(seen.map((s) => [s.index, s.modelIndex])).toEqual([[0, 3], [1, 1], [2, 0], [3, 2]]);
    seen.forEach((s, i) => expect([...s.merged.get('encoder.layers.0.self_attn.q_proj.weight')!.data]).toEqual([...copies[i]!]));
    expect(seen.map((s) => s.diagnostics)).toEqual(result.steps);
    expect(result.merged).toBe(seen[3]!.merged);
  });

  it('reports norms per step: incoming ||tau||, running mean, merged norm and sqrt(t)', () => {
    const { steps } = runContinualReference('continual_task_arithmetic', { lambda: 1 }, base, models);
    const norms = models.map((m) => Math.sqrt([...m].reduce((s, [name, t]) => s + t.data.reduce((q, x, i) => q + (x - base.get(name)!.data[i]!) ** 2, 0), 0)));
    steps.forEach((d, k) => {
      expect(d.taskVectorNorm).toBeCloseTo(norms[k]!, 13);
      expect(d.meanNorm).toBeCloseTo(norms.slice(0, k + 1).reduce((a, b) => a + b, 0) / (k + 1), 13);
      expect(d.sqrtT).toBe(Math.sqrt(k + 1));
      expect(d.unscaledNorm).toBeNull();
    });
    const sum = batchTaskArithmetic(base, models, () => 1);
    expect(steps[3]!.mergedNorm).toBeCloseTo(Math.sqrt([...sum].reduce((s, [name, t]) => s + t.data.reduce((q, x, i) => q + (x - base.get(name)!.data[i]!) ** 2, 0), 0)), 13);
  });

  it('rejects unknown methods, unknown or bad parameters, no models and misaligned models', () => {
    expect(() => runContinualReference('task_arithmetic', {}, base, models)).toThrow(/not a continual method/);
    expect(() => runContinualReference('opcm', { beta: 1 }, base, models)).toThrow(/params\.beta/);
    expect(() => runContinualReference('opcm', { alpha: 1.5 }, base, models)).toThrow(/params\.alpha/);
    expect(() => runContinualReference('continual_ties', { merge: 'median' }, base, models)).toThrow(/params\.merge/);
    expect(() => runContinualReference('opcm', {}, base, [])).toThrow(ConfigError);
    const missing = new Map(models[1]!);
    missing.delete('encoder.layers.1.mlp.fc1.weight');
    expect(() => runContinualReference('opcm', {}, base, [models[0]!, missing])).toThrow(AlignmentError);
    expect(() => runContinualReference('opcm', {}, base, [models[0]!, missing])).toThrow(/model 1 has no tensor encoder\.layers\.1\.mlp\.fc1\.weight/);
    const reshaped = new Map(models[0]!);
    reshaped.set('encoder.layers.1.mlp.fc1.weight', { shape: [4, 5], data: new Float64Array(20) });
    expect(() => runContinualReference('continual_average', {}, base, [reshaped])).toThrow(/shape \[4,5\].*\[5,4\]/);
    const extra = new Map(models[0]!);
    extra.set('head.weight', { shape: [1], data: new Float64Array(1) });
    expect(() => runContinualReference('continual_average', {}, base, [extra])).toThrow(/head\.weight, which the base model lacks/);
  });
});
