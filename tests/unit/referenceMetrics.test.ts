import { describe, expect, it } from 'vitest';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import { tiesTrim } from '../../src/engine/reference/methods/ties';
import {
  cosineMatrix,
  cosineMatrixByLayer,
  keptFractions,
  layerGroups,
  mergedTaskVector,
  normReport,
  signAgreementRatio,
  signConflicts,
  topkNormRetained,
  usageHistogram,
} from '../../src/engine/reference/metrics';
import type { RefModel } from '../../src/engine/reference/refModel';

/** A model from {name: values} (1-D tensors). */
function vec(tensors: Record<string, number[]>): RefModel {
  return new Map(Object.entries(tensors).map(([name, v]) => [name, { shape: [v.length], data: Float64Array.from(v) }]));
}

const A = 'encoder.layers.0.w';
const B = 'encoder.layers.1.w';
const E = 'embeddings.x';

describe('layer groups', () => {
  it('puts tensors outside the blocks first, then blocks by ascending index (HF, open_clip, GPT-2 names)', () => {
    const groups = layerGroups([
      'vision_model.encoder.layers.10.mlp.fc1.weight',
      'vision_model.encoder.layers.2.mlp.fc1.weight',
      'vision_model.post_layernorm.bias',
      'vision_model.encoder.layers.2.layer_norm1.bias',
      'vision_model.embeddings.class_embedding',
    ]);
    expect(groups).toEqual([
      { layer: null, tensors: ['vision_model.embeddings.class_embedding', 'vision_model.post_layernorm.bias'] },
      { layer: 2, tensors: ['vision_model.encoder.layers.2.layer_norm1.bias', 'vision_model.encoder.layers.2.mlp.fc1.weight'] },
      { layer: 10, tensors: ['vision_model.encoder.layers.10.mlp.fc1.weight'] },
    ]);
    expect(layerGroups(['model.visual.transformer.resblocks.1.attn.in_proj_weight', 'transformer.h.0.attn.c_attn.weight']).map((g) => g.layer)).toEqual([0, 1]);
  });
});

describe('cosine similarity', () => {
  const t1 = vec({ [E]: [1, 0], [A]: [1, 0] });
  const t2 = vec({ [E]: [0, 1], [A]: [1, 0] });
  const zero = vec({ [E]: [0, 0], [A]: [0, 0] });

  it('whole model: symmetric, unit diagonal, 0 for a zero vector', () => {
    const c = cosineMatrix([t1, t2, zero]);
    expect(c[0]![0]).toBe(1);
    expect(c[0]![1]).toBeCloseTo(0.5, 15);
    expect(c[1]![0]).toBeCloseTo(0.5, 15);
    expect(c[2]).toEqual([0, 0, 0]);
    expect(c[0]![2]).toBe(0);
  });

  it('per layer: each group has its own matrix', () => {
    const byLayer = cosineMatrixByLayer([t1, t2]);
    expect(byLayer.map((g) => g.layer)).toEqual([null, 0]);
    expect(byLayer[0]!.cos[0]![1]).toBe(0);
    expect(byLayer[1]!.cos[0]![1]).toBeCloseTo(1, 15);
  });
});

describe('norms', () => {
  it('reports whole-model, per-layer and per-tensor L2 norms, including the merged task vector', () => {
    const base = vec({ [E]: [0, 0], [A]: [0, 0], [B]: [0] });
    const m1 = vec({ [E]: [3, 0], [A]: [0, 4], [B]: [0] });
    const m2 = vec({ [E]: [0, 0], [A]: [0, 4], [B]: [12] });
    const merged = mergeReference('task_arithmetic', { lambda: 1 }, base, [m1, m2]);
    const tv = mergedTaskVector(base, merged);
    const r = normReport([m1, m2, tv]);
    expect(r.total[0]).toBeCloseTo(5, 15);
    expect(r.total[1]).toBeCloseTo(Math.sqrt(160), 12);
    expect(r.total[2]).toBeCloseTo(Math.sqrt(9 + 64 + 144), 12);
    expect(r.layers).toEqual([
      { layer: null, norms: [3, 0, 3] },
      { layer: 0, norms: [4, 4, 8] },
      { layer: 1, norms: [0, 12, 12] },
    ]);
    expect(r.tensors.map((t) => t.tensor)).toEqual([E, A, B]);
    expect(r.tensors[1]!.norms).toEqual([4, 4, 8]);
  });
});

