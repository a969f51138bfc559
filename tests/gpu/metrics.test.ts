/** The interference metrics a GPU merge reports, against the float64 CPU twin (reference/metrics.ts). */
import { describe, expect, it, vi } from 'vitest';
import * as reductions from '../../src/engine/gpu/mergeReductions';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import { MetricsCache, TOPK_FRACTIONS } from '../../src/engine/merge/metrics';
import { FusedOutput } from '../../src/engine/merge/plans/fusedOutput';
import { StackOutput } from '../../src/engine/merge/stackOutput';
import { runMerge } from '../../src/engine/merge/runMerge';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import { coefficientFn, sumContributions } from '../../src/engine/reference/methods/contributions';
import { tallTaskMasks } from '../../src/engine/reference/methods/masks';
import { tiesContributions } from '../../src/engine/reference/methods/ties';
import { cosineMatrix, cosineMatrixByLayer, keptFractions, mergedTaskVector, normReport, signConflicts, topkNormRetained, usageHistogram } from '../../src/engine/reference/metrics';
import { refTaskVectors } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels, openModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const SHAPES = {
  'vision_model.embeddings.class_embedding': [24],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [40, 24],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [40],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [48, 96],
  'vision_model.post_layernorm.weight': [24],
};
const g = gridModels(77, 3, SHAPES);
const taus = refTaskVectors(g.base, g.models);

async function report(method: string, params: Record<string, unknown> = {}) {
  const ctx = await testContext();
  const { base, models } = await openModels(g);
  const r = await runMerge(ctx, { base, models, config: resolveConfig({ method, params, options: { chunkElements: 1024 } }), cacheBytes: 0 });
  expect(ctx.allocatedBytes).toBe(0);
  return r.interference!;
}

const close = (got: unknown, want: unknown) => expect(got).toEqual(roundTo(want, got));
/** Compares nested numbers with 1e-6 absolute tolerance (f32 partial sums vs float64). */
function roundTo(want: unknown, got: unknown): unknown {
  if (typeof want === 'number' && typeof got === 'number') return Math.abs(want - got) <= 1e-6 * Math.max(1, Math.abs(want)) ? got : want;
  if (Array.isArray(want) && Array.isArray(got)) return want.map((w, i) => roundTo(w, got[i]));
  if (want && typeof want === 'object' && got && typeof got === 'object') return Object.fromEntries(Object.entries(want).map(([k, v]) => [k, roundTo(v, (got as Record<string, unknown>)[k])]));
  return want;
}

