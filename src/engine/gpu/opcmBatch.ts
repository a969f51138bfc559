/**
 * The SVDs of one OPCM step's Linear weights, taken together for weights of the same shape. svdGpu runs a batch of
 * matrices in the dispatches of one (three per Jacobi step, each covering every block pair of every matrix), so a
 * batch of B weights issues 1/B of the dispatches and gives a GPU B times the workgroups per dispatch: one 768 x 768
 * matrix has 24 block pairs, far fewer workgroups than a GPU has cores. The weights are still projected one by one,
 * in their order; a weight's batch is taken when the first of them is needed, from it and the next weights of its
 * shape, while their deltas are still unchanged (a step changes a weight's delta only at its own turn).
 *
 * A matrix that converges before the others of its batch rotates nothing in the later sweeps, so its factors are those
 * of its own run, bit for bit; those sweeps still cost their Gram passes. Even so, on SwiftShader (2 cores) a batched
 * OPCM step took 0.92x the time of one SVD at a time at ViT-B/32 width/4 with 1 layer (batches of 4), 0.82x with 2
 * layers, 0.57x at width/8 with 4 layers (16 per batch): fewer dispatches and waits, more work per dispatch.
 *
 * On the host instead (`onHost`, the default on a CPU-emulated adapter): each delta is read back and factored in
 * float64 by linalg/gramSvd.ts, one at a time, and its U and V uploaded as f32. There the GPU's Jacobi sweeps are the
 * slow part (a 768 x 768 SVD: 134 s on SwiftShader, 2 cores; about 2.3 s on the host, one core). On the GPU path too, a
 * matrix whose Jacobi sweeps reach the cap without converging is factored again on the host, rather than projected on
 * factors that are not orthogonal to tolerance.
 */
import { GpuError } from '../errors';
import { gramSvdSteps } from '../linalg/gramSvd';
import { runStepsYielding } from '../linalg/steps';
import { OutOfMemoryError, type GpuContext } from './device';
import { readBuffer } from './kernels';
import { factorsOf, type HeldFactors, type SvdFactors } from './opcmProject';
import { svdBytesPerMatrix, svdGpu, type GpuSvd } from './svd';

/** A Linear weight to project: its delta (f32 [m, n]) and shape. */
export interface SvdItem {
  name: string;
  m: number;
  n: number;
  delta: GPUBuffer;
}

/** GPU bytes one batch's SVD may hold by default (18 SVDs of 768 x 768, or 7 of 3072 x 768). */
export const DEFAULT_SVD_BATCH_BYTES = 256 * 2 ** 20;

/** How many m x n matrices one batch takes within `maxBytes` and the device's binding size (at least 1). */
export function svdBatchSize(ctx: GpuContext, m: number, n: number, maxBytes: number): number {
  const per = svdBytesPerMatrix(m, n);
  const byBinding = Math.floor(Math.min(ctx.info.limits.maxStorageBufferBindingSize, ctx.info.limits.maxBufferSize) / per.largestBinding);
  return Math.max(1, Math.min(Math.floor(maxBytes / per.total), byBinding));
}

const F32_BYTES = 4;

/** Options of SvdBatches. */
export interface SvdBatchOptions {
  /** GPU bytes one batch may hold (default DEFAULT_SVD_BATCH_BYTES; 0: one SVD at a time). */
  maxBytes?: number;
  /** Factor on the host (float64 Gram eigendecomposition) instead of the GPU's Jacobi (default false). */
  onHost?: boolean;
  /** Stops a host SVD midway (CancelledError). */
  signal?: AbortSignal;
  /** The GPU SVD's sweep cap (default svdGpu's); a matrix that reaches it is factored again on the host. */
  maxSweeps?: number;
}

/** The factors of the items' deltas, computed in batches on demand (see the module comment). */
export class SvdBatches {
  private readonly ready = new Map<string, { svd: HeldFactors; index: number }>();
  /** Factors of each batch not yet released; its buffers go when none are left. */
  private readonly left = new Map<HeldFactors, number>();
  private readonly taken = new Set<string>();

  private readonly maxBytes: number;
  private readonly onHost: boolean;
  private readonly signal: AbortSignal | undefined;
  private readonly maxSweeps: number | undefined;

