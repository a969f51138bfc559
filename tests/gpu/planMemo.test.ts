/**
 * The methods' statistics passes kept across merges of the same models (PlanContext.memo, in the MetricsCache's
 * entry): a merge that changes only a parameter they do not depend on (lambda, SLERP's t, LiNeS's beta) skips the
 * pass and writes and collects, bit for bit, what a merge without any cache writes; a parameter they depend on (TIES's
 * k, DARE's seed before TIES) runs the pass again. Global TIES's estimated majority sign goes into the memo and is
 * replaced by the exact one once a fused pass has tallied it, so the next merge needs no rerun of tied columns; a
 * merge that needs the exact sign up front (the stack path) does not take an estimate. Per-tensor band selections
 * (scope "tensor") are kept the same way, and on a CPU-emulated adapter the entries Breadcrumbs' host row band keeps
 * (as bits). Model Stock and SLERP, which collect weights through the stack when their Gram pass runs, collect them
 * from the fused pass once their Grams are known.
 */
import { describe, expect, it, vi } from 'vitest';
import { readBuffer } from '../../src/engine/gpu/kernels';
import { memorySink } from '../../src/engine/io/byteSource';
import type { Model } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { MetricsCache } from '../../src/engine/merge/metrics';
import { FusedOutput } from '../../src/engine/merge/plans/fusedOutput';
import { HostMagnitudeSelect } from '../../src/engine/merge/plans/hostSelect';
import { MagnitudeSelect } from '../../src/engine/gpu/select';
import { LinearMergeKernel } from '../../src/engine/gpu/linearMerge';
import { TiesOutputKernel } from '../../src/engine/gpu/tiesFused';
import { runMerge } from '../../src/engine/merge/runMerge';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { PlanMemo } from '../../src/engine/merge/planMemo';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { makeModelBytes } from '../helpers/safetensorsFixtures';
import { gridModels, openModels, type GridModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { tiedMajority, tiesWorld } from '../helpers/tiesWorld';

// Counts the host's row-band selections (Breadcrumbs' scope "row" on a CPU-emulated adapter), passing them through.
const rowBand = vi.hoisted(() => ({ calls: 0 }));
vi.mock('../../src/engine/merge/plans/rowBandHost', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/engine/merge/plans/rowBandHost')>();
  return {
    ...orig,
    rowBandMaskHost: (...args: Parameters<typeof orig.rowBandMaskHost>) => {
      rowBand.calls++;
      return orig.rowBandMaskHost(...args);
    },
  };
});

const SHAPES: Record<string, number[]> = {
  'blocks.0.attn.bias': [7],
  'blocks.0.attn.weight': [48, 40],
  'blocks.0.norm.weight': [40],
  'blocks.1.mlp.weight': [96, 40],
  'head.bias': [3],
};

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

interface Opened {
  base: Model;
  models: Model[];
}

/** One merge (written and collected): the file's bytes, the collected f32 values, and the phases it went through. */
async function merge(m: Opened, method: string, params: Record<string, unknown>, opts: { cache?: MetricsCache; metrics?: boolean; abortAt?: string } = {}) {
  const ctx = await testContext();
  const buffers = new Map<string, GPUBuffer>();
  const phases: string[] = [];
  const sink = memorySink('out');
  const controller = new AbortController();
  try {
    const report = await runMerge(ctx, {
      base: m.base,
      models: m.models,
      metrics: opts.metrics ?? false,
      signal: controller.signal,
      config: resolveConfig({ method, params, options: { chunkElements: 1024 } }),
      ...(opts.cache ? { metricsCache: opts.cache } : {}),
      output: async () => sink,
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        if (p.phase === opts.abortAt) controller.abort();
      },
      collect: (t) => {
        const b = ctx.createBuffer(`collected ${t.name}`, t.numel * 4, storage());
        buffers.set(t.name, b);
        return b;
      },
    });
    const values = new Map<string, string>();
    for (const [name, b] of buffers) values.set(name, Buffer.from(await readBuffer(ctx, b, b.size)).toString('base64'));
    return { file: Buffer.from(sink.bytes()).toString('base64'), values, phases, report };
  } finally {
    for (const b of buffers.values()) ctx.destroyBuffer(b);
    expect(ctx.allocatedBytes).toBe(0);
  }
}

