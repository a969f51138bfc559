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
 *
 * A merge holds the store from `use` to the release it returns. A buffer the store lets go while any merge holds it
 * (cleared, or a chunk kept twice) is destroyed only when the last one releases: a merge may have taken a chunk and
 * not yet submitted the work that reads it, and a destroyed buffer in a submit is a validation error, which would
 * fail that merge, or another one whose error scope is open at the time.
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

/**
 * A buffer reserved for one chunk: `keep` it once filled, or `discard` it. Either way it stays valid until the merge
 * that reserved it releases the store (`use`), so that merge may go on to read it.
 */
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
  // Merges between `use` and their release, and the buffers let go while any was running (destroyed after the last).
  private active = 0;
  private readonly retired: { ctx: GpuContext; buffer: GPUBuffer }[] = [];

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

  /** Buffers let go while a merge holds the store, not yet destroyed (for tests). */
  get retiredCount(): number {
    return this.retired.length;
  }

  /**
   * Called as a merge starts: binds the store to `ctx` and these inputs, letting go of the chunks of any others.
   * Returns the merge's release (call it once, when the merge has submitted its last work: finished or failed).
   */
  use(ctx: GpuContext, base: Model, models: readonly Model[]): () => void {
    const key = inputsKey(base, models);
    if (this.ctx !== ctx || this.inputs !== key) {
      this.clear();
      this.ctx = ctx;
      this.inputs = key;
    }
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.active === 0) this.destroyRetired();
    };
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
      this.retire(ctx, buffer);
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

  /**
   * Lets go of every kept chunk: freed now when no merge holds the store, else when the last one releases it (work
   * already submitted that reads them completes either way).
   */
  clear(): void {
    const ctx = this.ctx;
    if (ctx) for (const c of this.chunks.values()) this.retire(ctx, c.buffer);
    this.chunks.clear();
    this.held = 0;
    this.generation++;
    this.ctx = null;
    this.inputs = null;
  }

  /** Destroys `buffer` now, or once no merge holds the store (one may still submit work that reads it). */
  private retire(ctx: GpuContext, buffer: GPUBuffer): void {
    this.retired.push({ ctx, buffer });
    if (this.active === 0) this.destroyRetired();
  }

  private destroyRetired(): void {
    for (const { ctx, buffer } of this.retired.splice(0)) ctx.destroyBuffer(buffer);
  }
}