  constructor(
    private readonly ctx: GpuContext,
    private readonly items: readonly SvdItem[],
    opts: SvdBatchOptions = {},
  ) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_SVD_BATCH_BYTES;
    this.onHost = opts.onHost ?? false;
    this.signal = opts.signal;
    this.maxSweeps = opts.maxSweeps;
  }

  /** The factors of `name`'s delta (an item); call release(name) when its projection is recorded. */
  async factors(name: string): Promise<SvdFactors> {
    if (!this.ready.has(name)) await (this.onHost ? this.factorOnHost(this.item(name)) : this.takeBatch(name));
    const { svd, index } = this.ready.get(name)!;
    return factorsOf(svd, index);
  }

  release(name: string): void {
    const entry = this.ready.get(name);
    if (!entry) return;
    this.ready.delete(name);
    const left = this.left.get(entry.svd)! - 1;
    if (left > 0) this.left.set(entry.svd, left);
    else this.free(entry.svd);
  }

  /** Frees every batch still held (after an error, or factors never asked for). */
  destroy(): void {
    for (const svd of this.left.keys()) this.free(svd);
    this.ready.clear();
  }

  private free(svd: HeldFactors): void {
    this.left.delete(svd);
    this.ctx.destroyBuffer(svd.u);
    this.ctx.destroyBuffer(svd.v);
  }

  private item(name: string): SvdItem {
    const item = this.items.find((x) => x.name === name);
    if (!item) throw new Error(`SvdBatches: ${name} is not one of the weights to project`);
    return item;
  }

  /**
   * SVDs of `name` and the next items of its shape not taken yet, as many as one batch holds; a batch that does not
   * fit in GPU memory is halved until it does (one SVD alone fails as it always did).
   */
  private async takeBatch(name: string): Promise<void> {
    const at = this.items.indexOf(this.item(name));
    const { m, n } = this.items[at]!;
    const same = this.items.slice(at).filter((x) => x.m === m && x.n === n && !this.taken.has(x.name));
    for (let size = svdBatchSize(this.ctx, m, n, this.maxBytes); ; size = Math.ceil(size / 2)) {
      try {
        return await this.runBatch(same.slice(0, size), m, n);
      } catch (e) {
        if (!(e instanceof OutOfMemoryError) || size === 1) throw e;
      }
    }
  }

  private async runBatch(batch: SvdItem[], m: number, n: number): Promise<void> {
    const name = batch[0]!.name;
    const label = batch.length === 1 ? `${name} delta` : `${batch.length} ${m}x${n} deltas from ${name}`;
    const opts = { label, ...(this.maxSweeps === undefined ? {} : { maxSweeps: this.maxSweeps }) };
    let svd: GpuSvd;
    if (batch.length === 1) svd = await this.ctx.scoped(`opcm SVD of ${label}`, () => svdGpu(this.ctx, batch[0]!.delta, m, n, opts));
    else {
      const bytes = m * n * F32_BYTES;
      const packed = this.ctx.createBuffer(`opcm ${label}`, batch.length * bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      try {
        const encoder = this.ctx.device.createCommandEncoder({ label: `opcm pack ${label}` });
        batch.forEach((x, i) => encoder.copyBufferToBuffer(x.delta, 0, packed, i * bytes, bytes));
        this.ctx.device.queue.submit([encoder.finish()]);
        svd = await this.ctx.scoped(`opcm SVD of ${label}`, () => svdGpu(this.ctx, packed, m, n, { ...opts, batch: batch.length }));
      } catch (e) {
        // Name the weight, not its place in the batch.
        const bad = e instanceof GpuError ? /matrix (\d+) of the batch contains NaN or Infinity/.exec(e.message) : null;
        if (bad) throw new GpuError('validation', `${batch[Number(bad[1])]!.name} delta: contains NaN or Infinity`);
        throw e;
      } finally {
        this.ctx.destroyBuffer(packed);
      }
    }
    // A matrix whose sweeps reached the cap has factors that are not orthogonal to tolerance: the host factors it again.
    const converged = batch.map((item, index) => ({ item, index })).filter(({ index }) => svd.convergedEach[index]);
    this.hold(svd, converged);
    for (const item of batch) if (!this.taken.has(item.name)) await this.factorOnHost(item);
  }

  /** Makes the factors of `entries` (each an item and its matrix in `svd`) ready; frees `svd` at once when none is. */
  private hold(svd: HeldFactors, entries: readonly { item: SvdItem; index: number }[]): void {
    if (!entries.length) return this.free(svd);
    this.left.set(svd, entries.length);
    for (const { item, index } of entries) {
      this.taken.add(item.name);
      this.ready.set(item.name, { svd, index });
    }
  }

  /** The item's delta read back, factored in float64 on the host, U and V uploaded as f32 (no Jacobi sweeps to report). */
  private async factorOnHost(item: SvdItem): Promise<void> {
    const { name, m, n } = item;
    const bytes = await readBuffer(this.ctx, item.delta, m * n * F32_BYTES);
    let svd;
    try {
      // In steps that give the event loop a turn every few tens of ms: the page runs the engine on its main thread.
      svd = await runStepsYielding(gramSvdSteps(new Float32Array(bytes.buffer, bytes.byteOffset, m * n), m, n), undefined, this.signal);
    } catch (e) {
      if (e instanceof Error && /NaN or Infinity/.test(e.message)) throw new GpuError('validation', `${name} delta: contains NaN or Infinity`);
      throw e;
    }
    const upload = (what: string, values: Float64Array) => {
      const buf = this.ctx.createBuffer(`opcm ${what} of ${name} delta`, values.length * F32_BYTES, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      this.ctx.device.queue.writeBuffer(buf, 0, Float32Array.from(values));
      return buf;
    };
    const u = upload('U', svd.u);
    let v: GPUBuffer;
    try {
      v = upload('V', svd.v);
    } catch (e) {
      this.ctx.destroyBuffer(u);
      throw e;
    }
    this.hold({ u, v, s: svd.s, k: svd.k }, [{ item, index: 0 }]);
  }
}