describe('sign conflicts', () => {
  it('conflict rate and mean TIES sign agreement ratio, whole model and per layer', () => {
    // The TIES fixture of methods.md 14: five columns split 2:1 in sign, one all-zero column.
    const rows = [
      [0.5, -0.1, 0.3, -0.8, 0.05, 0],
      [-0.4, 0.2, 0.6, 0.1, -0.05, 0],
      [0.3, -0.7, -0.2, 0.9, 0.01, 0],
    ];
    const taus = rows.map((r) => vec({ [E]: r.slice(0, 2), [A]: r.slice(2) }));
    const s = signConflicts(taus);
    expect(s.total.coordinates).toBe(6);
    expect(s.total.conflictRate).toBeCloseTo(5 / 6, 15);
    expect(s.total.agreement).toBeCloseTo((5 / 3 + 1) / 6, 15);
    expect(s.layers.map((l) => l.layer)).toEqual([null, 0]);
    expect(s.layers[0]!.conflictRate).toBe(1);
    expect(s.layers[1]).toMatchObject({ coordinates: 4, conflictRate: 0.75 });
    expect(s.layers[1]!.agreement).toBeCloseTo((3 / 3 + 1) / 4, 15);
  });

  it('agreement ratio of single coordinates', () => {
    expect(signAgreementRatio([1, 2, 3])).toBe(1);
    expect(signAgreementRatio([1, -2])).toBe(0);
    expect(signAgreementRatio([0, 0])).toBe(1);
    expect(signAgreementRatio([1, 0, -1, 2])).toBeCloseTo(1 / 3, 15);
  });

  it('zeros never conflict', () => {
    const s = signConflicts([vec({ [A]: [1, 0] }), vec({ [A]: [0, -1] })]);
    expect(s.total.conflictRate).toBe(0);
  });
});

describe('mask statistics', () => {
  const masks = [[1, 0, 1, 1], [1, 0, 0, 0], [1, 1, 1, 0]].map((m) => vec({ [E]: m.slice(0, 1), [A]: m.slice(1) }));

  it('kept fraction per task, whole model and per layer', () => {
    const k = keptFractions(masks);
    expect(k.total).toEqual([0.75, 0.25, 0.75]);
    expect(k.layers).toEqual([
      { layer: null, kept: [1, 1, 1] },
      { layer: 0, kept: [2 / 3, 0, 2 / 3] },
    ]);
  });

  it('TALL usage histogram over 0..T tasks (counts [3,1,2,1] of the methods.md fixture)', () => {
    const h = usageHistogram(masks);
    expect(h.total).toEqual([0, 2, 1, 1]);
    expect(h.layers).toEqual([
      { layer: null, counts: [0, 0, 0, 1] },
      { layer: 0, counts: [0, 2, 1, 0] },
    ]);
  });

  it('DARE-dropped task vectors keep about 1 - p of their entries', () => {
    const n = 4000;
    const base = vec({ [A]: new Array(n).fill(0) });
    const model = vec({ [A]: Array.from({ length: n }, (_, i) => 1 + (i % 7)) });
    const dropped = mergeReference('dare', { p: 0.3, lambda: 1 }, base, [model]);
    const kept = keptFractions([dropped]).total[0]!;
    expect(Math.abs(kept - 0.7)).toBeLessThan(4 * Math.sqrt((0.3 * 0.7) / n));
  });
});

describe('norm retained by the top-k trim', () => {
  it('uses the TIES ">=" threshold', () => {
    const tau = vec({ [A]: [1, -2, 2], [B]: [4] });
    // d = 4, sorted |x| = [1, 2, 2, 4]; k = .25 -> threshold = 3rd smallest = 2 -> keeps 2, 2, 4.
    const r = topkNormRetained(tau, [0.01, 0.25, 1]);
    expect(r[0]).toBeCloseTo(4 / 5, 15);
    expect(r[1]).toBeCloseTo(Math.sqrt(24) / 5, 15);
    expect(r[2]).toBe(1);
    expect(topkNormRetained(vec({ [A]: [0, 0] }), [0.5])).toEqual([0]);
  });

  it('agrees with the norm of the TIES global trim and grows with k', () => {
    const tau = vec({ [E]: Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7)), [A]: Array.from({ length: 30 }, (_, i) => Math.cos(i)) });
    const norm = (m: RefModel) => Math.sqrt([...m.values()].reduce((s, t) => t.data.reduce((a, x) => a + x * x, s), 0));
    const ks = [0.05, 0.1, 0.2, 0.5, 0.9];
    const r = topkNormRetained(tau, ks);
    ks.forEach((k, i) => expect(r[i]).toBeCloseTo(norm(tiesTrim(tau, k, 'global')) / norm(tau), 14));
    for (let i = 1; i < r.length; i++) expect(r[i]!).toBeGreaterThanOrEqual(r[i - 1]!);
  });
});
