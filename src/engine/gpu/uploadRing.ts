/**
 * Host-to-GPU uploads through a small ring of MAP_WRITE staging buffers: the caller fills a mapped staging buffer in
 * place and `commit` copies it to its destination with copyBufferToBuffer. A slot is mapped again as soon as its copy
 * is submitted, so filling the next upload overlaps the GPU work queued before it. On Dawn + SwiftShader,
 * queue.writeBuffer of multi-megabyte chunks ran at 1.2-1.5 GB/s after its first call, this ring at 4-7 GB/s
 * (bench/README.md, upload probe).
 */
import { align16, type GpuContext } from './device';
import { GpuError } from '../errors';

interface Slot {
  buffer: GPUBuffer | null;
  /** Resolves once `buffer` is mapped again after its last copy. */
  ready: Promise<void>;
  /** The mapped range while mapped (getMappedRange may be called once per mapping). */
  mapped: ArrayBuffer | null;
}

/** A staging buffer being filled: write `view`, then `commit` it. */
export interface Upload {
  /** The mapped bytes, at least as many as requested (contents are left over from earlier uploads). */
  view: Uint8Array;
  /** Copies the first `bytes` bytes (a multiple of 4) to `dst` at `dstOffset` and submits the copy. */
  commit(dst: GPUBuffer, dstOffset: number, bytes: number): void;
}

export class UploadRing {
  private readonly slots: Slot[];
  private next = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly label: string,
    depth = 2,
  ) {
    this.slots = Array.from({ length: depth }, () => ({ buffer: null, ready: Promise.resolve(), mapped: null }));
  }

  /** Waits for the next slot to be free and mapped, grown to at least `bytes`. */
  async begin(bytes: number): Promise<Upload> {
    const { ctx } = this;
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    try {
      await slot.ready;
    } catch (e) {
      ctx.assertAlive();
      throw new GpuError('validation', `${this.label}: staging buffer could not be mapped: ${(e as Error).message}`);
    }
    const size = align16(bytes);
    if (!slot.buffer || slot.buffer.size < size) {
      if (slot.buffer) ctx.destroyBuffer(slot.buffer);
      slot.buffer = null;
      slot.mapped = null;
      slot.buffer = ctx.createBuffer(`${this.label} staging`, size, GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, true);
    }
    const buffer = slot.buffer;
    slot.mapped ??= buffer.getMappedRange();
    return {
      view: new Uint8Array(slot.mapped),
      commit: (dst, dstOffset, n) => {
        buffer.unmap();
        slot.mapped = null;
        const encoder = ctx.device.createCommandEncoder({ label: this.label });
        encoder.copyBufferToBuffer(buffer, 0, dst, dstOffset, n);
        ctx.device.queue.submit([encoder.finish()]);
        slot.ready = buffer.mapAsync(GPUMapMode.WRITE);
        // Awaited by the next `begin` of this slot; keep a failure from being unhandled meanwhile.
        slot.ready.catch(() => undefined);
      },
    };
  }

  destroy(): void {
    for (const s of this.slots) {
      if (s.buffer) this.ctx.destroyBuffer(s.buffer);
      s.buffer = null;
      s.mapped = null;
      s.ready = Promise.resolve();
    }
  }
}
