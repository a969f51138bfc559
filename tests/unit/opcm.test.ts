import { describe, expect, it } from 'vitest';
import { rngKey, rngUniform } from '../../src/engine/rng';
import { runContinualReference, type StepDiagnostics } from '../../src/engine/reference/continual';
import { isLinearWeight } from '../../src/engine/reference/linearWeights';
import { isClassEmbedding, projectLinearWeight, projectLinearWeightFull, splitRank } from '../../src/engine/reference/opcm';
import type { RefModel } from '../../src/engine/reference/refModel';
import { svdThin } from '../../src/engine/reference/svd';

function random(len: number, seed: number, scale = 1): Float64Array {
  const key = rngKey(seed, 3, 1);
  return Float64Array.from({ length: len }, (_, i) => scale * (2 * rngUniform(key, i) - 1));
}

const sumSq = (x: ArrayLike<number>) => Array.from(x).reduce((s, v) => s + v * v, 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** A model of named tensors (float64). */
function model(tensors: Record<string, [number[], ArrayLike<number>]>): RefModel {
  return new Map(Object.entries(tensors).map(([name, [shape, data]]) => [name, { shape, data: Float64Array.from(data) }]));
}

describe('isLinearWeight', () => {
  it.each([
    ['vision_model.encoder.layers.0.self_attn.q_proj.weight', [768, 768]],
    ['vision_model.encoder.layers.11.self_attn.out_proj.weight', [768, 768]],
    ['vision_model.encoder.layers.3.mlp.fc1.weight', [3072, 768]],
    ['vision_model.encoder.layers.3.mlp.fc2.weight', [768, 3072]],
    ['visual_projection.weight', [512, 768]],
    ['transformer.h.0.attn.c_attn.weight', [768, 2304]],
    ['lm_head.weight', [50257, 768]],
    ['weight', [4, 4]],
  ])('projects %s', (name, shape) => expect(isLinearWeight(name, shape)).toBe(true));

  it.each([
    ['vision_model.embeddings.position_embedding.weight', [50, 768]], // 2-D Embedding
    ['vision_model.embeddings.patch_embedding.weight', [768, 3, 32, 32]], // Conv2d
    ['vision_model.embeddings.class_embedding', [768]],
    ['vision_model.pre_layrnorm.weight', [768]],
    ['vision_model.encoder.layers.0.layer_norm1.weight', [768]],
    ['vision_model.encoder.layers.0.self_attn.q_proj.bias', [768]],
    ['model.embed_tokens.weight', [32000, 4096]],
    ['transformer.wte.weight', [50257, 768]],
    ['transformer.wpe.weight', [1024, 768]],
    ['model.norm.weight', [4, 4]], // 2-D but a norm by name
    ['transformer.ln_f.weight', [4, 4]],
    ['visual.transformer.resblocks.0.attn.in_proj_weight', [2304, 768]], // no ".weight" suffix
    ['visual.proj', [768, 512]],
  ])('does not project %s', (name, shape) => expect(isLinearWeight(name, shape)).toBe(false));
});

describe('splitRank', () => {
  const s = new Float64Array([2.618034, 2.302776, 1.302776, 0.381966]); // fractions .396 .745 .942 1
  it('is the index of the first cumulative fraction strictly above alpha', () => {
    expect([0, 0.3, 0.396, 0.5, 0.8, 0.95, 0.999].map((a) => splitRank(s, a))).toEqual([0, 0, 0, 1, 2, 3, 3]);
  });
  it('is 0 at alpha = 1, for zero singular values and for an empty spectrum', () => {
    expect(splitRank(s, 1)).toBe(0);
    expect(splitRank(new Float64Array(3), 0.5)).toBe(0);
    expect(splitRank(new Float64Array(0), 0.5)).toBe(0);
  });
});

describe('projectLinearWeight', () => {
  it.each([
    [6, 4],
    [4, 6],
    [5, 5],
  ])('thin and full-SVD forms agree to 1e-12 on %ix%i for alpha in {0, .3, .5, .9, 1}', (m, n) => {
    const delta = random(m * n, m * 10 + n);
    const tau = random(m * n, m * 10 + n + 1);
    for (const alpha of [0, 0.3, 0.5, 0.9, 1]) {
      for (const zeroDiagonal of [true, false]) {
        const thin = projectLinearWeight(delta, tau, m, n, { alpha, zeroDiagonal });
        const full = projectLinearWeightFull(delta, tau, m, n, { alpha, zeroDiagonal });
        expect(maxDiff(thin.projected, full)).toBeLessThan(1e-12);
        if (alpha === 0 || alpha === 1) expect(thin.stats.protectedRank).toBe(0);
      }
    }
  });

  it('reports consistent diagnostics: removed energy = block + remaining diagonal, Pythagoras holds', () => {
    const [m, n] = [7, 5];
    const delta = random(m * n, 1);
    const tau = random(m * n, 2);
    const { s, u, v, k } = svdThin(delta, m, n);
    const coef = (i: number, j: number) => {
      let x = 0;
      for (let a = 0; a < m; a++) for (let b = 0; b < n; b++) x += u[a * k + i]! * tau[a * n + b]! * v[b * k + j]!;
      return x;
    };
    const tauSq = sumSq(tau);
    for (const alpha of [0.3, 0.6, 0.9]) {
      const r = splitRank(s, alpha);
      let block = 0;
      for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) block += coef(i, j) ** 2;
      let diagAll = 0;
      let diagRest = 0;
      for (let i = 0; i < k; i++) {
        diagAll += coef(i, i) ** 2;
        if (i >= r) diagRest += coef(i, i) ** 2;
      }
      const on = projectLinearWeight(delta, tau, m, n, { alpha, zeroDiagonal: true });
      const off = projectLinearWeight(delta, tau, m, n, { alpha, zeroDiagonal: false });
      expect(on.stats.protectedRank).toBe(r);
      expect(on.stats.numericalRank).toBe(k);
      expect(on.stats.tauNorm).toBeCloseTo(Math.sqrt(tauSq), 13);
      expect(on.stats.blockOverlap).toBeCloseTo(block / tauSq, 13);
      expect(on.stats.diagonalOverlap).toBeCloseTo(diagAll / tauSq, 13);
      expect(on.stats.removedEnergy).toBeCloseTo((block + diagRest) / tauSq, 13);
      expect(off.stats.removedEnergy).toBeCloseTo(block / tauSq, 13);
      for (const p of [on, off]) {
        const removedSq = sumSq(tau.map((x, i) => x - p.projected[i]!));
        expect(sumSq(p.projected) + removedSq).toBeCloseTo(tauSq, 12);
      }
    }
  });

  it('returns tau unchanged when the merged task vector is zero', () => {
    const tau = random(12, 4);
    const p = projectLinearWeight(new Float64Array(12), tau, 3, 4, { alpha: 0.5, zeroDiagonal: true });
    expect([...p.projected]).toEqual([...tau]);
    expect(p.stats).toMatchObject({ protectedRank: 0, numericalRank: 0, removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0 });
    expect([...projectLinearWeightFull(new Float64Array(12), tau, 3, 4, { alpha: 0.5, zeroDiagonal: true })]).toEqual([...tau]);
  });

  it('gives zero ratios for a zero task vector', () => {
    const p = projectLinearWeight(random(12, 5), new Float64Array(12), 4, 3, { alpha: 0.5, zeroDiagonal: true });
    expect([...p.projected]).toEqual(new Array(12).fill(0));
    expect(p.stats).toMatchObject({ tauNorm: 0, removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0 });
  });

  it('skips the diagonal of (numerically) zero singular values of a rank-deficient delta', () => {
    // delta = 3 e0 e1^T + e2 e3^T (rank 2 in 5x5); tau = identity-like: its diagonal on the null-space pairs is basis-dependent.
    const delta = new Float64Array(25);
    delta[0 * 5 + 1] = 3;
    delta[2 * 5 + 3] = 1;
    const tau = random(25, 6);
    const p = projectLinearWeight(delta, tau, 5, 5, { alpha: 0.9, zeroDiagonal: true });
    expect(p.stats.numericalRank).toBe(2);
    expect(p.stats.protectedRank).toBe(1);
    // Expected: remove the block coefficient on (u0, v0) = (e0, e1) and the diagonal one on (e2, e3); nothing else.
    const expected = tau.slice();
    expected[0 * 5 + 1] = 0;
    expected[2 * 5 + 3] = 0;
    expect(maxDiff(p.projected, expected)).toBeLessThan(1e-14);
    expect(maxDiff(projectLinearWeightFull(delta, tau, 5, 5, { alpha: 0.9, zeroDiagonal: true }), expected)).toBeLessThan(1e-14);
    // A negative rankEps removes every diagonal entry, as the official code does (then 5 coefficients go).
    const all = projectLinearWeight(delta, tau, 5, 5, { alpha: 0.9, zeroDiagonal: true, rankEps: -1 });
    expect(all.stats.numericalRank).toBe(5);
    expect(all.stats.removedEnergy).toBeGreaterThan(p.stats.removedEnergy);
  });

  it('keeps the components of tau outside the column and row spaces of delta (m != n)', () => {
    // fc1-like 6x3: delta lives in rows 0..2; tau's rows 3..5 are in the left null space and must survive as is.
    const delta = new Float64Array(18);
    delta.set(random(9, 7), 0);
    const tau = random(18, 8);
    const p = projectLinearWeight(delta, tau, 6, 3, { alpha: 0.5, zeroDiagonal: true });
    expect(maxDiff(p.projected.subarray(9), tau.subarray(9))).toBe(0);
    expect(maxDiff(p.projected.subarray(0, 9), tau.subarray(0, 9))).toBeGreaterThan(1e-3);
  });
});

