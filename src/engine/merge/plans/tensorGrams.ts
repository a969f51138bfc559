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
 *
 * When nothing needs the task-vector stack after this pass (`raw`: the fused output follows) and a tensor's models share
 * one dtype, its chunks are not decoded into a stack: gram_raw reads the uploaded raw bytes (RawUploader, chunks of
 * rawChunkStep elements) and forms the task vectors (and SLERP's theta0 row) itself, which saves the stack's buffers,
 * decode_stack's pass and its writes. Its partials are gram's over the decoded rows bit for bit, and each tensor's
 * partials are added block by block in element order (addGramPartials), so the Gram is the same float64 numbers
 * however the chunks split the tensor (at REDUCTION_BLOCK boundaries): both ways give one Model Stock ratio, one set
 * of SLERP coefficients. Given a RawChunkCache (`keep`), the raw chunks of large tensors go into buffers it keeps,
 * for the fused output pass to take instead of reading and uploading them again: both passes split a tensor at the
 * same elements when rawChunkStep is a whole number of REDUCTION_BLOCK blocks (else nothing is kept), and a chunk
 * padded to REDUCTION_BLOCK blocks is one padded to LINEAR_BLOCK blocks with more zeros after each input.
 */
import { throwIfAborted } from '../../errors';
import { LINEAR_MAX_TASKS, REDUCTION_BLOCK, reductionBlocks } from '../../gpu/constants';
import { decodeStack } from '../../gpu/kernels';
import { addGramPartials, gramPartials, gramRanges, gramRawPartials, gramRawRanges } from '../../gpu/mergeReductions';
import type { AlignedTensor } from '../align';
import { inputDtypes, RawUploader, rowLengthOf, type Chunk, type RawChunkCache } from '../stream';
import { rawChunkStep, sharesDtype, SMALL_TENSOR } from './fusedOutput';
import type { PlanContext } from './plan';

/** Gram readbacks the pass keeps in flight before it waits for the oldest (each holds a small staging buffer). */
const GRAMS_IN_FLIGHT = 16;
/** Elements of one batch of small tensors, each padded to whole REDUCTION_BLOCK blocks (at most a chunk). */
const BATCH_ELEMENTS = 1 << 16;

// A function, not a constant: in Node, GPUBufferUsage exists only once the platform has installed Dawn's globals.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const padded = (numel: number) => Math.ceil(numel / REDUCTION_BLOCK) * REDUCTION_BLOCK;

/** Adds one chunk's (or one batched tensor's) blocks to a tensor's Gram, in element order. */
type Fold = (g: Float64Array) => void;

/**
 * Every tensor's Gram matrix (see the file comment). `final`: this is the stream's last pass (frees its cached chunks);
 * then (nothing needs the stack afterwards) tensors whose models share a dtype are read raw, their rows being the task
 * vectors, plus theta0 with `thetaRow`, which `rowsOf` must give on the stack path, and their chunks go into `keep`
 * (as many as it takes) for the fused output pass.
 */
export async function tensorGrams(p: PlanContext, rows: number, final: boolean, rowsOf: (c: Chunk) => GPUBuffer, thetaRow = false, keep: RawChunkCache | null = null): Promise<Map<string, Float64Array>> {
  const { ctx, source } = p;
  const parts = new Map<string, Promise<Fold>[]>();
  const all: Promise<unknown>[] = [];
  const add = (name: string, part: Promise<Fold>) => {
    const list = parts.get(name) ?? [];
    list.push(part);
    parts.set(name, list);
  };
  const fold = (partials: Float32Array, numel: number): Fold => (g) => addGramPartials(g, partials, rows, reductionBlocks(numel));
  // A batched small tensor's Gram, whole in one batch: added to the zero matrix, the same numbers as folding its blocks.
  const addMatrix = (m: Float64Array): Fold => (g) => m.forEach((v, i) => (g[i] = g[i]! + v));
  const raw = (t: AlignedTensor) => final && p.tasks <= LINEAR_MAX_TASKS && sharesDtype(source, t);
  // A batch's tensors share their inputs' dtypes (see below).
  const rawBatch = (tensors: readonly AlignedTensor[]) => raw(tensors[0]!);
  // Raw chunks on whole REDUCTION_BLOCK blocks, so that both ways split a tensor at block boundaries.
  const fusedStep = rawChunkStep(ctx, p.tasks, p.chunkElements);
  const rawStep = Math.max(REDUCTION_BLOCK, Math.floor(fusedStep / REDUCTION_BLOCK) * REDUCTION_BLOCK);
  const kept = rawStep === fusedStep ? keep : null;
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
    const ranges = tensors.map((t, i) => ({ from: raw.at[i]! / REDUCTION_BLOCK, to: (raw.at[i]! + padded(t.numel)) / REDUCTION_BLOCK }));
    if (rawBatch(tensors)) {
      const grams = gramRawRanges(ctx, raw, raw.numel, thetaRow, ranges);
      all.push(grams);
      tensors.forEach((t, i) => add(t.name, grams.then((g) => addMatrix(g[i]!))));
      await throttle();
      return;
    }
    const base = ctx.createBuffer('gram batch theta0', raw.numel * 4, storage());
    let stack: GPUBuffer | null = null;
    try {
      stack = ctx.createBuffer('gram batch task vectors', raw.numel * 4 * p.tasks, storage());
      const s = stack;
      await ctx.scoped(`decode ${tensors[0]!.name} (+${tensors.length - 1} small tensors)`, () => decodeStack(ctx, { inputs: raw.buffer, segments: raw.segments, numel: raw.numel, base, stack: s }));
      const chunk: Chunk = { tensor: tensors[0]!, start: 0, count: raw.numel, rowLength: rowLengthOf(tensors[0]!), base, stack };
      const grams = gramRanges(ctx, rowsOf(chunk), rows, raw.numel, ranges);
      all.push(grams);
      tensors.forEach((t, i) => add(t.name, grams.then((g) => addMatrix(g[i]!))));
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
      if (raw(t)) {
        for (let start = 0; start < t.numel; start += rawStep) {
          throwIfAborted(source.signal);
          const count = Math.min(rawStep, t.numel - start);
          const chunk = kept ? await kept.upload(uploader, t, start, count) : await uploader.upload(t, start, count);
          const part = gramRawPartials(ctx, chunk, count, thetaRow);
          all.push(part);
          add(t.name, part.then((g) => fold(g, count)));
          await throttle();
        }
        continue;
      }
      await p.stream.forTensor(
        t,
        async (c) => {
          const part = gramPartials(ctx, rowsOf(c), rows, c.count);
          all.push(part);
          add(t.name, part.then((g) => fold(g, c.count)));
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
    for (const add of await Promise.all(parts.get(t.name) ?? [])) add(g);
    grams.set(t.name, g);
  }
  return grams;
}
