/** Download progress of a Hub model: bytes done of the total, the network rate and the time left at that rate. */

export interface HubProgress {
  /** What is being read (repo and file). */
  file: string;
  /** Bytes of the selected tensors read so far, from the network or the cache. */
  doneBytes: number;
  totalBytes: number;
  /** Bytes received from the network (headers included): 0 on a warm cache. */
  downloadedBytes: number;
  /** Network bytes per second since the first byte arrived (0 before). */
  bytesPerSecond: number;
  /** Seconds left at the current rate; null while no rate is known, 0 when done. */
  etaSeconds: number | null;
}

/** Accumulates progress and reports it at most every `intervalMs` (and always when done). */
export function progressTracker(totalBytes: number, onProgress: ((p: HubProgress) => void) | undefined, intervalMs = 100, now: () => number = () => performance.now()) {
  let done = 0;
  let downloaded = 0;
  let firstByteAt: number | null = null;
  let lastReport = -Infinity;
  let file = '';
  const snapshot = (): HubProgress => {
    const elapsed = firstByteAt === null ? 0 : (now() - firstByteAt) / 1000;
    const rate = elapsed > 0 ? downloaded / elapsed : 0;
    const left = Math.max(0, totalBytes - done);
    return { file, doneBytes: done, totalBytes, downloadedBytes: downloaded, bytesPerSecond: rate, etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : null };
  };
  const report = (force: boolean) => {
    if (!onProgress) return;
    const t = now();
    if (!force && t - lastReport < intervalMs) return;
    lastReport = t;
    onProgress(snapshot());
  };
  return {
    setFile(name: string) {
      file = name;
    },
    /** Bytes received from the network. */
    received(n: number) {
      if (firstByteAt === null) firstByteAt = now();
      downloaded += n;
      report(false);
    },
    /** Bytes of the selected tensors now available. */
    completed(n: number) {
      done = Math.min(totalBytes, done + n);
      report(done >= totalBytes);
    },
    snapshot,
  };
}

export type ProgressTracker = ReturnType<typeof progressTracker>;
