/**
 * The statistics methods compute from one set of task vectors, kept across merges of those models (PlanContext.memo,
 * one per MetricsCache entry): TIES's thresholds at a k, Model Stock's Grams, Breadcrumbs' kept bits... Keyed by the
 * plan and the parameters the value depends on, so that a merge which changes other parameters finds it.
 *
 * Bounded: each value is stored with its size in bytes, and the least recently used values go once the total passes
 * `limitBytes` (a user who drags k through a hundred values must not fill the memory with thresholds). A value larger
 * than the limit is not kept. Values are shared: readers never change them in place.
 */
export class PlanMemo {
  private readonly values = new Map<string, { value: unknown; bytes: number }>();
  private held = 0;

  constructor(readonly limitBytes = 64 * 2 ** 20) {}

  /** The value of `key`, made the most recently used; undefined when it is not kept. */
  get(key: string): unknown {
    const found = this.values.get(key);
    if (!found) return undefined;
    this.values.delete(key);
    this.values.set(key, found);
    return found.value;
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** Keeps `value` (of about `bytes` bytes) under `key`, replacing what was there; the oldest values go over the limit. */
  set(key: string, value: unknown, bytes: number): void {
    const old = this.values.get(key);
    if (old) {
      this.values.delete(key);
      this.held -= old.bytes;
    }
    if (bytes > this.limitBytes) return;
    this.values.set(key, { value, bytes });
    this.held += bytes;
    for (const [k, v] of this.values) {
      if (this.held <= this.limitBytes) break;
      this.values.delete(k);
      this.held -= v.bytes;
    }
  }

  /**
   * Whether a value of `bytes` is worth keeping as one of a set that a merge needs whole (Breadcrumbs' row bits, the
   * kept entries): at most half the room, so that filling the memo with it does not evict the rest of itself.
   */
  roomFor(bytes: number): boolean {
    return bytes <= this.limitBytes / 2;
  }

  /** Bytes of the values kept. */
  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.values.size;
  }
}