describe('interference metrics on the GPU equal the CPU twin', () => {
  it('cosines, norms, sign conflicts and the top-k curve of the task vectors; the merged norm', async () => {
    const r = await report('task_arithmetic');
    close(r.cosine.total, cosineMatrix(taus));
    close(r.cosine.layers, cosineMatrixByLayer(taus));
    const merged = mergedTaskVector(g.base, mergeReference('task_arithmetic', resolveParams(getMethod('task_arithmetic'), {}), g.base, g.models));
    const want = normReport([...taus, merged]);
    close(r.norms.total, want.total);
    close(r.norms.layers, want.layers);
    close(r.signs.taskVectors, signConflicts(taus));
    expect(r.topk!.ks).toEqual(TOPK_FRACTIONS);
    close(r.topk!.retained, taus.map((tau) => topkNormRetained(tau, TOPK_FRACTIONS)));
    expect(r.kept).toBeNull(); // Task Arithmetic masks nothing
    expect(r.usage).toBeNull();
    expect(r.nonFinite).toEqual([]);
  });

  it('TIES: kept fractions and the sign conflicts left after trimming', async () => {
    const r = await report('ties', { k: 0.3 });
    const parts = tiesContributions(taus, { k: 0.3, merge: 'sum', scope: 'global' });
    close(r.kept, keptFractions(parts));
    close(r.signs.contributions, signConflicts(parts));
    expect(r.signs.contributions!.total.conflictRate).toBe(0);
    expect(r.signs.taskVectors.total.conflictRate).toBeGreaterThan(0.1);
  });

  it('Consensus: how many tasks use each weight (catastrophic / selfish / general)', async () => {
    const r = await report('consensus', { mask_lambda: 0.5 });
    const mtl = sumContributions(g.base, taus);
    close(r.usage, usageHistogram(tallTaskMasks(taus, mtl, coefficientFn(0.5, g.base, 0.6))));
    expect(r.usage!.total.reduce((a, b) => a + b, 0)).toBe(24 + 40 * 24 + 40 + 48 * 96 + 24);
  });

  it('reports non-finite task-vector entries per tensor and model', async () => {
    const ctx = await testContext();
    const bad = new Map([...g.models[1]!].map(([k, v]) => [k, { shape: v.shape, data: v.data.slice() }]));
    bad.get('vision_model.encoder.layers.1.mlp.fc1.weight')!.data[5] = NaN;
    bad.get('vision_model.encoder.layers.1.mlp.fc1.weight')!.data[9] = Infinity;
    const bytes = makeModelBytes([...bad].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: encodeFloats(t.data, 'F32') })));
    const { base, models } = await openModels({ ...g, modelBytes: [g.modelBytes[0]!, bytes, g.modelBytes[2]!] });
    const r = await runMerge(ctx, { base, models, config: resolveConfig({ method: 'task_arithmetic' }), output: async () => memorySink('x') });
    expect(r.interference!.nonFinite).toEqual([{ tensor: 'vision_model.encoder.layers.1.mlp.fc1.weight', model: 1, count: 2 }]);
  });

  it('a MetricsCache measures the task vectors once per set of models, and what it gives equals a fresh measurement', async () => {
    const ctx = await testContext();
    const { base, models } = await openModels(g);
    const cache = new MetricsCache(2);
    const stats = vi.spyOn(reductions, 'stackStats');
    const run = async (ms: typeof models, method: string, params: Record<string, unknown>, metricsCache?: MetricsCache) => {
      const phases = new Set<string>();
      const calls = stats.mock.calls.length;
      const r = await runMerge(ctx, { base, models: ms, config: resolveConfig({ method, params, options: { chunkElements: 1024 } }), metricsCache, onProgress: (p) => phases.add(p.phase) });
      const i = r.interference!;
      return {
        // What depends on the task vectors only.
        vectors: { topk: i.topk!, cosine: i.cosine, tau: i.norms.total.slice(0, -1), signs: i.signs.taskVectors, nonFinite: i.nonFinite, tensors: r.tensors.map((t) => t.taskVectorNorms) },
        measured: phases.has('top-k curve'),
        chunkStats: stats.mock.calls.length - calls,
      };
    };
    const first = await run(models, 'task_arithmetic', { lambda: 0.3 }, cache);
    expect(first.measured).toBe(true);
    expect(first.chunkStats).toBeGreaterThan(0);
    // Another lambda, or another method with the same chunking: nothing is measured again, and it equals a fresh run.
    const again = await run(models, 'task_arithmetic', { lambda: 0.8 }, cache);
    expect(again).toEqual({ vectors: first.vectors, measured: false, chunkStats: 0 });
    expect((await run(models, 'ties', { k: 0.3 }, cache)).vectors).toEqual(first.vectors);
    expect((await run(models, 'task_arithmetic', { lambda: 0.8 })).vectors).toEqual(first.vectors);
    // Other models (here: another order) are measured, and their rows follow the models.
    const swapped = await run([models[2]!, models[0]!, models[1]!], 'task_arithmetic', {}, cache);
    expect(swapped.measured).toBe(true);
    expect(swapped.chunkStats).toBe(first.chunkStats);
    expect(swapped.vectors.topk.retained).toEqual([first.vectors.topk.retained[2], first.vectors.topk.retained[0], first.vectors.topk.retained[1]]);
    // A copy comes out: changing a report does not change the cache.
    again.vectors.topk.retained[0]![0] = -1;
    expect((await run(models, 'task_arithmetic', {}, cache)).vectors.topk).toEqual(first.vectors.topk);
    // Capacity 2: a third set of models pushes out the least recently used (the swapped order).
    await run([models[1]!, models[0]!, models[2]!], 'task_arithmetic', {}, cache);
    expect((await run([models[2]!, models[0]!, models[1]!], 'task_arithmetic', {}, cache)).measured).toBe(true);
    stats.mockRestore();
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('with the task vectors known, a method without contributions merges in the fused pass and reports what a fresh measurement does', async () => {
    const ctx = await testContext();
    const { base, models } = await openModels(g);
    const cache = new MetricsCache();
    const run = async (method: string, params: Record<string, unknown>, metricsCache?: MetricsCache) => {
      const fused = vi.spyOn(FusedOutput.prototype, 'tensor');
      const stacked = vi.spyOn(StackOutput.prototype, 'tensor');
      const sink = memorySink('out');
      try {
        const r = await runMerge(ctx, { base, models, config: resolveConfig({ method, params, options: { chunkElements: 1024 } }), metricsCache, output: async () => sink });
        return { r, bytes: sink.bytes()!, fused: fused.mock.calls.length, stacked: stacked.mock.calls.length };
      } finally {
        fused.mockRestore();
        stacked.mockRestore();
      }
    };
    const tensors = Object.keys(SHAPES).length;
    // The first merge measures the task vectors (on the stack); later ones with other parameters find them known.
    expect((await run('task_arithmetic', { lambda: 0.3 }, cache)).stacked).toBe(tensors);
    for (const [method, params] of [
      ['task_arithmetic', { lambda: 0.8 }],
      ['task_arithmetic', { lambda: [{ filter: 'mlp', value: 1.2 }, { value: -0.4 }] }],
      ['simple_average', {}],
    ] as const) {
      const known = await run(method, params, cache);
      const fresh = await run(method, params);
      const what = `${method} ${JSON.stringify(params)}`;
      expect([known.fused, known.stacked], what).toEqual([tensors, 0]);
      expect(fresh.stacked, what).toBe(tensors);
      expect(Buffer.from(known.bytes).equals(Buffer.from(fresh.bytes)), what).toBe(true);
      const [a, b] = [known.r.interference!, fresh.r.interference!];
      // What depends on the task vectors only is the cache's, measured as a fresh merge measures it.
      expect({ cosine: a.cosine, signs: a.signs, topk: a.topk, nonFinite: a.nonFinite, kept: a.kept, usage: a.usage }, what).toEqual({ cosine: b.cosine, signs: b.signs, topk: b.topk, nonFinite: b.nonFinite, kept: b.kept, usage: b.usage });
      expect(known.r.tensors.map((t) => t.taskVectorNorms), what).toEqual(fresh.r.tensors.map((t) => t.taskVectorNorms));
      // The merged delta's norms from the fused pass's partials (f32 sums in another order).
      close(a.norms, b.norms);
      close(known.r.tensors.map((t) => t.mergedNorm), fresh.r.tensors.map((t) => t.mergedNorm));
    }
    // A method that reports contributions measures them on the stack, whatever the cache knows; and Model Stock, whose
    // Gram pass keeps the decoded chunks for the stack's output pass (GpuPlan.fusedWithKnownMetrics).
    expect((await run('ties', {}, cache)).stacked).toBe(tensors);
    expect((await run('model_stock', {}, cache)).stacked).toBe(tensors);
    expect(ctx.allocatedBytes).toBe(0);
  });
});