/** The OPCM toy of methods.md section 14: one 4x4 Linear W and a bias b, theta0 = 0, three models. */
const W = [
  [2, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 2],
  [0, 1, 1, 0, 1, 0, 0, 2, 0, 2, 1, 0, 1, 0, 0, 1],
  [1, 0, 0, 1, 0, 0, 3, 0, 0, 1, 0, 0, 2, 0, 1, 0],
];
const B = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 1]];
const toyBase = model({ 'fc.weight': [[4, 4], new Array(16).fill(0)], 'fc.bias': [[4], [0, 0, 0, 0]] });
const toyModels = W.map((w, t) => model({ 'fc.weight': [[4, 4], w], 'fc.bias': [[4], B[t]!] }));

describe('OPCM toy fixture (methods.md 14)', () => {
  it('has the documented step-2 SVD of delta = W1', () => {
    const { s } = svdThin(Float64Array.from(W[0]!), 4, 4);
    expect(maxDiff(s, [2.618034, 2.302776, 1.302776, 0.381966])).toBeLessThan(1e-6);
  });

  // [alpha, zeroDiagonal, 1-based step, split_rank, N-bar, ||R||, lambda, merged b]
  const table: [number, boolean, number, number, number, number, number, number[]][] = [
    [0.5, true, 2, 1, 3.872983, 4.971457, 1.283625, [0.779044, 0.779044, 0, 0]],
    [0.5, true, 3, 1, 4.145461, 6.220638, 1.50059, [0.666404, 0.666404, 1.332809, 0.666404]],
    [0.8, true, 2, 2, 3.872983, 4.947739, 1.277501, [0.782778, 0.782778, 0, 0]],
    [0.8, true, 3, 2, 4.145461, 6.156243, 1.485056, [0.673375, 0.673375, 1.34675, 0.673375]],
    [0.5, false, 3, 1, 4.145461, 7.493688, 1.807685, [0.553194, 0.553194, 1.106387, 0.553194]],
    [0.8, false, 3, 2, 4.145461, 6.366399, 1.535752, [0.651147, 0.651147, 1.302294, 0.651147]],
  ];
  it.each(table)('alpha %f, zero_diagonal %s, step %i: split rank, N-bar, ||R||, lambda and b', (alpha, zeroDiagonal, step, r, meanNorm, rNorm, lambda, b) => {
    const merged: RefModel[] = [];
    const { steps } = runContinualReference('opcm', { alpha, zero_diagonal: zeroDiagonal }, toyBase, toyModels, (s) => merged.push(s.merged));
    const d = steps[step - 1]!;
    expect(d.layers.map((l) => [l.tensor, l.protectedRank])).toEqual([['fc.weight', r]]);
    expect(Math.abs(d.meanNorm - meanNorm)).toBeLessThan(1e-5);
    expect(Math.abs(d.unscaledNorm! - rNorm)).toBeLessThan(1e-5);
    expect(Math.abs(d.lambda! - lambda)).toBeLessThan(1e-5);
    expect(maxDiff(merged[step - 1]!.get('fc.bias')!.data, b)).toBeLessThan(1e-5);
    expect(Math.abs(d.mergedNorm - d.meanNorm)).toBeLessThan(1e-12);
  });

  it('agrees to 1e-10 with 12-digit values of numpy.linalg.svd (full_matrices) running the official loop', () => {
    // [alpha, zeroDiagonal, ||R|| at step 3, lambda at step 3]; computed outside the repo with numpy 2.4 (LAPACK gesdd).
    const precise: [number, boolean, number, number][] = [
      [0.5, true, 6.220637837897, 1.500590190545],
      [0.8, true, 6.156243086195, 1.485056392364],
      [0.5, false, 7.493688103169, 1.807685184646],
      [0.8, false, 6.366398750741, 1.535751761059],
    ];
    for (const [alpha, zeroDiagonal, rNorm, lambda] of precise) {
      const d = runContinualReference('opcm', { alpha, zero_diagonal: zeroDiagonal }, toyBase, toyModels).steps[2]!;
      expect(Math.abs(d.unscaledNorm! - rNorm)).toBeLessThan(1e-10);
      expect(Math.abs(d.lambda! - lambda)).toBeLessThan(1e-10);
    }
    const w = runContinualReference('opcm', { alpha: 0.8 }, toyBase, toyModels).merged.get('fc.weight')!.data;
    const wPrecise = [
      0.829156370643, 1.307921338308, 0.083878524684, -0.072356460184, 0.20212995475, -0.460621805558, 0.835203187758, 1.745160390233,
      0.599745902375, 0.989084334622, 1.342888570081, -0.647793643573, 0.56243028237, -0.688831253215, 1.005334438467, 1.497236306556,
    ];
    expect(maxDiff(w, wPrecise)).toBeLessThan(1e-10);
  });

  it('reproduces the merged W at step 3 for alpha .8 with the diagonal removed', () => {
    const expected = [
      [0.829156, 1.307921, 0.083879, -0.072356],
      [0.20213, -0.460622, 0.835203, 1.74516],
      [0.599746, 0.989084, 1.342889, -0.647794],
      [0.56243, -0.688831, 1.005334, 1.497236],
    ].flat();
    const { merged, steps } = runContinualReference('opcm', { alpha: 0.8 }, toyBase, toyModels);
    expect(maxDiff(merged.get('fc.weight')!.data, expected)).toBeLessThan(1e-5);
    expect(steps[0]).toMatchObject({ step: 0, modelIndex: 0, lambda: 1, sqrtT: 1, layers: [] });
    expect(steps[0]!.taskVectorNorm).toBeCloseTo(Math.sqrt(15), 14);
  });
});

