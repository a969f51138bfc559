import { describe, expect, it } from 'vitest';
import { AlignmentError, ConfigError } from '../../src/engine/errors';
import { breadcrumbs } from '../../src/engine/methods/breadcrumbs';
import { consensus } from '../../src/engine/methods/consensus';
import { dare } from '../../src/engine/methods/dare';
import { lines } from '../../src/engine/methods/lines';
import { magmax } from '../../src/engine/methods/magmax';
import { modelStock } from '../../src/engine/methods/modelStock';
import { resolveParams, type MethodSpec, type ParamValues } from '../../src/engine/methods/params';
import { checkModelCount } from '../../src/engine/methods/registry';
import { slerp } from '../../src/engine/methods/slerp';
import { tallMasks } from '../../src/engine/methods/tallMasks';
import { ties } from '../../src/engine/methods/ties';
import { mergeReference, tallMaskModels } from '../../src/engine/reference/mergeReference';
import { dareKeepMask } from '../../src/engine/reference/methods/dare';
import { isLinearWeight } from '../../src/engine/reference/linearWeights';
import { consensusMask, maskCounts, tallTaskMasks } from '../../src/engine/reference/methods/masks';
import { electSigns } from '../../src/engine/reference/methods/signElect';
import { slerpVectors } from '../../src/engine/reference/methods/slerp';
import { tiesThreshold, topCountMask } from '../../src/engine/reference/methods/topk';
import { tiesTrim } from '../../src/engine/reference/methods/ties';
import { refTaskVectors, sortedNames, type RefModel } from '../../src/engine/reference/refModel';
import { rngKey, rngUniform, stringId } from '../../src/engine/rng';

// ---------- helpers ----------

/** A model from {name: [shape, values]}. */
function model(tensors: Record<string, [number[], number[]]>): RefModel {
  return new Map(Object.entries(tensors).map(([name, [shape, values]]) => [name, { shape, data: Float64Array.from(values) }]));
}

/** One-tensor models: base of zeros and one model per row. */
function rowsAsModels(rows: number[][], name = 'w'): { base: RefModel; models: RefModel[] } {
  const n = rows[0]!.length;
  return { base: model({ [name]: [[n], new Array(n).fill(0)] }), models: rows.map((r) => model({ [name]: [[n], r] })) };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small CLIP-like model: 1-D, 2-D and 4-D tensors, inside and outside two residual blocks. */
const SHAPES: Record<string, number[]> = {
  'embeddings.class_embedding': [4],
  'embeddings.patch_embedding.weight': [4, 3, 2, 2],
  'embeddings.position_embedding.weight': [5, 4],
  'encoder.layers.0.mlp.fc1.bias': [6],
  'encoder.layers.0.mlp.fc1.weight': [6, 4],
  'encoder.layers.0.layer_norm1.weight': [4],
  'encoder.layers.1.self_attn.q_proj.weight': [4, 4],
  'encoder.layers.1.self_attn.q_proj.bias': [4],
  'post_layernorm.bias': [4],
};

function randomModel(rand: () => number, scale = 1, shapes = SHAPES): RefModel {
  const m: RefModel = new Map();
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    m.set(name, { shape, data: Float64Array.from({ length: n }, () => (rand() * 2 - 1) * scale) });
  }
  return m;
}

function randomSetup(seed: number, tasks = 3): { base: RefModel; models: RefModel[] } {
  const rand = prng(seed);
  const base = randomModel(rand);
  const models = Array.from({ length: tasks }, () => {
    const delta = randomModel(rand, 0.1);
    return new Map([...base].map(([n, b]) => [n, { shape: b.shape, data: b.data.map((x, i) => x + delta.get(n)!.data[i]!) }]));
  });
  return { base, models };
}

function expectModelsClose(actual: RefModel, expected: RefModel, tol = 1e-12): void {
  expect(sortedNames(actual)).toEqual(sortedNames(expected));
  for (const [name, t] of expected) {
    const a = actual.get(name)!;
    expect(a.shape, name).toEqual(t.shape);
    let worst = 0;
    t.data.forEach((x, i) => { worst = Math.max(worst, Math.abs(a.data[i]! - x)); });
    expect(worst, `max |diff| in ${name}`).toBeLessThanOrEqual(tol);
  }
}

/** Compares one tensor of `actual` with expected values. */
function expectTensorClose(actual: RefModel, name: string, expected: ArrayLike<number>, tol = 1e-12): void {
  const a = actual.get(name)!.data;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(a[i]! - expected[i]!));
  expect(a.length, name).toBe(expected.length);
  expect(worst, `max |diff| in ${name}`).toBeLessThanOrEqual(tol);
}

function values(m: RefModel, name = 'w'): number[] {
  return Array.from(m.get(name)!.data);
}

