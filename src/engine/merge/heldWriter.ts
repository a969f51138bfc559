/**
 * Holding a pass's output back. Global TIES merges with an estimated majority sign when the exact one is known only at
 * the end of its output pass (plans/ties.ts); the few chunks whose columns are tied depend on it. Rather than run the
 * whole pass again when the estimate was wrong, runMerge holds every write of the pass in memory (HeldWriter), the
 * fused pass runs just those chunks again and patches their held bytes in place (FusedOutput.rerun), and the held
 * writes then go to the real writers in their order.
 */

/** Where merged tensors are written, chunk by chunk, in the file's tensor order (SafetensorsWriter, HeldWriter). */
export interface TensorWriter {
  /**
   * Appends the next bytes of tensor `name`. `owned`: the caller hands the array over and never touches it again, so a
   * holding writer may keep it without a copy (and the caller may still patch it in place before the release).
   */
  write(name: string, bytes: Uint8Array, owned?: boolean): Promise<void>;
}

/** Keeps writes in order until `release` passes them on to `to`. */
export class HeldWriter implements TensorWriter {
  private held: { name: string; bytes: Uint8Array }[] = [];

  constructor(private readonly to: TensorWriter) {}

  async write(name: string, bytes: Uint8Array, owned = false): Promise<void> {
    this.held.push({ name, bytes: owned ? bytes : bytes.slice() });
  }

  /** Writes everything held, in order, to the writer behind (and holds nothing after). */
  async release(): Promise<void> {
    const held = this.held;
    this.held = [];
    for (const h of held) await this.to.write(h.name, h.bytes, true);
  }
}

/** Output bytes a pass may hold by default (MergeRun.holdBytes): a ViT-B/32 in f32 is about 350 MB. */
export const HOLD_BYTES = 2 ** 30;
