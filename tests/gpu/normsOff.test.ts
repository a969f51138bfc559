/**
 * Merges without norms (runMerge's `norms: false`, what the command line does without --report): every method with a
 * fused output kernel writes the same bytes as with norms, and the fused tensors' norms are null; report.nonFinite
 * counts each model's NaN / infinite task-vector values exactly, per tensor (a tensor over several chunks, small
 * tensors sharing a launch; also where a method's masks drop them from the merged values), and the merged values' own
 * where no task vector holds any (an overflow).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import type { NonFiniteCount } from '../../src/engine/merge/report';
import { runMerge } from '../../src/engine/merge/runMerge';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels } from '../helpers/gridModels';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

afterAll(releaseTestContext);

// fc1.weight spans several 1024-element chunks; the biases and head.weight are small tensors that share launches.
const SHAPES = { 'layers.0.fc1.weight': [48, 64], 'layers.0.fc1.bias': [48], 'layers.0.fc2.bias': [64], 'head.weight': [10, 64] };

const bytesOf = (m: RefModel) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: encodeFloats(t.data, 'F32') })));

async function merge(ctx: GpuContext, base: RefModel, models: RefModel[], method: string, norms: boolean, params: Record<string, unknown> = {}) {
  const open = (name: string, m: RefModel) => openSingleFileModel(name, memorySource(name, bytesOf(m)));
  const sink = memorySink('merged.safetensors');
  const report = await runMerge(ctx, {
    base: await open('base.safetensors', base),
    models: await Promise.all(models.map((m, i) => open(`task${i}.safetensors`, m))),
    config: resolveConfig({ method, params, options: { chunkElements: 1024 } }),
    metrics: false,
    norms,
    output: async () => sink,
  });
  return { bytes: sink.bytes()!, report };
}

/** A copy of `m` with `value` written at `at` in tensor `name`. */
function poke(m: RefModel, name: string, at: readonly number[], value: number): RefModel {
  const copy: RefModel = new Map([...m].map(([k, t]) => [k, { shape: t.shape, data: t.data.slice() }]));
  for (const j of at) copy.get(name)!.data[j] = value;
  return copy;
}

const sorted = (list: readonly NonFiniteCount[]) => [...list].sort((a, b) => a.tensor.localeCompare(b.tensor) || (a.model ?? -1) - (b.model ?? -1));

describe('merges without norms', () => {
  const g = gridModels(21, 3, SHAPES);
  const cases: [string, Record<string, unknown>][] = [
    ['task_arithmetic', {}],
    ['simple_average', {}],
    ['lines', {}],
    ['model_stock', {}],
    ['dare', { seed: 7 }],
    ['magmax', {}],
    ['consensus', {}],
    ['ties', {}],
  ];
  it.each(cases)('%s writes the bytes it writes with norms, and leaves the fused tensors\' norms out', async (method, params) => {
    const ctx = await testContext();
    const withNorms = await merge(ctx, g.base, g.models, method, true, params);
    const without = await merge(ctx, g.base, g.models, method, false, params);
    expect(Buffer.from(without.bytes).equals(Buffer.from(withNorms.bytes))).toBe(true);
    expect(without.report.nonFinite).toEqual([]);
    expect(withNorms.report.nonFinite).toBeUndefined();
    expect(without.report.tensors.filter((t) => t.action === 'merge').every((t) => t.taskVectorNorms === null && t.mergedNorm === null && t.baseNorm === null)).toBe(true);
    expect(withNorms.report.tensors.every((t) => t.action !== 'merge' || (t.taskVectorNorms?.every(Number.isFinite) ?? false))).toBe(true);
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('slerp (two models) writes the bytes it writes with norms', async () => {
    const ctx = await testContext();
    const two = gridModels(5, 2, SHAPES, 1);
    const a = await merge(ctx, two.base, two.models, 'slerp', true, { t: 0.3 });
    const b = await merge(ctx, two.base, two.models, 'slerp', false, { t: 0.3 });
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
    expect(b.report.nonFinite).toEqual([]);
  });

  // Masking methods (DARE's drop with p 0.9, Consensus's masks, TIES's trim and disjoint merge) may drop a NaN or an
  // infinity from the merged values: their kernels' flags still see it.
  it.each(['task_arithmetic', 'magmax', 'dare', 'consensus', 'ties'])('%s counts each model\'s NaN and infinite task-vector values per tensor, in several chunks and in shared launches', async (method) => {
    const ctx = await testContext();
    // Model 0: a NaN in two chunks of fc1.weight (elements 5 and 2000) and an infinity in fc2.bias (a small tensor);
    // model 2: minus infinity twice in head.weight; the base is finite.
    const models = [poke(poke(g.models[0]!, 'layers.0.fc1.weight', [5, 2000], NaN), 'layers.0.fc2.bias', [3], Infinity), g.models[1]!, poke(g.models[2]!, 'head.weight', [0, 639], -Infinity)];
    const params = method === 'dare' ? { p: 0.9, seed: 3 } : {};
    const { report } = await merge(ctx, g.base, models, method, false, params);
    expect(sorted(report.nonFinite!)).toEqual([
      { tensor: 'head.weight', model: 2, count: 2 },
      { tensor: 'layers.0.fc1.weight', model: 0, count: 2 },
      { tensor: 'layers.0.fc2.bias', model: 0, count: 1 },
    ]);
    // With norms, the same tensors and models have non-finite norms (what the command line's warnings read there).
    const normed = await merge(ctx, g.base, models, method, true, params);
    const bad = normed.report.tensors.flatMap((t) => (t.taskVectorNorms ?? []).flatMap((n, m) => (Number.isFinite(n) ? [] : [`${t.name}/${m}`])));
    expect(bad.sort()).toEqual(['head.weight/2', 'layers.0.fc1.weight/0', 'layers.0.fc2.bias/0']);
  });

  it('a NaN in the base is counted in every model\'s task vector', async () => {
    const ctx = await testContext();
    const { report } = await merge(ctx, poke(g.base, 'layers.0.fc1.bias', [0], NaN), g.models, 'task_arithmetic', false);
    expect(sorted(report.nonFinite!)).toEqual([0, 1, 2].map((model) => ({ tensor: 'layers.0.fc1.bias', model, count: 1 })));
  });

  it('counts the merged values that overflow where every task vector is finite (model null)', async () => {
    const ctx = await testContext();
    // tau = 3e38 in two models at the same element: 3e38 + 3e38 overflows f32 in the sum of Task Arithmetic at lambda 1.
    const big = (m: RefModel) => poke(m, 'head.weight', [7], 3e38);
    const base = poke(g.base, 'head.weight', [7], 0);
    const { report } = await merge(ctx, base, [big(g.models[0]!), big(g.models[1]!), g.models[2]!], 'task_arithmetic', false, { lambda: 1 });
    expect(report.nonFinite).toEqual([{ tensor: 'head.weight', model: null, count: 1 }]);
  });
});
