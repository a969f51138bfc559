/**
 * The output pass of plans that work on the task-vector stack (GpuPlan.emit; every merge with interference metrics,
 * and collected weights that the fused pass cannot give in f32): each chunk's stack goes through the plan's emit, each output is packed to its dtype on the GPU
 * and written. A chunk's GPU work and readbacks are submitted without waiting; its readbacks are awaited, its norms
 * and metrics added and its bytes written only once later chunks are submitted (in chunk order, so totals do not
 * depend on when readbacks complete). On a GPU every await of a readback is a round trip in which neither side works:
 * waiting for each chunk's readbacks before loading the next one made these methods several times slower than the
 * fused path on an H100.
 *
 * Queue order keeps the reused scratch buffers (deltas, packed output) safe: a chunk's kernels and its readback copies
 * are submitted before the next chunk's kernels overwrite them.
 */
import type { GpuContext } from '../gpu/device';
import { packAdd, scaleAdd, SquareSums, StagingReader } from '../gpu/kernels';
import { keepBits } from '../gpu/mergeKernels';
import type { KeptBits } from './keptBits';
import { DTYPE_BYTES, type DType } from '../types';
import type { AlignedTensor } from './align';
import type { TensorWriter } from './heldWriter';
import type { MetricsAccumulator } from './metrics';
import { rawChunksInFlight } from './plans/fusedOutput';
import type { GpuPlan, PlanContext } from './plans/plan';
import { copyFloats, outputBytes, packDtypeOf } from './plans/util';
import type { TensorReport } from './report';
import type { Chunk } from './stream';

/** Norm sums of one tensor, completed by its last chunk. */
interface Sums {
  report: TensorReport;
  baseSq: number;
  tvSq: Float64Array;
  mergedSq: number;
}

/** A submitted chunk: what completes it, once read back, in chunk order. */
interface Pending {
  /** Adds the chunk's norms (and metrics) to the totals. */
  settle: Promise<(sums: Sums) => void>;
  /** Each output's packed bytes. */
  outputs: (() => Promise<Uint8Array[]>)[];
  sums: Sums;
  last: boolean;
  t: AlignedTensor;
  outDtype: DType;
  writers: readonly TensorWriter[];
  /** Bytes of its readbacks' staging buffers. */
  staged: number;
}

