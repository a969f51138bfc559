/**
 * Where the time of a merge goes, without touching the engine: the streaming pass is rebuilt from the engine's own
 * parts in five nested variants, each timed like a merge, and each part of the time is the difference of two of them.
 *   upload        every chunk of the base and the models read from memory and uploaded (uploadRaw), queue drained per chunk
 *   load          the engine's ChunkStream: upload + unpack of theta0 + one task-vector kernel per model
 *   load+norms    + the norms runMerge always takes (sumSquares of theta0 and of the task-vector stack)
 *   no output     runMerge without an output: + the method's kernels and the merged delta's norm
 *   merge         runMerge writing the merged model: + pack, readback and the safetensors writer
 * Interference metrics are off in every variant.
 */
import type { GpuContext } from '../src/engine/gpu/device';
import { sumSquares, uploadRaw } from '../src/engine/gpu/kernels';
import { alignModels } from '../src/engine/merge/align';
import { DEFAULT_OPTIONS, resolveConfig } from '../src/engine/merge/config';
import { runMerge } from '../src/engine/merge/runMerge';
import { ChunkStream, chunkRanges } from '../src/engine/merge/stream';
import { planOf } from '../src/engine/merge/plans';
import { mergeOnce, sizeInfo } from './engineRun';
import type { BenchModels } from './models';
import type { Breakdown } from './results';
import { timeIt, type Repeats } from './stats';
import type { VitSize } from './vitShapes';

/** The variants, in nesting order, and the part each one adds to the previous. */
export const VARIANTS = ['upload', 'load', 'load+norms', 'no output', 'merge'] as const;
export const PARTS: Record<(typeof VARIANTS)[number], string> = {
  upload: 'read + upload (uploadRaw / writeBuffer)',
  load: 'unpack theta0 + task-vector kernels',
  'load+norms': 'norms of theta0 and tau (sumSquares + readback)',
  'no output': "method's kernels + merged-delta norm",
  merge: 'pack + readback + safetensors writer',
};

/** Parts from the variants' medians: each variant minus the one before it (the first as it is). */
export function partsOf(variants: Record<string, number>): Breakdown['parts'] {
  const total = variants.merge ?? 0;
  return VARIANTS.map((v, i) => {
    const ms = (variants[v] ?? 0) - (i === 0 ? 0 : (variants[VARIANTS[i - 1]!] ?? 0));
    return { part: PARTS[v], ms, fraction: total > 0 ? ms / total : 0 };
  });
}

/** Times the five variants of `method` on `m` (see the file comment). */
export async function breakdown(ctx: GpuContext, m: BenchModels, method: string, size: VitSize, repeats: Repeats): Promise<Breakdown> {
  const config = resolveConfig({ method });
  const tasks = m.models.length;
  const merged = alignModels(m.base, m.models, config.options).filter((t) => t.action === 'merge');
  const granularity = planOf(method).granularity;
  const drain = () => ctx.device.queue.onSubmittedWorkDone();
  const stream = () =>
    new ChunkStream(ctx, { base: m.base, models: m.models }, merged, { granularity, chunkElements: DEFAULT_OPTIONS.chunkElements, cacheBytes: 0 });
  const runs: Record<(typeof VARIANTS)[number], () => Promise<void>> = {
    upload: async () => {
      for (const t of merged) {
        for (const range of chunkRanges(t, granularity, DEFAULT_OPTIONS.chunkElements)) {
          for (const model of [m.base, ...m.models]) ctx.destroyBuffer(uploadRaw(ctx, 'breakdown upload', await model.readTensor(t.name, range)));
          await drain();
        }
      }
    },
    load: () => stream().forEach(drain),
    'load+norms': () =>
      stream().forEach(async (c) => {
        await sumSquares(ctx, c.base, 1, c.count);
        await sumSquares(ctx, c.stack, tasks, c.count);
      }),
    'no output': async () => void (await runMerge(ctx, { base: m.base, models: m.models, config, metrics: false })),
    merge: async () => void (await mergeOnce(ctx, m, method, false)),
  };
  const variants: Record<string, number> = {};
  const spreads: Record<string, number> = {};
  for (const v of VARIANTS) {
    const t = await timeIt(repeats, async () => {
      await runs[v]();
      await drain();
    });
    variants[v] = t.ms;
    spreads[v] = Math.max(...t.runs) - Math.min(...t.runs);
  }
  const chunks = merged.reduce((n, t) => n + chunkRanges(t, granularity, DEFAULT_OPTIONS.chunkElements).length, 0);
  return { method, tasks, dtype: m.dtype, size: sizeInfo(size), reps: repeats.reps, chunks, variants, spreads, parts: partsOf(variants) };
}
