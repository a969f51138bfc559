/**
 * The playground's way of merging, as a seeded random walk: one MetricsCache and one ResidentInputs shared by a
 * sequence of merges of the same models, each changing the method or a parameter (lambda, k, merge rule, scope, DARE's
 * seed, Consensus's mask lambda, LiNeS's beta...) and switching the interference metrics on or off, as a user does
 * with the sliders and the tabs. Every merge must write, collect and report what a fresh merge of the same settings
 * writes, collects and reports without any cache: whatever an earlier merge kept (task-vector metrics, TIES's
 * thresholds and majority sign, per-tensor bands, Grams, LiNeS's alpha, Breadcrumbs' bits, the contributions'
 * metrics, the raw inputs) may make it faster, never different. Both f32 models (fused passes where they apply) and
 * f16 models written in f16 (collected through the stack) are walked.
 *
 * Tolerances: file bytes and collected values bit for bit; the interference report exactly, except the merged delta's
 * norms, which the fused pass sums in another order than the stack path (5 significant digits); the report's
 * per-tensor norms to a relative 1e-6 (the fused pass adds f32 partials of 16 elements, the stack path of 256).
 */
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/engine/gpu/kernels';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { MetricsCache } from '../../src/engine/merge/metrics';
import { ResidentInputs } from '../../src/engine/merge/residentInputs';
import { runMerge } from '../../src/engine/merge/runMerge';
import { rngKey, rngUniform } from '../../src/engine/rng';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels, type GridModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const SHAPES: Record<string, number[]> = {
  'blocks.0.attn.bias': [7],
  'blocks.0.attn.weight': [48, 40],
  'blocks.0.norm.weight': [40],
  'blocks.1.mlp.weight': [96, 40],
  'blocks.1.mlp.bias': [96],
  'head.bias': [3],
};

/** The settings a walk picks from: per method, the values each parameter may take. */
const CHOICES: Record<string, Record<string, readonly unknown[]>> = {
  task_arithmetic: { lambda: [0.3, 0.8] },
  ties: { lambda: [0.4, 0.9], k: [0.2, 0.5], merge: ['sum', 'mean', 'max'], scope: ['global', 'global', 'tensor'] },
  dare: { lambda: [0.3, 1.1], p: [0.3, 0.6], seed: [0, 4], then: ['task_arithmetic', 'ties'] },
  breadcrumbs: { lambda: [0.3, 0.7], density: [0.5, 0.8], gamma: [0.05, 0.1] },
  consensus: { lambda: [0.4, 0.9], mask_lambda: [0.4, 0.8], k: [1, 2], then: ['task_arithmetic', 'ties'] },
  lines: { beta: [0.3, 0.8], alpha: ['auto', 0.2], then: ['task_arithmetic', 'ties', 'consensus'] },
  magmax: { lambda: [0.5, -0.4] },
  model_stock: {},
};

interface Opened {
  base: Model;
  models: Model[];
}

type Dtype = 'F32' | 'F16';

async function openAs(g: GridModels, dtype: Dtype): Promise<Opened> {
  const bytes = (m: GridModels['base']) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFloats(t.data, dtype) })));
  const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
  return { base: await open('base', bytes(g.base)), models: await Promise.all(g.models.map((m, i) => open(`task${i}`, bytes(m)))) };
}

/** One merge, written and collected: the file, the collected values, the report. */
async function merge(m: Opened, method: string, params: Record<string, unknown>, metrics: boolean, kept: { cache: MetricsCache; resident: ResidentInputs } | null) {
  const ctx = await testContext();
  const buffers = new Map<string, GPUBuffer>();
  const sink = memorySink('out');
  try {
    const report = await runMerge(ctx, {
      base: m.base,
      models: m.models,
      metrics,
      config: resolveConfig({ method, params, options: { chunkElements: 1024 } }),
      ...(kept ? { metricsCache: kept.cache, resident: kept.resident } : {}),
      output: async () => sink,
      collect: (t) => {
        const b = ctx.createBuffer(`collected ${t.name}`, t.numel * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
        buffers.set(t.name, b);
        return b;
      },
    });
    const values = new Map<string, string>();
    for (const [name, b] of buffers) values.set(name, Buffer.from(await readBuffer(ctx, b, b.size)).toString('base64'));
    return { file: Buffer.from(sink.bytes()).toString('base64'), values, report };
  } finally {
    for (const b of buffers.values()) ctx.destroyBuffer(b);
  }
}

describe('a random walk of merges sharing the caches writes what fresh merges write', () => {
  for (const [dtype, seed] of [['F32', 1], ['F32', 2], ['F32', 3], ['F32', 4], ['F16', 5], ['F16', 6]] as const) {
    it(`${dtype} models, walk ${seed}`, async () => {
      const g = gridModels(300 + seed, 3, SHAPES);
      const m = await openAs(g, dtype);
      const kept = { cache: new MetricsCache(), resident: new ResidentInputs(64 * 2 ** 20) };
      const key = rngKey(seed, 17, 23);
      let draw = 0;
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rngUniform(key, draw++) * xs.length)]!;
      const methods = Object.keys(CHOICES);
      let method = pick(methods);
      let params: Record<string, unknown> = {};
      try {
        for (let step = 0; step < 20; step++) {
          // Mostly one parameter at a time, as a slider does; sometimes another method.
          if (step > 0 && (rngUniform(key, draw++) < 0.25 || Object.keys(CHOICES[method]!).length === 0)) {
            method = pick(methods);
            params = {};
          } else {
            const names = Object.keys(CHOICES[method]!);
            if (names.length) {
              const name = pick(names);
              params = { ...params, [name]: pick(CHOICES[method]![name]!) };
            }
          }
          const metrics = rngUniform(key, draw++) < 0.5;
          const what = `step ${step}: ${method} ${JSON.stringify(params)}${metrics ? ', metrics' : ''}`;
          const walked = await merge(m, method, params, metrics, kept);
          const fresh = await merge(await openAs(g, dtype), method, params, metrics, null);
          expect(walked.file === fresh.file, `${what}: file bytes`).toBe(true);
          expect(walked.values, `${what}: collected values`).toEqual(fresh.values);
          if (metrics) {
            const [x, y] = [walked.report.interference!, fresh.report.interference!];
            expect({ cosine: x.cosine, signs: x.signs, topk: x.topk, kept: x.kept, usage: x.usage, nonFinite: x.nonFinite }, what).toEqual({
              cosine: y.cosine,
              signs: y.signs,
              topk: y.topk,
              kept: y.kept,
              usage: y.usage,
              nonFinite: y.nonFinite,
            });
            x.norms.total.forEach((n, i) => expect(n, `${what}: norm ${i}`).toBeCloseTo(y.norms.total[i]!, 5));
          }
          // Per-tensor norms: a fused pass adds f32 partials of 16 elements, the stack path of 256 (6 digits).
          const close = (a: number | null, b: number | null, where: string) => (b === null ? expect(a, where).toBeNull() : expect(Math.abs(a! - b), where).toBeLessThanOrEqual(1e-6 * Math.abs(b) + 1e-12));
          walked.report.tensors.forEach((t, i) => {
            const f = fresh.report.tensors[i]!;
            f.taskVectorNorms?.forEach((n, j) => close(t.taskVectorNorms![j]!, n, `${what}: ${t.name} task ${j}`));
            close(t.mergedNorm, f.mergedNorm, `${what}: ${t.name} merged`);
          });
        }
      } finally {
        kept.resident.clear();
      }
      expect((await testContext()).allocatedBytes).toBe(0);
    });
  }
});
