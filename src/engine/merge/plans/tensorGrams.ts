/**
 * The Gram pass of SLERP and Model Stock: for every tensor, the [rows, rows] Gram matrix (float64) of the rows that
 * `rowsOf` puts together for each chunk of it (the task vectors; SLERP's [tau_a, tau_b, theta0]), summed in chunk
 * order, in one pass over the model before the output pass.
 *
 * Every chunk's gram kernel and readback are submitted as the chunk is visited and awaited only GRAMS_IN_FLIGHT chunks
 * later, so the pass never waits for the GPU to drain; the kernel reads its rows before anything queued after it can
 * overwrite them. Runs of small tensors (SMALL_TENSOR) share one upload, one decode_stack and one gram launch, each on
 * whole REDUCTION_BLOCK blocks, and each tensor's Gram is the sum of its own blocks' partials: bit for bit what a launch
 * of its own gives (the padding adds +0 products to sums that start at +0). One chunk per small tensor cost about 2 ms
 * each on SwiftShader (its upload, launches and readback), most of Model Stock's Gram pass on 1-layer ViT models.
 */
import { REDUCTION_BLOCK } from '../../gpu/constants';
import { decodeStack } from '../../gpu/kernels';
import { gram, gramRanges } from '../../gpu/mergeReductions';
import type { AlignedTensor } from '../align';
import { inputDtypes, RawUploader, rowLengthOf, type Chunk } from '../stream';
import { SMALL_TENSOR } from './fusedOutput';
import type { PlanContext } from './plan';

/** Gram readbacks the pass keeps in flight before it waits for the oldest (each holds a small staging buffer). */
const GRAMS_IN_FLIGHT = 16;
/** Elements of one batch of small tensors, each padded to whole REDUCTION_BLOCK blocks (at most a chunk). */
const BATCH_ELEMENTS = 1 << 16;

// A function, not a constant: in Node, GPUBufferUsage exists only once the platform has installed Dawn's globals.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const padded = (numel: number) => Math.ceil(numel / REDUCTION_BLOCK) * REDUCTION_BLOCK;

/** Every tensor's Gram matrix (see the file comment). `final`: this is the stream's last pass (frees its cached chunks). */
export async function tensorGrams(p: PlanContext, rows: number, final: boolean, rowsOf: (c: Chunk) => GPUBuffer): Promise<Map<string, Float64Array>> {
  const { ctx, source } = p;
  const parts = new Map<string, Promise<Float64Array>[]>();
  const all: Promise<unknown>[] = [];
  const add = (name: string, part: Promise<Float64Array>) => {
    const list = parts.get(name) ?? [];
    list.push(part);
    parts.set(name, list);
  };
  const throttle = async () => {
    if (all.length > GRAMS_IN_FLIGHT) await all[all.length - 1 - GRAMS_IN_FLIGHT];
  };
  const uploader = new RawUploader(ctx, source, p.stream.options.onRead, REDUCTION_BLOCK);
  const batch: AlignedTensor[] = [];
  // A batch is at most a chunk (runMerge retries with smaller chunks when buffers do not fit).
  const limit = Math.min(BATCH_ELEMENTS, p.chunkElements);

  // One upload, decode and gram launch for the waiting small tensors.
  const flush = async () => {
    if (batch.length === 0) return;
    const tensors = batch.splice(0);
    const raw = await uploader.uploadParts(tensors.map((t) => ({ t, start: 0, count: t.numel })));
    const base = ctx.createBuffer('gram batch theta0', raw.numel * 4, storage());
    let stack: GPUBuffer | null = null;
    try {
      stack = ctx.createBuffer('gram batch task vectors', raw.numel * 4 * p.tasks, storage());
      const s = stack;
      await ctx.scoped(`decode ${tensors[0]!.name} (+${tensors.length - 1} small tensors)`, () => decodeStack(ctx, { inputs: raw.buffer, segments: raw.segments, numel: raw.numel, base, stack: s }));
      const chunk: Chunk = { tensor: tensors[0]!, start: 0, count: raw.numel, rowLength: rowLengthOf(tensors[0]!), base, stack };
      const ranges = tensors.map((t, i) => ({ from: raw.at[i]! / REDUCTION_BLOCK, to: (raw.at[i]! + padded(t.numel)) / REDUCTION_BLOCK }));
      const grams = gramRanges(ctx, rowsOf(chunk), rows, raw.numel, ranges);
      all.push(grams);
      tensors.forEach((t, i) => add(t.name, grams.then((g) => g[i]!)));
    } finally {
      // Work already submitted still sees them.
      ctx.destroyBuffer(base);
      if (stack) ctx.destroyBuffer(stack);
    }
    await throttle();
  };

  try {
    for (const t of p.stream.tensors) {
      if (t.numel > 0 && t.numel <= Math.min(SMALL_TENSOR, limit)) {
        const used = batch.reduce((n, b) => n + padded(b.numel), 0);
        if (batch.length > 0 && (used + padded(t.numel) > limit || inputDtypes(source, t).join() !== inputDtypes(source, batch[0]!).join())) await flush();
        batch.push(t);
        continue;
      }
      await flush();
      await p.stream.forTensor(
        t,
        async (c) => {
          const part = gram(ctx, rowsOf(c), rows, c.count);
          all.push(part);
          add(t.name, part);
          await throttle();
        },
        final,
      );
    }
    await flush();
  } finally {
    // A visit that throws leaves earlier readbacks running: settle them before the error propagates.
    await Promise.allSettled(all);
    uploader.destroy();
  }
  const grams = new Map<string, Float64Array>();
  for (const t of p.stream.tensors) {
    const g = new Float64Array(rows * rows);
    for (const part of await Promise.all(parts.get(t.name) ?? [])) part.forEach((v, i) => (g[i] = g[i]! + v));
    grams.set(t.name, g);
  }
  return grams;
}