function expectValues(actual: number[], expected: number[], digits = 10): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((x, i) => expect(x, `entry ${i}`).toBeCloseTo(expected[i]!, digits));
}

const merge = (id: string, params: ParamValues, s: { base: RefModel; models: RefModel[] }) => mergeReference(id, params, s.base, s.models);

/** Flattens a model (sorted names) into one array. */
function flat(m: RefModel): number[] {
  return sortedNames(m).flatMap((n) => Array.from(m.get(n)!.data));
}

// ---------- methods.md section 14 fixtures ----------

describe('methods.md 14 fixtures', () => {
  const X = [
    [0.5, -0.1, 0.3, -0.8, 0.05, 0],
    [-0.4, 0.2, 0.6, 0.1, -0.05, 0],
    [0.3, -0.7, -0.2, 0.9, 0.01, 0],
  ];

  it('TIES global, k = 0.5: trims to 4 of 6 (">="), elects [+,-,+,+,+,+], dis-mean and dis-sum', () => {
    const s = rowsAsModels(X);
    const taus = refTaskVectors(s.base, s.models);
    const trimmed = taus.map((t) => tiesTrim(t, 0.5, 'global'));
    expect(trimmed.map((t) => values(t))).toEqual([
      [0.5, -0.1, 0.3, -0.8, 0, 0],
      [-0.4, 0.2, 0.6, 0.1, 0, 0],
      [0.3, -0.7, -0.2, 0.9, 0, 0],
    ]);
    expect(values(electSigns(trimmed, 'global'))).toEqual([1, -1, 1, 1, 1, 1]);
    expectValues(values(merge('ties', { k: 0.5, merge: 'mean', lambda: 1 }, s)), [0.4, -0.4, 0.45, 0.5, 0, 0]);
    expectValues(values(merge('ties', { k: 0.5, merge: 'sum', lambda: 1 }, s)), [0.8, -0.8, 0.9, 1.0, 0, 0]);
    expectValues(values(merge('ties', { k: 0.5, merge: 'max', lambda: 1 }, s)), [0.5, -0.7, 0.6, 0.9, 0, 0]);
    expectValues(values(merge('ties', { k: 0.5, lambda: 0.3 }, s)), [0.24, -0.24, 0.27, 0.3, 0, 0]);
  });

  const TAU = [
    [0.5, -0.1, 0.3, -0.8],
    [-0.4, 0.2, 0, 0.1],
    [0.3, -0.7, -0.2, 0.05],
  ];

  it('TALL masks and Consensus: masks, counts and tau_cons at lambda .4; counts at .2 and .6', () => {
    const s = rowsAsModels(TAU);
    const taus = refTaskVectors(s.base, s.models);
    const mtl = model({ w: [[4], [0.4, -0.6, 0.1, -0.65]] });
    const masksAt = (lam: number) => tallTaskMasks(taus, mtl, () => lam);
    expect(masksAt(0.4).map((m) => values(m))).toEqual([[1, 0, 1, 1], [1, 0, 0, 0], [1, 1, 1, 0]]);
    expect(values(maskCounts(masksAt(0.4)))).toEqual([3, 1, 2, 1]);
    expect(values(consensusMask(masksAt(0.4), 2))).toEqual([1, 0, 1, 0]);
    expect(values(maskCounts(masksAt(0.2)))).toEqual([3, 2, 2, 1]);
    expect(values(maskCounts(masksAt(0.6)))).toEqual([2, 1, 2, 1]);
    expectValues(values(merge('consensus', { mask_lambda: 0.4, lambda: 1 }, s)), [0.4, 0, 0.1, 0]);
    const tall = tallMaskModels({ mask_lambda: 0.4 }, s.base, s.models);
    expect(tall.map((m) => values(m))).toHaveLength(3);
    expectValues(values(tall[0]!), [0.4, 0, 0.1, -0.65]);
    expectValues(values(tall[1]!), [0.4, 0, 0, 0]);
    expectValues(values(tall[2]!), [0.4, -0.6, 0.1, 0]);
  });

  it('LiNeS ramp: TA, T = 8 (alpha auto = .125), L = 12, beta = .5', () => {
    const ramp = [0.125, 0.170455, 0.215909, 0.261364, 0.306818, 0.352273, 0.397727, 0.443182, 0.488636, 0.534091, 0.579545, 0.625];
    const tensors = ['embeddings.x', ...ramp.map((_, l) => `encoder.layers.${l}.w`)];
    const zero = model(Object.fromEntries(tensors.map((n) => [n, [[1], [0]]])));
    // Task t adds (t + 1) / 36 everywhere, so sum_t tau_t = 1 and the merged entry is the scale itself.
    const models = Array.from({ length: 8 }, (_, t) => model(Object.fromEntries(tensors.map((n) => [n, [[1], [(t + 1) / 36]]]))));
    const out = mergeReference('lines', { beta: 0.5 }, zero, models);
    expect(out.get('embeddings.x')!.data[0]).toBeCloseTo(0.125, 12);
    ramp.forEach((v, l) => expect(out.get(`encoder.layers.${l}.w`)!.data[0], `layer ${l}`).toBeCloseTo(v, 6));
  });

  it('Breadcrumbs official row-wise: gamma .1 removes the top entry, density .3 keeps the next three', () => {
    const row = [0.9, -0.05, 0.3, -0.6, 0.02, 0.15, -0.25, 0.01, 0.4, -0.08];
    const expected = [0, 0, 0.3, -0.6, 0, 0, 0, 0, 0.4, 0];
    const s = { base: model({ w: [[2, 10], new Array(20).fill(0)] }), models: [model({ w: [[2, 10], [...row, ...row.map((x) => -x)]] })] };
    const out = values(merge('breadcrumbs', { density: 0.3, gamma: 0.1, lambda: 1 }, s));
    expectValues(out, [...expected, ...expected.map((x) => -x)]);
    // One row is the whole tensor, so mergekit's tensor scope agrees here (top 1, bottom 6).
    const one = { base: model({ w: [[10], new Array(10).fill(0)] }), models: [model({ w: [[10], row] })] };
    expectValues(values(merge('breadcrumbs', { density: 0.3, gamma: 0.1, lambda: 1, scope: 'tensor' }, one)), expected);
  });

  it('Model Stock: w0 = 0, w1 = [1,0,1], w2 = [1,1,0] gives cos .5, t = 2/3', () => {
    const s = { base: model({ w: [[3], [0, 0, 0]] }), models: [model({ w: [[3], [1, 0, 1]] }), model({ w: [[3], [1, 1, 0]] })] };
    expectValues(values(merge('model_stock', {}, s)), [2 / 3, 1 / 3, 1 / 3], 12);
    expectValues(values(merge('model_stock', { angle: 'angle' }, s)), [2 / 3, 1 / 3, 1 / 3], 7);
  });

  it('SLERP: a = [1,0], b = [0,2], t = .5 gives [.707107, 1.414214] (unnormalised vectors)', () => {
    const s = { base: model({ w: [[2], [0, 0]] }), models: [model({ w: [[2], [1, 0]] }), model({ w: [[2], [0, 2]] })] };
    expectValues(values(merge('slerp', {}, s)), [Math.SQRT1_2, Math.SQRT2], 12);
  });
});