const open = async (g: GridModels): Promise<Opened> => openModels(g);

describe('statistics kept across merges of the same models', () => {
  const g = gridModels(81, 3, SHAPES);
  const two = gridModels(82, 2, SHAPES);
  // [method, models, the pass's phase, first params, params that keep the statistics]
  const cases = [
    ['ties', g, 'TIES statistics', { lambda: 0.4 }, { lambda: 0.9, merge: 'mean' }],
    ['consensus', g, 'TIES statistics', { then: 'ties', lambda: 0.5 }, { then: 'ties', lambda: 1.1, k: 1 }],
    ['lines', g, 'LiNeS alpha', { then: 'ties' }, { then: 'ties', beta: 0.8 }],
    // TIES after DARE's seeded drop: the exact select's statistics, kept under the drop's settings.
    ['dare', g, 'TIES threshold', { then: 'ties', lambda: 0.5 }, { then: 'ties', lambda: 1.1, merge: 'mean' }],
    ['model_stock', g, 'Model Stock angles', {}, { angle: 'angle' }],
    ['slerp', two, 'SLERP angles', { t: 0.3 }, { t: 0.7 }],
  ] as const;
  for (const [method, models, pass, first, second] of cases) {
    for (const metrics of [false, true]) {
      it(`${method}${metrics ? ' with interference metrics' : ''}: the second merge skips "${pass}" and writes what a fresh merge writes`, async () => {
        const m = await open(models);
        const cache = new MetricsCache();
        const a = await merge(m, method, first, { cache, metrics });
        expect(a.phases, 'first merge').toContain(pass);
        const spy = vi.spyOn(FusedOutput.prototype, 'tensor');
        let fusedTensors = 0;
        const b = await merge(m, method, second, { cache, metrics }).finally(() => {
          fusedTensors = spy.mock.calls.length;
          spy.mockRestore();
        });
        expect(b.phases, 'second merge').not.toContain(pass);
        // Model Stock and SLERP collect (and measure) through the stack only where their Gram pass keeps the decoded
        // chunks for it (GpuPlan.stackFaster): with the Grams known, the fused pass writes and collects, also with the
        // metrics on, which the first merge measured.
        if (method === 'model_stock' || method === 'slerp') expect(fusedTensors).toBe(Object.keys(SHAPES).length);
        // LiNeS then TIES merges through global TIES's fused kernel once its alpha is known (with the metrics on, once
        // the first merge measured its contributions: beta only rescales them).
        if (method === 'lines') expect(fusedTensors).toBe(Object.keys(SHAPES).length);
        const fresh = await merge(await open(models), method, second, { metrics });
        expect(fresh.phases).toContain(pass);
        expect(b.file === fresh.file, 'file bytes').toBe(true);
        expect(b.values).toEqual(fresh.values);
        if (metrics) {
          const [x, y] = [b.report.interference!, fresh.report.interference!];
          expect({ cosine: x.cosine, signs: x.signs, topk: x.topk, kept: x.kept, usage: x.usage }).toEqual({ cosine: y.cosine, signs: y.signs, topk: y.topk, kept: y.kept, usage: y.usage });
          // The merged delta's norms: the fused pass sums its f32 partials in another order than the stack path.
          b.report.tensors.forEach((t, i) => expect(t.mergedNorm!).toBeCloseTo(fresh.report.tensors[i]!.mergedNorm!, 5));
          x.norms.total.forEach((n, i) => expect(n).toBeCloseTo(y.norms.total[i]!, 5));
        }
        // And the first merge's output did not change by being the one that filled the memo.
        expect(a.file === (await merge(await open(models), method, first, { metrics })).file).toBe(true);
      });
    }
  }

  it('per-tensor bands (TIES, Breadcrumbs and DARE then TIES with scope "tensor"): a lambda move selects nothing again', async () => {
    // The selection passes run on the host on a CPU-emulated adapter (a quickselect for a tensor this small), else on
    // the GPU: count all three.
    const passes = [vi.spyOn(HostMagnitudeSelect.prototype, 'beginPass'), vi.spyOn(HostMagnitudeSelect, 'quickSelect'), vi.spyOn(MagnitudeSelect.prototype, 'beginPass')];
    const count = () => passes.reduce((n, s) => n + s.mock.calls.length, 0);
    try {
      for (const [method, params] of [
        ['ties', { scope: 'tensor', k: 0.3 }],
        ['breadcrumbs', { scope: 'tensor', density: 0.5, gamma: 0.1 }],
        ['dare', { then: 'ties', scope: 'tensor', k: 0.3 }],
      ] as const) {
        for (const metrics of [false, true]) {
          const what = `${method}${metrics ? ' with metrics' : ''}`;
          const m = await open(g);
          const cache = new MetricsCache();
          let before = count();
          await merge(m, method, { ...params, lambda: 0.4 }, { cache, metrics });
          // A selection for every tensor whose band is not the whole of it (two passes each, or one quickselect).
          expect(count() - before, `${what}: first merge`).toBeGreaterThanOrEqual(Object.keys(SHAPES).length - 1);
          before = count();
          const b = await merge(m, method, { ...params, lambda: 0.9 }, { cache, metrics });
          expect(count() - before, `${what}: second merge`).toBe(0);
          const fresh = await merge(await open(g), method, { ...params, lambda: 0.9 }, { metrics });
          expect(b.file === fresh.file, what).toBe(true);
          expect(b.values, what).toEqual(fresh.values);
          // Another band (gamma), or another drop (DARE's seed), selects again, and writes what a fresh merge writes.
          const other = method === 'breadcrumbs' ? { gamma: 0.2 } : method === 'dare' ? { seed: 5 } : null;
          if (other) {
            before = count();
            const again = await merge(m, method, { ...params, ...other, lambda: 0.9 }, { cache, metrics });
            expect(count() - before, `${what}: ${JSON.stringify(other)}`).toBeGreaterThan(0);
            expect(again.file === (await merge(await open(g), method, { ...params, ...other, lambda: 0.9 }, { metrics })).file, what).toBe(true);
          }
        }
      }
    } finally {
      for (const s of passes) s.mockRestore();
    }
  });

  it('Breadcrumbs with scope "row" on a CPU-emulated adapter: a lambda move applies the kept bits instead of selecting', async () => {
    const software = (await testContext()).info.isSoftware;
    for (const metrics of [false, true]) {
      const m = await open(g);
      const cache = new MetricsCache();
      let before = rowBand.calls;
      await merge(m, 'breadcrumbs', { lambda: 0.4 }, { cache, metrics });
      expect(rowBand.calls - before > 0, 'first merge selects on the host').toBe(software);
      before = rowBand.calls;
      const b = await merge(m, 'breadcrumbs', { lambda: 0.9 }, { cache, metrics });
      expect(rowBand.calls - before, 'second merge').toBe(0);
      const fresh = await merge(await open(g), 'breadcrumbs', { lambda: 0.9 }, { metrics });
      expect(b.file === fresh.file).toBe(true);
      expect(b.values).toEqual(fresh.values);
      // Another band selects again.
      before = rowBand.calls;
      const other = await merge(m, 'breadcrumbs', { lambda: 0.9, density: 0.5 }, { cache, metrics });
      expect(rowBand.calls - before > 0).toBe(software);
      expect(other.file === (await merge(await open(g), 'breadcrumbs', { lambda: 0.9, density: 0.5 }, { metrics })).file).toBe(true);
    }
  });

  it("a parameter the statistics depend on (TIES's k) runs the pass again, and other models have their own", async () => {
    const m = await open(g);
    const cache = new MetricsCache();
    await merge(m, 'ties', { k: 0.2 }, { cache });
    const k = await merge(m, 'ties', { k: 0.5 }, { cache });
    expect(k.phases).toContain('TIES statistics');
    expect(k.file === (await merge(await open(g), 'ties', { k: 0.5 })).file).toBe(true);
    // Both are kept: back to k = 0.2 skips the pass.
    expect((await merge(m, 'ties', { k: 0.2, lambda: 0.7 }, { cache })).phases).not.toContain('TIES statistics');
    const other = await open(gridModels(83, 3, SHAPES));
    expect((await merge(other, 'ties', { k: 0.2 }, { cache })).phases).toContain('TIES statistics');
  });

  it("global TIES keeps the exact majority sign once a fused pass has tallied it; the stack path never takes an estimate", async () => {
    // tests/helpers/tiesWorld.ts: the sample's estimate of the majority sign is wrong, and tied columns depend on it.
    const world = tiesWorld(tiedMajority());
    const fresh = await merge(await open(world), 'ties', { lambda: 0.6 });
    expect(fresh.phases).toContain('merge again: tied columns');
    const m = await open(world);
    const cache = new MetricsCache();
    expect((await merge(m, 'ties', { lambda: 0.3 }, { cache })).phases).toContain('merge again: tied columns');
    const next = await merge(m, 'ties', { lambda: 0.6 }, { cache });
    expect(next.phases).not.toContain('TIES statistics');
    expect(next.phases, 'the exact sign from the memo: no rerun').not.toContain('merge again: tied columns');
    expect(next.file === fresh.file).toBe(true);
    expect(next.values).toEqual(fresh.values);
    // A stack merge (metrics on) takes the exact sign too.
    expect((await merge(m, 'ties', { lambda: 0.6 }, { cache, metrics: true })).phases).not.toContain('TIES statistics');

    // A fused merge cancelled before its tally leaves only the estimate: the stack path computes the exact sign.
    const m2 = await open(world);
    const cache2 = new MetricsCache();
    await expect(merge(m2, 'ties', { lambda: 0.6 }, { cache: cache2, abortAt: 'merge' })).rejects.toThrow(/cancel/i);
    const stack = await merge(m2, 'ties', { lambda: 0.6 }, { cache: cache2, metrics: true });
    expect(stack.phases).toContain('TIES statistics');
    expect(stack.file === fresh.file).toBe(true);
    // ... and a fused merge after the cancelled one may start from the estimate (it settles the sign itself).
    const m3 = await open(world);
    const cache3 = new MetricsCache();
    await expect(merge(m3, 'ties', { lambda: 0.6 }, { cache: cache3, abortAt: 'merge' })).rejects.toThrow(/cancel/i);
    const resumed = await merge(m3, 'ties', { lambda: 0.6 }, { cache: cache3 });
    expect(resumed.phases).not.toContain('TIES statistics');
    expect(resumed.phases).toContain('merge again: tied columns');
    expect(resumed.file === fresh.file).toBe(true);
  });

  it('a merge that collects tensors written in f16 takes the stack for all of them and keeps the exact majority sign', async () => {
    // The estimated-majority world in f16 (its values are exact there), written in f16: the fused pass cannot collect
    // that, so nothing of it may count on the fused pass's tally to settle an estimated sign.
    const world = tiesWorld(tiedMajority());
    const f16 = (m: typeof world.base) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype: 'F16', shape: t.shape, data: encodeFloats(t.data, 'F16') })));
    const openF16 = async (): Promise<Opened> => {
      const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
      return { base: await open('base', f16(world.base)), models: await Promise.all(world.models.map((m, i) => open(`task${i}`, f16(m)))) };
    };
    const ctx = await testContext();
    const plain = async (m: Opened) => {
      const sink = memorySink('out');
      await runMerge(ctx, { base: m.base, models: m.models, metrics: false, config: resolveConfig({ method: 'ties', params: { lambda: 0.6 }, options: { chunkElements: 1024 } }), output: async () => sink });
      return Buffer.from(sink.bytes()).toString('base64');
    };
    // Without collecting: the fused pass, its tally correcting the estimate on the tied columns.
    const exact = await plain(await openF16());
    const sets = vi.spyOn(PlanMemo.prototype, 'set');
    try {
      const m = await openF16();
      const cache = new MetricsCache();
      const first = await merge(m, 'ties', { lambda: 0.6 }, { cache });
      const kept = sets.mock.calls.filter(([key]) => String(key).startsWith('ties: global')).map(([, v]) => v as { majority: number; majorityExact: boolean });
      expect(kept.map((v) => [v.majority, v.majorityExact])).toEqual([[-1, true]]);
      expect(first.file === exact, 'the collecting merge writes what the fused pass writes').toBe(true);
      const next = await merge(m, 'ties', { lambda: 0.6 }, { cache });
      expect(next.phases).not.toContain('TIES statistics');
      expect(next.file === exact).toBe(true);
      expect(next.values).toEqual(first.values);
    } finally {
      sets.mockRestore();
    }
  });

  it("the contributions' metrics are kept too: a merge that moves only lambda (LiNeS: beta) takes the fused pass with the metrics on", async () => {
    // [method, first params, params that only rescale, params that change the contributions]
    const cases = [
      ['ties', { lambda: 0.4 }, { lambda: 0.9 }, { lambda: 0.9, k: 0.5 }],
      ['dare', { lambda: 0.4 }, { lambda: 0.9 }, { lambda: 0.9, seed: 3 }],
      ['consensus', { lambda: 0.4 }, { lambda: 0.9 }, { lambda: 0.9, mask_lambda: 0.3 }],
      ['magmax', { lambda: 0.4 }, { lambda: 0.9 }, { lambda: -0.2 }],
      ['lines', { then: 'ties', beta: 0.3 }, { then: 'ties', beta: 0.8, alpha: 0.1 }, { then: 'ties', beta: 0.8, merge: 'mean' }],
    ] as const;
    const tensors = Object.keys(SHAPES).length;
    for (const [method, first, rescaled, other] of cases) {
      const m = await open(g);
      const cache = new MetricsCache();
      const spy = vi.spyOn(FusedOutput.prototype, 'tensor');
      try {
        await merge(m, method, first, { cache, metrics: true });
        expect(spy.mock.calls.length, `${method}: the first merge measures through the stack`).toBe(0);
        for (const [params, fusedTensors] of [[rescaled, tensors], [other, method === 'magmax' ? tensors : 0]] as const) {
          const what = `${method} ${JSON.stringify(params)}`;
          spy.mockClear();
          const b = await merge(m, method, params, { cache, metrics: true });
          expect(spy.mock.calls.length, what).toBe(fusedTensors);
          const fresh = await merge(await open(g), method, params, { metrics: true });
          expect(b.file === fresh.file, `${what}: file bytes`).toBe(true);
          expect(b.values, what).toEqual(fresh.values);
          const [x, y] = [b.report.interference!, fresh.report.interference!];
          expect({ cosine: x.cosine, signs: x.signs, topk: x.topk, kept: x.kept, usage: x.usage }, what).toEqual({ cosine: y.cosine, signs: y.signs, topk: y.topk, kept: y.kept, usage: y.usage });
          expect(x.kept, `${what}: kept fractions reported`).not.toBeNull();
          if (method === 'consensus') expect(x.usage, `${what}: usage reported`).not.toBeNull();
          b.report.tensors.forEach((t, i) => expect(t.mergedNorm!, what).toBeCloseTo(fresh.report.tensors[i]!.mergedNorm!, 5));
          x.norms.total.forEach((n, i) => expect(n, what).toBeCloseTo(y.norms.total[i]!, 5));
        }
      } finally {
        spy.mockRestore();
      }
    }
  });

  it('Breadcrumbs with scope "row" selects its bands on the host before the output pass (a CPU-emulated adapter): the stack path\'s bytes, with a memo or without', async () => {
    const tensors = Object.keys(SHAPES).length;
    for (const params of [{}, { density: 0.5, gamma: 0.1, lambda: 0.7 }, { density: 1, gamma: 0 }, { density: 0.02, lambda: { per_task: [0.3, -1, 2] } }]) {
      for (const cache of [new MetricsCache(), null]) {
        const what = `${JSON.stringify(params)}${cache ? ' with a memo' : ''}`;
        const spy = vi.spyOn(FusedOutput.prototype, 'tensor');
        let selected: Awaited<ReturnType<typeof merge>>;
        try {
          selected = await merge(await open(g), 'breadcrumbs', params, cache ? { cache } : {});
          expect(spy.mock.calls.length, what).toBe(tensors);
        } finally {
          spy.mockRestore();
        }
        // With metrics the stack path measures the contributions: its banded task vectors, combined.
        const stacked = await merge(await open(g), 'breadcrumbs', params, { metrics: true });
        expect(selected.file === stacked.file, `${what}: file bytes`).toBe(true);
        expect(selected.values, what).toEqual(stacked.values);
      }
    }
  });

  it('masked contributions: a lambda move of Breadcrumbs, per-tensor TIES, DARE then per-tensor TIES, Consensus then TIES or LiNeS on them writes through linear_merge with the kept entries', async () => {
    // [method, first params, params that only rescale, params that change what is kept]
    const cases = [
      ['breadcrumbs', { lambda: 0.4 }, { lambda: 0.9 }, { lambda: 0.9, density: 0.5 }],
      ['breadcrumbs', { scope: 'tensor', lambda: 0.4 }, { scope: 'tensor', lambda: -0.3 }, { scope: 'tensor', lambda: 0.9, gamma: 0.05 }],
      ['ties', { scope: 'tensor', lambda: 0.4 }, { scope: 'tensor', lambda: 0.9 }, { scope: 'tensor', lambda: 0.9, k: 0.5 }],
      ['ties', { scope: 'tensor', merge: 'max', lambda: 0.4 }, { scope: 'tensor', merge: 'max', lambda: 0.9 }, { scope: 'tensor', merge: 'sum', lambda: 0.9 }],
      // DARE then global TIES writes through ties_output with the drop instead (tiesFast.test.ts).
      ['dare', { then: 'ties', scope: 'tensor', lambda: 0.4 }, { then: 'ties', scope: 'tensor', lambda: 0.9 }, { then: 'ties', scope: 'tensor', lambda: 0.9, seed: 2 }],
      ['dare', { then: 'ties', scope: 'tensor', rescale: false, merge: 'max', lambda: 0.4 }, { then: 'ties', scope: 'tensor', rescale: false, merge: 'max', lambda: 0.9 }, { then: 'ties', scope: 'tensor', rescale: false, merge: 'max', lambda: 0.9, p: 0.2 }],
      ['consensus', { then: 'ties', lambda: 0.4 }, { then: 'ties', lambda: 0.9 }, { then: 'ties', lambda: 0.9, ties_k: 0.5 }],
      ['lines', { then: 'ties', scope: 'tensor', beta: 0.3 }, { then: 'ties', scope: 'tensor', beta: 0.8 }, { then: 'ties', scope: 'tensor', beta: 0.8, k: 0.4 }],
      ['lines', { then: 'consensus', alpha: 0.2 }, { then: 'consensus', alpha: 0.1, beta: 0.6 }, { then: 'consensus', alpha: 0.1, consensus_k: 1 }],
    ] as const;
    const tensors = Object.keys(SHAPES).length;
    for (const metrics of [false, true]) {
      for (const [method, first, rescaled, other] of cases) {
        const m = await open(g);
        const cache = new MetricsCache();
        const spy = vi.spyOn(FusedOutput.prototype, 'tensor');
        // Breadcrumbs with scope "row" on a CPU-emulated adapter selects its bands on the host up front
        // (GpuPlan.selectKept) and writes every merge through the fused pass, but one that measures metrics.
        const selects = method === 'breadcrumbs' && !('scope' in first) && !metrics;
        try {
          await merge(m, method, first, { cache, metrics });
          expect(spy.mock.calls.length, `${method}: the first merge writes through the stack`).toBe(selects ? tensors : 0);
          for (const [params, fusedTensors] of [[rescaled, tensors], [other, selects ? tensors : 0]] as const) {
            const what = `${method} ${JSON.stringify(params)}${metrics ? ' with metrics' : ''}`;
            spy.mockClear();
            const b = await merge(m, method, params, { cache, metrics });
            expect(spy.mock.calls.length, what).toBe(fusedTensors);
            const fresh = await merge(await open(g), method, params, { metrics });
            expect(b.file === fresh.file, `${what}: file bytes`).toBe(true);
            expect(b.values, what).toEqual(fresh.values);
            if (metrics) {
              const [x, y] = [b.report.interference!, fresh.report.interference!];
              expect({ signs: x.signs, kept: x.kept, usage: x.usage }, what).toEqual({ signs: y.signs, kept: y.kept, usage: y.usage });
            }
          }
        } finally {
          spy.mockRestore();
        }
      }
    }
    // DARE then global TIES merges through ties_output, drawing the drop, and records nothing; once a merge with the
    // metrics (the stack path) has kept its entries, a lambda move reads them instead (linear_merge, MASKED).
    for (const rule of ['sum', 'max'] as const) {
      const what = `dare then global ties, merge ${rule}`;
      const m = await open(g);
      const cache = new MetricsCache();
      const ties = vi.spyOn(TiesOutputKernel.prototype, 'encode');
      const linear = vi.spyOn(LinearMergeKernel.prototype, 'encode');
      try {
        await merge(m, 'dare', { then: 'ties', merge: rule, lambda: 0.4 }, { cache });
        expect(ties.mock.calls.length, `${what}: the cold merge`).toBeGreaterThan(0);
        await merge(m, 'dare', { then: 'ties', merge: rule, lambda: 0.6 }, { cache, metrics: true });
        ties.mockClear();
        linear.mockClear();
        const b = await merge(m, 'dare', { then: 'ties', merge: rule, lambda: 0.9 }, { cache });
        expect([ties.mock.calls.length, linear.mock.calls.length > 0], what).toEqual([0, true]);
        const fresh = await merge(await open(g), 'dare', { then: 'ties', merge: rule, lambda: 0.9 }, {});
        expect(b.file === fresh.file, `${what}: file bytes`).toBe(true);
        expect(b.values, what).toEqual(fresh.values);
      } finally {
        ties.mockRestore();
        linear.mockRestore();
      }
    }
    // TIES's merge "mean" divides the kept entries by their count: it stays on the stack.
    const m = await open(g);
    const cache = new MetricsCache();
    const spy = vi.spyOn(FusedOutput.prototype, 'tensor');
    try {
      await merge(m, 'ties', { scope: 'tensor', merge: 'mean', lambda: 0.4 }, { cache });
      await merge(m, 'ties', { scope: 'tensor', merge: 'mean', lambda: 0.9 }, { cache });
      expect(spy.mock.calls.length).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });
});
