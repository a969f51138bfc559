/**
 * Raw input chunks kept on the GPU from one merge to the next of the same models. The playground merges the same base
 * and models again at every slider move; a later merge takes each chunk an earlier one uploaded with the same layout
 * (the same tensor ranges, padded to the same blocks) instead of reading and uploading it again: the host's copy into
 * the staging buffer and the queue's copy out of it, most of a linear merge's time on a discrete GPU (bench/README.md).
 *
 * Chunks are kept in upload order up to a byte limit, so a model larger than the limit keeps its first chunks and
 * uploads the rest. Kernels only read raw inputs, so a kept chunk serves any number of merges and passes. A merge of
 * other inputs (or on another device, after a device loss) frees every chunk before it starts; inputs are told apart
 * by object identity (the same opened Model objects), not by their contents.
 */
import { OutOfMemoryError, type GpuContext } from '../gpu/device';
import type { RawSegment } from '../gpu/kernels';
import type { Model } from '../io/model';

/** One chunk of raw inputs in a GPU buffer the store owns (callers must not destroy it). */
export interface KeptChunk {
  buffer: GPUBuffer;
  segments: RawSegment[];
  bytes: number;
}

// Object identity of models as small numbers, for the key of a set of inputs.
const ids = new WeakMap<Model, number>();
let nextId = 1;
function idOf(m: Model): number {
  let id = ids.get(m);
  if (id === undefined) {
    id = nextId++;
    ids.set(m, id);
  }
  return id;
}

/** The key of a merge's inputs: theta0's model, then every model, in order (segment order). */
export function inputsKey(base: Model, models: readonly Model[]): string {
  return [base, ...models].map(idOf).join(',');
}

/** A buffer reserved for one chunk: `keep` it once filled, or `discard` it. */
export interface Reservation {
  buffer: GPUBuffer;
  keep(layout: string, segments: RawSegment[]): void;
  discard(): void;
}

export class ResidentInputs {
  private ctx: GpuContext | null = null;
  private inputs: string | null = null;
  private readonly chunks = new Map<string, KeptChunk>();
  private held = 0;
  private taken = 0;
  // Advanced by `clear`: a reservation made before it neither joins nor counts against the new chunks.
  private generation = 0;

  /** limitBytes: the most GPU memory the kept chunks may take (0 keeps nothing). */
  constructor(readonly limitBytes: number) {}

  /** Bytes of GPU memory the kept chunks take. */
  get bytes(): number {
    return this.held;
  }

  /** Chunks kept. */
  get size(): number {
    return this.chunks.size;
  }

  /** Chunks taken instead of uploaded since the store was made (for tests and the bench). */
  get hits(): number {
    return this.taken;
  }

  /** Called as a merge starts: binds the store to `ctx` and these inputs, freeing the chunks of any others. */
  use(ctx: GpuContext, base: Model, models: readonly Model[]): void {
    const key = inputsKey(base, models);
    if (this.ctx === ctx && this.inputs === key) return;
    this.clear();
    this.ctx = ctx;
    this.inputs = key;
  }

  /** The kept chunk laid out as `layout` for these inputs, or null (also when the store is bound to others). */
  get(ctx: GpuContext, inputs: string, layout: string): KeptChunk | null {
    if (ctx !== this.ctx || inputs !== this.inputs) return null;
    const chunk = this.chunks.get(layout) ?? null;
    if (chunk) this.taken++;
    return chunk;
  }

  /**
   * A buffer of `bytes` for a chunk to keep, when it fits under the limit and the store is bound to these inputs;
   * else null (the caller uploads into a buffer of its own). Fill it, then `keep` it, or `discard` it on failure.
   */
  reserve(ctx: GpuContext, inputs: string, label: string, bytes: number, usage: GPUBufferUsageFlags): Reservation | null {
    if (ctx !== this.ctx || inputs !== this.inputs || this.held + bytes > this.limitBytes) return null;
    let buffer: GPUBuffer;
    try {
      buffer = ctx.createBuffer(`${label} (resident)`, bytes, usage);
    } catch (e) {
      // The device (or the context's own limit) has no room: keep nothing more, and let the merge go on without it.
      if (e instanceof OutOfMemoryError) return null;
      throw e;
    }
    this.held += bytes;
    const generation = this.generation;
    let settled = false;
    const free = () => {
      // Bytes count against the store only while it still holds this generation's chunks.
      if (generation === this.generation) this.held -= bytes;
      ctx.destroyBuffer(buffer);
    };
    return {
      buffer,
      keep: (layout, segments) => {
        if (settled) return;
        settled = true;
        if (generation !== this.generation || this.chunks.has(layout)) free();
        else this.chunks.set(layout, { buffer, segments, bytes });
      },
      discard: () => {
        if (settled) return;
        settled = true;
        free();
      },
    };
  }

  /** Frees every kept chunk (work already submitted that reads them still completes). */
  clear(): void {
    for (const c of this.chunks.values()) this.ctx?.destroyBuffer(c.buffer);
    this.chunks.clear();
    this.held = 0;
    this.generation++;
    this.ctx = null;
    this.inputs = null;
  }
}