// ---------- property tests on random models ----------

describe('Task Arithmetic and simple average', () => {
  it('TA with lambda = 1/T equals the simple average', () => {
    for (const tasks of [3, 4]) {
      const s = randomSetup(10 + tasks, tasks);
      expectModelsClose(merge('task_arithmetic', { lambda: 1 / tasks }, s), merge('simple_average', {}, s), 1e-12);
    }
  });

  it('anisotropic lambda: per-task and table settings scale each task per tensor', () => {
    const s = randomSetup(3);
    const taus = refTaskVectors(s.base, s.models);
    const out = merge('task_arithmetic', { lambda: { per_task: [0.1, [0, 1], [{ filter: 'mlp', value: 2 }, { value: 0 }]] } }, s);
    for (const [name, b] of s.base) {
      const depth = name.includes('layers.1.') ? 1 : 0;
      const l2 = name.includes('mlp') ? 2 : 0;
      const expected = b.data.map((x, i) => x + 0.1 * taus[0]!.get(name)!.data[i]! + depth * taus[1]!.get(name)!.data[i]! + l2 * taus[2]!.get(name)!.data[i]!);
      expectTensorClose(out, name, expected);
    }
    const table = merge('task_arithmetic', { lambda: { table: { 'post_layernorm.bias': [1, 0, 0] }, default: 0 } }, s);
    for (const [name, b] of s.base) {
      const expected = name === 'post_layernorm.bias' ? s.models[0]!.get(name)!.data : b.data;
      expectTensorClose(table, name, expected);
    }
  });
});

