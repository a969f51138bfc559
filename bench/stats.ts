/** Timing statistics: every figure of the benchmark is the median of repeated runs after warm-up. */

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Repeated timings of one thing, in milliseconds. */
export interface Timing {
  /** Median of `runs`. */
  ms: number;
  /** Every timed run, in order (warm-up runs excluded). */
  runs: number[];
  warmups: number;
}

/** How many times to run: `warmups` untimed runs, then `reps` timed ones. */
export interface Repeats {
  warmups: number;
  reps: number;
}

/** Runs `fn` warmups + reps times and returns the median of the timed runs (wall clock, performance.now()). */
export async function timeIt(repeats: Repeats, fn: () => Promise<void>): Promise<Timing> {
  if (!Number.isInteger(repeats.reps) || repeats.reps < 1) throw new RangeError(`reps must be a positive integer, got ${repeats.reps}`);
  for (let i = 0; i < repeats.warmups; i++) await fn();
  const runs: number[] = [];
  for (let i = 0; i < repeats.reps; i++) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  return { ms: median(runs), runs, warmups: repeats.warmups };
}

/** Bytes per millisecond to GB/s (1 GB = 1e9 bytes). */
export function gbPerSecond(bytes: number, ms: number): number {
  return bytes / ms / 1e6;
}

/** Samples the process's resident memory while `fn` runs; returns fn's value and the peak RSS in bytes. */
export async function withPeakRss<T>(fn: () => Promise<T>, everyMs = 25): Promise<{ value: T; peakRss: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), everyMs);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRss: peak };
  } finally {
    clearInterval(timer);
  }
}
