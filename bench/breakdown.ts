/**
 * Where the time of a Task Arithmetic merge goes, without touching the engine: its fused output pass is rebuilt from
 * the engine's own parts in four nested variants, each timed like a merge, and each part of the time is the difference
 * of two of them. Every variant cuts the models in the engine's chunks (rawChunkStep) and keeps as many chunks in
 * flight as the engine does.
 *   upload      every chunk of the base and the models read from memory and uploaded (RawUploader, its staging ring)
 *   kernel      + the fused kernel (linear_merge) per chunk, nothing read back
 *   no output   runMerge without an output: + the non-finite flags read back per chunk (StagingReader) and checked
 *   merge       runMerge writing the merged model: + the output bytes read back and the safetensors writer
 * Interference metrics and the report's norms are off in every variant (as the command line merges without --report).
 */
import type { GpuContext } from '../src/engine/gpu/device';
import { LINEAR_BLOCK, LinearMergeKernel, linearMergeOutBytes, linearMergeThreads } from '../src/engine/gpu/linearMerge';
import { alignModels } from '../src/engine/merge/align';
import { DEFAULT_OPTIONS, resolveConfig } from '../src/engine/merge/config';
import { rawChunkStep, rawChunksInFlight } from '../src/engine/merge/plans/fusedOutput';
import { runMerge } from '../src/engine/merge/runMerge';
import { RawUploader } from '../src/engine/merge/stream';
import { mergeOnce, sizeInfo } from './engineRun';
import type { BenchModels } from './models';
import type { Breakdown } from './results';
import { timeIt, type Repeats } from './stats';
import type { VitSize } from './vitShapes';

/** The variants, in nesting order, and the part each one adds to the previous. */
export const VARIANTS = ['upload', 'kernel', 'no output', 'merge'] as const;
export const PARTS: Record<(typeof VARIANTS)[number], string> = {
  upload: 'read + upload (RawUploader: staging ring, one copy per chunk)',
  kernel: 'fused kernel (linear_merge: decode, combine, encode, non-finite flags)',
  'no output': 'non-finite flags read back and checked',
  merge: 'output read back + safetensors writer',
};

/** Parts from the variants' medians: each variant minus the one before it (the first as it is). */
export function partsOf(variants: Record<string, number>): Breakdown['parts'] {
  const total = variants.merge ?? 0;
  return VARIANTS.map((v, i) => {
    const ms = (variants[v] ?? 0) - (i === 0 ? 0 : (variants[VARIANTS[i - 1]!] ?? 0));
    return { part: PARTS[v], ms, fraction: total > 0 ? ms / total : 0 };
  });
}

/** Times the four variants of Task Arithmetic on `m` (see the file comment). */
export async function breakdown(ctx: GpuContext, m: BenchModels, size: VitSize, repeats: Repeats): Promise<Breakdown> {
  const method = 'task_arithmetic';
  const config = resolveConfig({ method });
  const tasks = m.models.length;
  const merged = alignModels(m.base, m.models, config.options).filter((t) => t.action === 'merge');
  const step = rawChunkStep(ctx, tasks, DEFAULT_OPTIONS.chunkElements);
  const depth = rawChunksInFlight(ctx);
  const drain = () => ctx.device.queue.onSubmittedWorkDone();
  const chunks = merged.flatMap((t) => Array.from({ length: Math.ceil(t.numel / step) }, (_, i) => ({ t, start: i * step, count: Math.min(step, t.numel - i * step) })));
  // Upload every chunk, optionally with the fused kernel, keeping `depth` chunks in flight as the output pass does.
  const stream = async (withKernel: boolean) => {
    const uploader = new RawUploader(ctx, { base: m.base, models: m.models }, undefined, LINEAR_BLOCK, depth + 1);
    const kernel = new LinearMergeKernel(ctx);
    const maxCount = Math.min(step, Math.max(...merged.map((t) => t.numel)));
    const out = ctx.createBuffer('breakdown out', linearMergeOutBytes(maxCount, 'F32'), GPUBufferUsage.STORAGE);
    const partials = ctx.createBuffer('breakdown flags', linearMergeThreads(maxCount) * 4, GPUBufferUsage.STORAGE);
    const coeffs = new Float32Array(tasks).fill(0.3);
    try {
      const inFlight: Promise<undefined>[] = [];
      for (const c of chunks) {
        const raw = await uploader.upload(c.t, c.start, c.count);
        if (withKernel) {
          const encoder = ctx.device.createCommandEncoder();
          kernel.encode(encoder, { inputs: raw.buffer, segments: raw.segments, numel: c.count, coeffs, outDtype: 'F32', out, partials, flags: true });
          ctx.device.queue.submit([encoder.finish()]);
        }
        inFlight.push(drain());
        while (inFlight.length >= depth) await inFlight.shift();
      }
      await drain();
    } finally {
      uploader.destroy();
      kernel.destroy();
      ctx.destroyBuffer(out);
      ctx.destroyBuffer(partials);
    }
  };
  const runs: Record<(typeof VARIANTS)[number], () => Promise<void>> = {
    upload: () => stream(false),
    kernel: () => stream(true),
    'no output': async () => void (await runMerge(ctx, { base: m.base, models: m.models, config, metrics: false, norms: false })),
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
  return { method, tasks, dtype: m.dtype, size: sizeInfo(size), reps: repeats.reps, chunks: chunks.length, variants, spreads, parts: partsOf(variants) };
}