/** Independent flat TIES (global scope) used as an oracle: rows = task vectors flattened. */
function tiesOracle(rows: number[][], k: number, mergeFn: 'sum' | 'mean' | 'max'): number[] {
  const d = rows[0]!.length;
  const trimmed = rows.map((r) => {
    const sorted = r.map(Math.abs).sort((a, b) => a - b);
    const kk = d - Math.floor(d * k);
    const thr = kk === 0 ? -Infinity : sorted[kk - 1]!;
    return r.map((x) => (Math.abs(x) >= thr ? x : 0));
  });
  const gamma = Array.from({ length: d }, (_, j) => Math.sign(trimmed.reduce((s, r) => s + r[j]!, 0)));
  const majority = Math.sign(gamma.reduce((a, b) => a + b, 0));
  const g = gamma.map((x) => (x === 0 ? majority : x));
  return g.map((sg, j) => {
    const kept = trimmed.map((r) => r[j]!).filter((x) => x !== 0 && Math.sign(x) === sg);
    if (mergeFn === 'sum') return kept.reduce((a, b) => a + b, 0);
    if (mergeFn === 'mean') return kept.reduce((a, b) => a + b, 0) / Math.max(kept.length, 1);
    return kept.length ? Math.max(...kept.map(Math.abs)) * sg : 0;
  });
}

describe('TIES', () => {
  it('global scope matches an independent flat implementation for sum, mean and max', () => {
    const s = randomSetup(21, 4);
    const taus = refTaskVectors(s.base, s.models).map(flat);
    const base = flat(s.base);
    for (const m of ['sum', 'mean', 'max'] as const) {
      for (const k of [0.1, 0.2, 0.5, 1]) {
        const out = flat(merge('ties', { k, merge: m, lambda: 0.7 }, s));
        const oracle = tiesOracle(taus, k, m);
        out.forEach((x, j) => expect(x, `${m} k=${k} entry ${j}`).toBeCloseTo(base[j]! + 0.7 * oracle[j]!, 12));
      }
    }
  });

  it('k = 1 with sum equals masked Task Arithmetic (only entries agreeing with the sign of the sum)', () => {
    const s = randomSetup(22, 3);
    const taus = refTaskVectors(s.base, s.models);
    const out = merge('ties', { k: 1, merge: 'sum', lambda: 0.5 }, s);
    for (const [name, b] of s.base) {
      const cols = taus.map((t) => t.get(name)!.data);
      const expected = b.data.map((x, j) => {
        const sign = Math.sign(cols.reduce((a, c) => a + c[j]!, 0));
        return x + 0.5 * cols.reduce((a, c) => a + (Math.sign(c[j]!) === sign ? c[j]! : 0), 0);
      });
      expectTensorClose(out, name, expected);
    }
  });

  it('global trim keeps int(d*k) + 1 entries without ties (the ">=" rule), all entries at k = 1', () => {
    const s = randomSetup(23, 3);
    const tau = refTaskVectors(s.base, s.models)[0]!;
    const d = flat(tau).length;
    for (const k of [0.1, 0.25, 0.5]) expect(flat(tiesTrim(tau, k, 'global')).filter((x) => x !== 0).length).toBe(Math.trunc(d * k) + 1);
    expect(flat(tiesTrim(tau, 1, 'global'))).toEqual(flat(tau));
    expect(tiesThreshold(Float64Array.from([3, -1, 2, 2]), 0.5)).toBe(2);
  });

  it('tensor scope keeps exactly int(k*numel) per tensor, lower index first among equal magnitudes', () => {
    const s = randomSetup(24, 3);
    const tau = refTaskVectors(s.base, s.models)[0]!;
    const trimmed = tiesTrim(tau, 0.3, 'tensor');
    for (const [name, t] of trimmed) expect(Array.from(t.data).filter((x) => x !== 0).length, name).toBe(Math.trunc(0.3 * t.data.length));
    expect(Array.from(topCountMask(Float64Array.from([1, -2, 2, 1, -2]), 2))).toEqual([0, 1, 1, 0, 0]);
  });

  it('tensor scope: a zero sum elects +1 (mergekit), global scope fills it with the majority sign', () => {
    const s = rowsAsModels([[1, 1, 1, -1], [-1, 1, 1, -1], [0, 1, -1, 0]]);
    const taus = refTaskVectors(s.base, s.models);
    expect(values(electSigns(taus, 'tensor'))).toEqual([1, 1, 1, -1]);
    expect(values(electSigns(taus, 'global'))).toEqual([1, 1, 1, -1]);
    const neg = rowsAsModels([[1, -1, -1, -1], [-1, -1, 1, 0]]);
    const nt = refTaskVectors(neg.base, neg.models);
    expect(values(electSigns(nt, 'tensor'))).toEqual([1, -1, 1, -1]);
    expect(values(electSigns(nt, 'global'))).toEqual([-1, -1, -1, -1]);
    // mergekit ties (normalize: true) = tensor scope + mean: the zero-sum column keeps task 1's +1.
    expectValues(values(mergeReference('ties', { k: 1, scope: 'tensor', merge: 'mean', lambda: 1 }, neg.base, neg.models)), [1, -1, 1, -1]);
  });

  it('max merge with per-task lambda uses the lambda of the winning task', () => {
    const s = rowsAsModels([[0.5, 0.2], [0.3, 0.9]]);
    expectValues(values(merge('ties', { k: 1, merge: 'max', lambda: { per_task: [1, 10] } }, s)), [0.5, 9]);
  });
});