/** A promise the caller may never await (after a failure) must not be reported as unhandled. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export class StackOutput {
  /** Where the entries each chunk's contributions keep are recorded (keep_bits), or null. */
  kept: KeptBits | null = null;
  private readonly pending: Pending[] = [];
  private readonly reader: StagingReader;
  private readonly depth: number;
  private staged = 0;

  constructor(
    private readonly p: PlanContext,
    private readonly plan: GpuPlan,
    private readonly outputs: number,
    private readonly metrics: MetricsAccumulator | null,
  ) {
    this.depth = rawChunksInFlight(p.ctx);
    this.reader = new StagingReader(p.ctx, 'stack output readback');
  }

  /**
   * Submits every chunk of tensor `t` through the plan's emit and the outputs' packing; `collect` receives
   * theta0 + delta of output 0 in f32. The report's norms are filled in once its last chunk is read back (by a later
   * call or `flush`).
   */
  async tensor(t: AlignedTensor, outDtype: DType, writers: readonly TensorWriter[], collect: GPUBuffer | null): Promise<TensorReport> {
    const { p, plan, metrics } = this;
    const { ctx } = p;
    const T = p.tasks;
    const report: TensorReport = { name: t.name, shape: t.shape, dtype: t.dtype, outputDtype: outDtype, action: 'merge', baseNorm: 0, taskVectorNorms: new Array<number>(T).fill(0), mergedNorm: 0 };
    const sums: Sums = { report, baseSq: 0, tvSq: new Float64Array(T), mergedSq: 0 };
    const packDtype = packDtypeOf(outDtype);
    const maxChunk = p.stream.maxChunk;
    const deltas = Array.from({ length: this.outputs }, (_, o) => p.scratch(`delta ${o}`, maxChunk));
    const packed = p.scratch('packed', maxChunk);
    await p.stream.forTensor(
      t,
      async (c: Chunk) => {
        // The statistics' kernels are submitted before the method's, so they see the stack unchanged. Without metrics
        // the base's, the task vectors' and the output's sums of squares share one readback (SquareSums).
        const squares = new SquareSums(ctx, c.count, metrics ? [1] : [1, T, 1]);
        // The chunk's readbacks, each started as soon as its kernels are submitted.
        const reads: { before?: Promise<() => Float64Array>; after?: Promise<() => number>; squares?: Promise<Float64Array[]>; kept?: Promise<Uint8Array[]> } = {};
        const outputs: (() => Promise<Uint8Array[]>)[] = [];
        let staged = 0;
        try {
          squares.add(c.base);
          if (metrics) reads.before = quiet(metrics.before(ctx, c));
          else squares.add(c.stack);
          await ctx.scoped(`${p.spec.id} ${t.name}`, async () => {
            const info = await plan.emit(p, c, deltas);
            if (metrics) reads.after = quiet(metrics.after(ctx, c, info, deltas[0]!));
            else squares.add(deltas[0]!);
            if (this.kept && info?.contributions) {
              const words = p.scratch('kept entries', maxChunk);
              keepBits(ctx, info.contributions, T, c.count, words);
              reads.kept = quiet(this.reader.start(ctx.device.createCommandEncoder({ label: `kept entries ${t.name}` }), [{ buffer: words, bytes: c.count * 4 }])());
            }
            reads.squares = quiet(squares.read());
            if (collect) {
              // theta0 + delta in f32, written at the chunk's offset in the caller's buffer.
              const merged = p.scratch('collect', maxChunk);
              copyFloats(ctx, c.base, merged, c.count);
              scaleAdd(ctx, merged, 1, 1, deltas[0]!, c.count);
              const encoder = ctx.device.createCommandEncoder({ label: `collect ${t.name}` });
              encoder.copyBufferToBuffer(merged, 0, collect, c.start * 4, c.count * 4);
              ctx.device.queue.submit([encoder.finish()]);
            }
            const bytes = c.count * DTYPE_BYTES[packDtype];
            for (let o = 0; o < writers.length; o++) {
              packAdd(ctx, c.base, deltas[o]!, c.count, packDtype, packed);
              outputs.push(this.reader.start(ctx.device.createCommandEncoder({ label: `pack ${t.name}` }), [{ buffer: packed, bytes }]));
              staged += bytes;
            }
          });
        } catch (e) {
          // Settle what was queued and free the partials (read() frees them too; destroying twice is harmless).
          await Promise.allSettled([reads.before, reads.after, reads.squares, reads.kept]);
          squares.destroy();
          throw e;
        }
        const { kept } = this;
        const settle = Promise.all([reads.squares!, reads.before, reads.after, reads.kept]).then(([sq, addBefore, addAfter, words]) => (s: Sums) => {
          // StagingReader's parts are already copies out of the mapped range: the words are viewed, not copied again.
          if (kept && words) kept.add(t.name, c.start, new Uint32Array(words[0]!.buffer, words[0]!.byteOffset, c.count));
          s.baseSq += sq[0]![0]!;
          const tvs = addBefore ? addBefore() : sq[1]!;
          tvs.forEach((v, i) => (s.tvSq[i] = s.tvSq[i]! + v));
          s.mergedSq += addAfter ? addAfter() : sq[2]![0]!;
        });
        this.pending.push({ settle: quiet(settle), outputs, sums, last: c.start + c.count >= t.numel, t, outDtype, writers, staged });
        this.staged += staged;
        // At most `depth` chunks in flight, and (many outputs: TALL masks) at most `depth` chunks' worth of staging.
        while (this.pending.length >= this.depth || (this.pending.length > 1 && this.staged > this.depth * maxChunk * 4)) await this.consume();
      },
      true,
    );
    if (t.numel === 0) this.finish(sums);
    return report;
  }

  /** Consumes every pending chunk (before anything else is written, and at the end of the pass). */
  async flush(): Promise<void> {
    while (this.pending.length) await this.consume();
  }

  /**
   * After a failure or a cancellation: waits for the chunks still in flight to settle (their sums' readbacks free their
   * own buffers when they complete), dropping what they read. Then `destroy` leaves nothing allocated.
   */
  async abandon(): Promise<void> {
    const left = this.pending.splice(0);
    this.staged = 0;
    await Promise.allSettled(left.map((c) => c.settle));
  }

  destroy(): void {
    this.pending.length = 0;
    this.reader.destroy();
  }

  private async consume(): Promise<void> {
    const c = this.pending.shift()!;
    this.staged -= c.staged;
    (await c.settle)(c.sums);
    for (let o = 0; o < c.outputs.length; o++) {
      const [bytes] = await c.outputs[o]!();
      await c.writers[o]!.write(c.t.name, outputBytes(bytes!, c.outDtype), true);
    }
    if (c.last) this.finish(c.sums);
  }

  private finish(s: Sums): void {
    s.report.baseNorm = Math.sqrt(s.baseSq);
    s.report.taskVectorNorms = Array.from(s.tvSq, Math.sqrt);
    s.report.mergedNorm = Math.sqrt(s.mergedSq);
  }
}