/** Random model: two Linear weights (tall and wide), biases, a LayerNorm, an embedding and a class embedding. */
function randomModel(seed: number, scale: number): RefModel {
  const shapes: Record<string, number[]> = {
    'embeddings.class_embedding': [4],
    'embeddings.position_embedding.weight': [3, 4],
    'encoder.layers.0.mlp.fc1.weight': [6, 4],
    'encoder.layers.0.mlp.fc1.bias': [6],
    'encoder.layers.0.mlp.fc2.weight': [4, 6],
    'encoder.layers.0.layer_norm1.weight': [4],
  };
  return new Map(Object.entries(shapes).map(([name, shape], i) => {
    const len = shape.reduce((a, b) => a * b, 1);
    return [name, { shape, data: random(len, seed * 100 + i, scale) }];
  }));
}

describe('OPCM invariants', () => {
  const base = randomModel(1, 1);
  const models = [2, 3, 4, 5, 6].map((s) => randomModel(s, 1 + s / 10));

  it.each(['merge', 'keep-first'])('keeps ||M_k - theta0|| = N-bar_k and lambda_k = ||R_k|| / N-bar_k (class_embedding %s)', (classEmbedding) => {
    const { steps } = runContinualReference('opcm', { class_embedding: classEmbedding }, base, models);
    expect(steps).toHaveLength(5);
    for (const d of steps) {
      expect(Math.abs(d.mergedNorm - d.meanNorm)).toBeLessThan(1e-12 * d.meanNorm);
      expect(d.lambda! * d.meanNorm).toBeCloseTo(d.unscaledNorm!, 12);
      if (d.step > 0) expect(d.layers.map((l) => l.tensor)).toEqual(['encoder.layers.0.mlp.fc1.weight', 'encoder.layers.0.mlp.fc2.weight']);
    }
  });

  it("keep-first leaves class_embedding at the first model's value, only rescaled", () => {
    const { merged, steps } = runContinualReference('opcm', { class_embedding: 'keep-first' }, base, models);
    const factor = steps.slice(1).reduce((f, d) => f * (d.meanNorm / d.unscaledNorm!), 1);
    const name = 'embeddings.class_embedding';
    const expected = base.get(name)!.data.map((x, i) => x + (models[0]!.get(name)!.data[i]! - x) * factor);
    expect(maxDiff(merged.get(name)!.data, expected)).toBeLessThan(1e-13);
    const merge = runContinualReference('opcm', {}, base, models).merged;
    expect(maxDiff(merge.get(name)!.data, expected)).toBeGreaterThan(1e-3);
    expect(isClassEmbedding(name)).toBe(true);
    expect(isClassEmbedding('class_embedding')).toBe(true);
    expect(isClassEmbedding('embeddings.class_embedding_proj')).toBe(false);
  });

  it('gives lambda_k = sqrt(k + 1) for mutually orthogonal task vectors of equal norm (k + 1 = 2..6)', () => {
    // tau_t = 2 e_t e_{t+6}^T in a 12x12 Linear weight plus e_t in a bias: disjoint rows and columns, so neither the
    // block nor the diagonal of the merged vector's singular pairs touches the next task vector.
    const zero = model({ 'layer.weight': [[12, 12], new Array(144).fill(0)], 'layer.bias': [[6], new Array(6).fill(0)] });
    const ms = Array.from({ length: 6 }, (_, t) => {
      const w = new Array(144).fill(0);
      w[t * 12 + t + 6] = 2;
      const b = new Array(6).fill(0);
      b[t] = 1;
      return model({ 'layer.weight': [[12, 12], w], 'layer.bias': [[6], b] });
    });
    for (const alpha of [0.5, 0.8]) {
      const { steps } = runContinualReference('opcm', { alpha }, zero, ms);
      steps.forEach((d: StepDiagnostics) => {
        expect(Math.abs(d.lambda! - Math.sqrt(d.step + 1))).toBeLessThan(1e-12);
        expect(d.sqrtT).toBe(Math.sqrt(d.step + 1));
        expect(d.meanNorm).toBeCloseTo(Math.sqrt(5), 14);
        for (const l of d.layers) expect(l.removedEnergy).toBeLessThan(1e-24);
      });
    }
  });

  it('names the tensor when a Linear weight holds NaN', () => {
    const bad = randomModel(9, 1);
    bad.get('encoder.layers.0.mlp.fc2.weight')!.data[3] = NaN;
    expect(() => runContinualReference('opcm', {}, base, [bad, models[0]!])).toThrow(/tensor encoder\.layers\.0\.mlp\.fc2\.weight: .*NaN/);
  });

  it('merges a single model into that model', () => {
    const { merged, steps } = runContinualReference('opcm', {}, base, [models[0]!]);
    expect(steps).toHaveLength(1);
    for (const [name, t] of models[0]!) expect([...merged.get(name)!.data]).toEqual([...t.data]);
  });

  it('sets M = theta0 and lambda = 0 when the merged task vector cancels out', () => {
    // Only non-projected tensors: tau_2 = -tau_1 gives R = 0.
    const zero = model({ b: [[2], [0, 0]] });
    const { merged, steps } = runContinualReference('opcm', {}, zero, [model({ b: [[2], [1, 2]] }), model({ b: [[2], [-1, -2]] })]);
    expect([...merged.get('b')!.data]).toEqual([0, 0]);
    expect(steps[1]!.lambda).toBe(0);
    expect(steps[1]!.mergedNorm).toBe(0);
  });
});