describe('DARE', () => {
  it('p = 0 equals the `then` method exactly (TA and TIES)', () => {
    const s = randomSetup(31, 3);
    expectModelsClose(merge('dare', { p: 0 }, s), merge('task_arithmetic', {}, s), 0);
    expectModelsClose(merge('dare', { p: 0, then: 'ties', k: 0.3, merge: 'mean', lambda: 0.5 }, s), merge('ties', { k: 0.3, merge: 'mean', lambda: 0.5 }, s), 0);
  });

  it('drops a fraction p within sampling error, uses the shared RNG rule, and is deterministic per seed', () => {
    const n = 20000;
    for (const p of [0.1, 0.5, 0.9]) {
      const keep = dareKeepMask('some.tensor', n, 2, 7, p);
      const dropped = 1 - keep.reduce((a, b) => a + b, 0) / n;
      expect(Math.abs(dropped - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
      const key = rngKey(7, 2, stringId('some.tensor'));
      for (const i of [0, 1, 999, n - 1]) expect(keep[i]).toBe(rngUniform(key, i) >= Math.fround(p) ? 1 : 0);
    }
    const s = randomSetup(32, 3);
    expectModelsClose(merge('dare', { seed: 5 }, s), merge('dare', { seed: 5 }, s), 0);
    expect(flat(merge('dare', { seed: 5 }, s))).not.toEqual(flat(merge('dare', { seed: 6 }, s)));
  });

  it('kept entries are rescaled by 1/(1-p) (or not), per task and tensor mask', () => {
    const s = randomSetup(33, 3);
    const taus = refTaskVectors(s.base, s.models);
    for (const rescale of [true, false]) {
      const out = merge('dare', { p: 0.4, seed: 3, rescale, lambda: 1 }, s);
      for (const [name, b] of s.base) {
        const masks = taus.map((_, t) => dareKeepMask(name, b.data.length, t, 3, 0.4));
        const expected = b.data.map((x, i) => x + taus.reduce((a, tau, t) => a + (masks[t]![i] ? tau.get(name)!.data[i]! / (rescale ? 0.6 : 1) : 0), 0));
        expectTensorClose(out, name, expected);
      }
    }
  });

  it('then = ties applies the TIES trim after the drop', () => {
    const s = randomSetup(34, 3);
    const dropped = refTaskVectors(s.base, s.models).map((tau, t) => new Map([...tau].map(([name, x]) => {
      const keep = dareKeepMask(name, x.data.length, t, 0, 0.5);
      return [name, { shape: x.shape, data: x.data.map((v, i) => (keep[i] ? v * 2 : 0)) }];
    })));
    const zero = new Map([...s.base].map(([n, b]) => [n, { shape: b.shape, data: new Float64Array(b.data.length) }]));
    const viaTies = mergeReference('ties', { k: 0.2, lambda: 0.3 }, zero, dropped);
    const out = merge('dare', { then: 'ties' }, s);
    for (const [name, b] of s.base) {
      const expected = b.data.map((x, i) => x + viaTies.get(name)!.data[i]!);
      expectTensorClose(out, name, expected, 1e-15);
    }
  });

  it('linear_only drops only 2-D Linear ".weight" matrices', () => {
    expect(isLinearWeight('encoder.layers.0.mlp.fc1.weight', [6, 4])).toBe(true);
    expect(isLinearWeight('transformer.h.0.attn.c_attn.weight', [768, 2304])).toBe(true);
    expect(isLinearWeight('encoder.layers.0.mlp.fc1.bias', [6])).toBe(false);
    expect(isLinearWeight('encoder.layers.0.layer_norm1.weight', [4])).toBe(false);
    expect(isLinearWeight('embeddings.position_embedding.weight', [50, 768])).toBe(false);
    expect(isLinearWeight('embeddings.patch_embedding.weight', [768, 3, 32, 32])).toBe(false);
    expect(isLinearWeight('transformer.wte.weight', [50257, 768])).toBe(false);
    expect(isLinearWeight('model.visual.transformer.resblocks.0.attn.in_proj_weight', [2304, 768])).toBe(false);
    const s = randomSetup(35, 3);
    const out = merge('dare', { linear_only: true, p: 0.9 }, s);
    const ta = merge('task_arithmetic', {}, s);
    for (const [name, t] of s.base) {
      const same = Array.from(out.get(name)!.data).every((x, i) => Math.abs(x - ta.get(name)!.data[i]!) < 1e-15);
      expect(same, name).toBe(!isLinearWeight(name, t.shape));
    }
  });
});

describe('Breadcrumbs', () => {
  it('row scope masks every row along the last dimension of 2-D and 4-D tensors', () => {
    const s = randomSetup(41, 3);
    const out = merge('breadcrumbs', { density: 0.5, gamma: 0.25, lambda: 1 }, s);
    const taus = refTaskVectors(s.base, s.models);
    for (const [name, b] of s.base) {
      const n = b.shape[b.shape.length - 1]!;
      const expected = b.data.slice();
      for (const tau of taus) {
        const d = tau.get(name)!.data;
        for (let r = 0; r < d.length; r += n) {
          const row = Array.from(d.slice(r, r + n));
          const order = row.map((_, i) => i).sort((a, c) => Math.abs(row[c]!) - Math.abs(row[a]!) || a - c);
          const kept = order.slice(Math.trunc(n * 0.25), Math.trunc(n * 0.25) + Math.trunc(n * 0.5));
          for (const i of kept) expected[r + i]! += row[i]!;
        }
      }
      expectTensorClose(out, name, expected, 1e-15);
    }
  });

  it('tensor scope follows mergekit: top reduced when density + gamma > 1, density 1 keeps all', () => {
    const row = [0.9, -0.05, 0.3, -0.6, 0.02, 0.15, -0.25, 0.01, 0.4, -0.08];
    const one = { base: model({ w: [[10], new Array(10).fill(0)] }), models: [model({ w: [[10], row] })] };
    // target 9, top 2, bottom -1 -> top 1, bottom 0: everything but the largest.
    expectValues(values(merge('breadcrumbs', { density: 0.95, gamma: 0.2, lambda: 1, scope: 'tensor' }, one)), [0, ...row.slice(1)]);
    expectValues(values(merge('breadcrumbs', { density: 1, gamma: 0.2, lambda: 1, scope: 'tensor' }, one)), row);
    // gamma 0 (no top removal) keeps the int(density*N) largest, unlike mergekit's empty slice.
    expectValues(values(merge('breadcrumbs', { density: 0.2, gamma: 0, lambda: 1, scope: 'tensor' }, one)), [0.9, 0, 0, -0.6, 0, 0, 0, 0, 0, 0]);
  });
});

describe('Consensus and TALL', () => {
  it('k = 0 equals the `then` method; k > T gives the base', () => {
    const s = randomSetup(51, 3);
    expectModelsClose(merge('consensus', { k: 0 }, s), merge('task_arithmetic', {}, s), 0);
    expectModelsClose(merge('consensus', { k: 0, then: 'ties', ties_k: 0.3, merge: 'mean' }, s), merge('ties', { k: 0.3, merge: 'mean' }, s), 0);
    expectModelsClose(merge('consensus', { k: 4 }, s), s.base, 0);
  });

  it('per-task mask_lambda changes only that task\'s mask', () => {
    const s = rowsAsModels([[0.5, -0.1, 0.3, -0.8], [-0.4, 0.2, 0, 0.1], [0.3, -0.7, -0.2, 0.05]]);
    const tall = tallMaskModels({ mask_lambda: { per_task: [0.4, 0.2, 0.4] } }, s.base, s.models);
    // Task 2 at lambda .2: |tau| > .2 |mtl - tau| gives [1, 1, 0, 0] (at .4 it was [1, 0, 0, 0]); the others as at .4.
    expectValues(values(tall[1]!), [0.4, -0.6, 0, 0]);
    expectValues(values(tall[0]!), [0.4, 0, 0.1, -0.65]);
    expectValues(values(tall[2]!), [0.4, -0.6, 0.1, 0]);
  });

  it('mergeReference refuses tall_masks with a pointer to tallMaskModels', () => {
    const s = randomSetup(52, 3);
    expect(() => merge('tall_masks', {}, s)).toThrow(ConfigError);
    expect(() => merge('tall_masks', {}, s)).toThrow(/tallMaskModels/);
  });
});

describe('LiNeS', () => {
  it('with TA and scalar alpha, beta equals TA with the gradient [alpha, alpha + beta]', () => {
    const s = randomSetup(61, 3);
    expectModelsClose(merge('lines', { alpha: 0.2, beta: 0.5 }, s), merge('task_arithmetic', { lambda: [0.2, 0.7] }, s), 1e-15);
  });

  it('alpha auto = (||sum tau||_1 / ||tau_MTL||_1) / T for TIES', () => {
    const s = randomSetup(62, 3);
    const taus = refTaskVectors(s.base, s.models);
    const l1 = (v: number[]) => v.reduce((a, x) => a + Math.abs(x), 0);
    const sum = flat(taus[0]!).map((_, j) => taus.reduce((a, t) => a + flat(t)[j]!, 0));
    const mtl = tiesOracle(taus.map(flat), 0.2, 'sum');
    const alpha = l1(sum) / l1(mtl) / 3;
    const out = flat(merge('lines', { then: 'ties', beta: 0 }, s));
    const base = flat(s.base);
    out.forEach((x, j) => expect(x).toBeCloseTo(base[j]! + alpha * mtl[j]!, 12));
  });

  it('then = consensus scales the consensus-masked multi-task vector', () => {
    const s = randomSetup(63, 4);
    const viaConsensus = merge('consensus', { lambda: [0.1, 0.4] }, s);
    expectModelsClose(merge('lines', { then: 'consensus', alpha: 0.1, beta: 0.3 }, s), viaConsensus, 1e-15);
  });
});

describe('MagMax', () => {
  it('keeps the entry of largest magnitude, a later model winning ties', () => {
    const s = rowsAsModels([[1, -3, 0.5, 0], [-1, 2, -0.7, 0], [0.2, 2.5, 0.1, 0]]);
    expectValues(values(merge('magmax', { lambda: 1 }, s)), [-1, -3, -0.7, 0]);
    expectValues(values(merge('magmax', { lambda: { per_task: [1, 2, 3] } }, s)), [-2, -3, -1.4, 0]);
  });

  it('matches a per-coordinate maximum on random models', () => {
    const s = randomSetup(71, 4);
    const taus = refTaskVectors(s.base, s.models).map(flat);
    const base = flat(s.base);
    flat(merge('magmax', {}, s)).forEach((x, j) => {
      const best = taus.reduce((b, t) => (Math.abs(t[j]!) >= Math.abs(b) ? t[j]! : b), 0);
      expect(x).toBeCloseTo(base[j]! + 0.5 * best, 14);
    });
  });
});

describe('SLERP', () => {
  it('t = 0 and t = 1 give the two models; parallel tensors use lerp; t may vary by layer', () => {
    const s = randomSetup(81, 2);
    expectModelsClose(merge('slerp', { t: 0 }, s), s.models[0]!, 1e-12);
    expectModelsClose(merge('slerp', { t: 1 }, s), s.models[1]!, 1e-12);
    expectValues(Array.from(slerpVectors(0.25, Float64Array.from([1, 2]), Float64Array.from([2, 4]))), [1.25, 2.5], 14);
    expectValues(Array.from(slerpVectors(0.5, Float64Array.from([1, 0]), Float64Array.from([-1, 0]))), [0, 0], 14);
    const graded = merge('slerp', { t: [0, 1] }, s);
    const deep = 'encoder.layers.1.self_attn.q_proj.bias';
    expectTensorClose(graded, deep, s.models[1]!.get(deep)!.data);
    expectTensorClose(graded, 'post_layernorm.bias', s.models[0]!.get('post_layernorm.bias')!.data);
  });

  it('a zero-norm tensor is not normalised (mergekit): the angle is pi/2', () => {
    const out = slerpVectors(0.5, Float64Array.from([0, 0]), Float64Array.from([3, 4]));
    expectValues(Array.from(out), [3 * Math.SQRT1_2, 4 * Math.SQRT1_2], 14);
    // Two equal tensors of norm 1e-9 stay unnormalised, so their dot is ~1e-18 and the slerp branch runs (not lerp).
    const tiny = Float64Array.from([1e-9, 0]);
    expect(slerpVectors(0.5, tiny, tiny)[0]).toBeCloseTo(2e-9 * Math.SQRT1_2, 20);
  });

  it('stays on the arc: equal-norm inputs give an equal-norm result', () => {
    const a = Float64Array.from([3, 0, 4]);
    const b = Float64Array.from([0, 5, 0]);
    for (const t of [0.1, 0.3, 0.7]) {
      const r = slerpVectors(t, a, b);
      expect(Math.hypot(...r)).toBeCloseTo(5, 12);
    }
  });
});

describe('Model Stock', () => {
  it('identical task vectors give t = 1 (the average); cosine and angle averaging differ for N = 3', () => {
    const s = { base: model({ w: [[2], [1, 1]] }), models: [model({ w: [[2], [2, 1]] }), model({ w: [[2], [3, 1]] })] };
    expectValues(values(merge('model_stock', {}, s)), [2.5, 1], 12);
    const three = {
      base: model({ w: [[2], [0, 0]] }),
      models: [model({ w: [[2], [1, 0]] }), model({ w: [[2], [0, 1]] }), model({ w: [[2], [1, 1]] })],
    };
    // Pairwise cosines 0, .7071, .7071: mean cos .4714 vs cos(mean angle 60 deg) = .5.
    const c = (0 + 2 * Math.SQRT1_2) / 3;
    const tCos = (3 * c) / (1 + 2 * c);
    expectValues(values(merge('model_stock', {}, three)), [tCos * (2 / 3), tCos * (2 / 3)], 12);
    const tAng = 1.5 / (2 * 0.5 + 1 + 1e-8);
    expectValues(values(merge('model_stock', { angle: 'angle' }, three)), [tAng * (2 / 3), tAng * (2 / 3)], 7);
  });
});

// ---------- validation ----------

describe('parameter and input validation', () => {
  const bad = (spec: MethodSpec, raw: Record<string, unknown>, pattern: RegExp) => {
    expect(() => resolveParams(spec, raw)).toThrow(ConfigError);
    expect(() => resolveParams(spec, raw)).toThrow(pattern);
  };

  it('rejects out-of-range values with the allowed range and unknown keys with the allowed names', () => {
    bad(ties, { k: 0 }, /params\.k: .*\(0, 1\]/);
    bad(ties, { k: 1.5 }, /\(0, 1\]/);
    bad(ties, { merge: 'median' }, /sum, mean, max/);
    bad(ties, { scope: 'layer' }, /global, tensor/);
    bad(dare, { p: 1 }, /params\.p: .*\[0, 1\)/);
    bad(dare, { seed: 1.5 }, /integer/);
    bad(dare, { then: 'breadcrumbs' }, /task_arithmetic, ties/);
    bad(breadcrumbs, { scope: 'column' }, /row, tensor/);
    bad(consensus, { k: -1 }, /params\.k/);
    bad(lines, { then: 'dare' }, /task_arithmetic, ties, consensus/);
    bad(modelStock, { angle: 'degrees' }, /cosine, angle/);
    bad(ties, { density: 0.2 }, /unknown parameter.*allowed: k, merge, scope, lambda/);
    bad(magmax, { lambda: 'high' }, /params\.lambda/);
    expect(() => resolveParams(ties, { lambda: 'auto' })).toThrow(ConfigError);
  });

  it('fills defaults, including LiNeS alpha "auto"', () => {
    expect(resolveParams(ties, {})).toEqual({ k: 0.2, merge: 'sum', scope: 'global', lambda: 0.3 });
    expect(resolveParams(lines, {}).alpha).toBe('auto');
    expect(resolveParams(lines, { alpha: 0.1 }).alpha).toBe(0.1);
    expect(resolveParams(dare, {})).toMatchObject({ p: 0.5, rescale: true, seed: 0, then: 'task_arithmetic', linear_only: false, lambda: 0.3 });
    expect(resolveParams(breadcrumbs, {})).toEqual({ density: 0.15, gamma: 0.006, scope: 'row', lambda: 0.2 });
    expect(resolveParams(consensus, {})).toMatchObject({ k: 2, mask_lambda: 0.6, then: 'task_arithmetic', lambda: 0.3 });
    expect(resolveParams(tallMasks, {})).toEqual({ mask_lambda: 0.6 });
    expect(resolveParams(magmax, {})).toEqual({ lambda: 0.5 });
    expect(resolveParams(slerp, {})).toEqual({ t: 0.5 });
    expect(resolveParams(modelStock, {})).toEqual({ angle: 'cosine' });
  });

  it('checks the number of models: slerp exactly 2, model_stock and consensus at least 2', () => {
    expect(() => checkModelCount(slerp, 3)).toThrow(/exactly 2/);
    expect(() => checkModelCount(modelStock, 1)).toThrow(/at least 2/);
    const s = randomSetup(91, 3);
    expect(() => merge('slerp', {}, s)).toThrow(ConfigError);
    expect(() => mergeReference('consensus', {}, s.base, s.models.slice(0, 1))).toThrow(ConfigError);
  });

  it('mergeReference validates parameters, method ids and alignment', () => {
    const s = randomSetup(92, 3);
    expect(() => merge('ties', { k: 0 }, s)).toThrow(ConfigError);
    expect(() => merge('ties', { bogus: 1 }, s)).toThrow(/allowed: k, merge, scope, lambda/);
    expect(() => merge('fisher', {}, s)).toThrow(/allowed: task_arithmetic, simple_average, ties/);
    const broken = new Map(s.models[1]!);
    broken.set('post_layernorm.bias', { shape: [2, 2], data: new Float64Array(4) });
    expect(() => mergeReference('task_arithmetic', {}, s.base, [s.models[0]!, broken])).toThrow(AlignmentError);
    expect(() => mergeReference('task_arithmetic', {}, s.base, [s.models[0]!, broken])).toThrow(/post_layernorm\.bias.*model 2/);
    broken.delete('post_layernorm.bias');
    expect(() => mergeReference('task_arithmetic', {}, s.base, [s.models[0]!, broken])).toThrow(/missing from fine-tuned model 2/);
  });
});
