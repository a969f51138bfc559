/**
 * Recovering from GPU faults by running the work again from the beginning. `withDeviceRetry` reruns a task once on a
 * fresh device when the device was lost during it; `withChunkFallback` reruns a merge with smaller chunks when a
 * buffer did not fit in GPU memory. Nothing of a failed attempt is reused: the rerun reads its inputs again from their
 * ByteSources and makes every buffer anew, which is what restores the state. Outputs a failed attempt opened are
 * aborted, so only the successful attempt leaves a file.
 */
import { AlignmentError, CancelledError, ConfigError, FormatError, GpuError } from '../errors';
import type { ByteSink } from '../io/byteSource';
import type { Model } from '../io/model';
import type { ResolvedConfig } from '../merge/config';
import { OutOfMemoryError, type GpuContext } from './device';

/** What hands out the current context (a GpuRuntime): after a loss it must give a new device. */
export interface ContextSource {
  context(): Promise<GpuContext>;
}

/** One run of a retried task. */
export interface Attempt {
  /** 0 for the first run, 1 for the rerun after a device loss. */
  readonly index: number;
  /** Registers an output this attempt opened (returns it): if the attempt fails, it is aborted before anything else. */
  sink<S extends ByteSink>(sink: S): S;
}

export interface DeviceRetryOptions {
  /** Called when the device was lost and the task starts again on a new one (the page tells the user). */
  onRetry?: (reason: string) => void;
  /** The task's cancel signal: a cancelled task is never rerun. */
  signal?: AbortSignal;
}

/**
 * How long a failure waits for the device to report a loss. A loss can surface first as some other failure (a
 * readback that rejects) before `device.lost` settles; Dawn settles it within a few milliseconds.
 */
const LOSS_GRACE_MS = 200;

/** Errors about the input or a cancellation: whatever the device does, running again would not help. */
function isInputOrCancel(e: unknown): boolean {
  return e instanceof CancelledError || e instanceof ConfigError || e instanceof FormatError || e instanceof AlignmentError || (e as Error)?.name === 'AbortError';
}

/** Why `ctx`'s device was lost, if the failure `e` came from a loss; null for any other failure. */
async function lossBehind(ctx: GpuContext, e: unknown, signal?: AbortSignal): Promise<string | null> {
  if (signal?.aborted || isInputOrCancel(e)) return null;
  if (ctx.lostReason === null) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([ctx.device.lost, new Promise((resolve) => (timer = setTimeout(resolve, LOSS_GRACE_MS)))]);
    clearTimeout(timer);
    // device.lost settles before the context's own handler runs: let it record the reason.
    await Promise.resolve();
  }
  // A context its owner destroyed was ended on purpose; a new device would outlive the owner.
  if (ctx.released) return null;
  return ctx.lostReason;
}

/**
 * Runs `task` on the runtime's current context; if the device is lost during it, aborts the outputs the attempt
 * registered, calls `onRetry(reason)`, and runs the task once more on a new device. A second loss, or any other
 * failure, rejects (a second loss with a GpuError('device-lost') that gives both reasons).
 */
export async function withDeviceRetry<T>(runtime: ContextSource, task: (ctx: GpuContext, attempt: Attempt) => Promise<T>, opts: DeviceRetryOptions = {}): Promise<T> {
  let firstLoss: string | null = null;
  for (let index = 0; ; index++) {
    const ctx = await runtime.context();
    const opened: ByteSink[] = [];
    try {
      return await task(ctx, { index, sink: (s) => (opened.push(s), s) });
    } catch (e) {
      // Engines abort what they opened themselves; this covers outputs already committed when a later step failed.
      await Promise.all(opened.map((s) => s.abort().catch(() => undefined)));
      const reason = await lossBehind(ctx, e, opts.signal);
      if (reason === null) throw e;
      if (firstLoss !== null) {
        throw new GpuError('device-lost', `The GPU device was lost twice: first (${firstLoss}), then again on the new device (${reason}). Nothing was saved; your settings are kept.`);
      }
      firstLoss = reason;
      ctx.destroy();
      opts.onRetry?.(reason);
    }
  }
}

/** Smallest chunk the fallback tries by default (elements): 64 Ki f32 = 256 KiB per buffer. */
export const DEFAULT_CHUNK_FLOOR = 1 << 16;

/** A tensor to merge and its number of elements. */
export interface TensorSize {
  name: string;
  numel: number;
}

/** The tensors of a model with their sizes (the base's tensors are the ones a merge visits). */
export function tensorSizes(model: Model): TensorSize[] {
  return [...model.tensors.values()].map((t) => ({ name: t.info.name, numel: t.info.shape.reduce((a, b) => a * b, 1) }));
}

export interface ChunkFallbackOptions {
  /** Smallest chunk to try, in elements (a multiple of 1024; default DEFAULT_CHUNK_FLOOR). */
  floor?: number;
  /**
   * The tensors being merged (e.g. `tensorSizes(base)`). Chunks at least as large as the largest tensor all hold whole
   * tensors, so the first fallback starts below it instead of halving sizes that change nothing; and the final error
   * names the tensor whose buffer did not fit.
   */
  tensors?: readonly TensorSize[];
  /** Called before each rerun with the new chunk size and the allocation failure that caused it. */
  onFallback?: (chunkElements: number, error: GpuError) => void;
}

/** What one run of a fallback task passes to the engine besides its config (runMerge's `cacheBytes`). */
export interface FallbackRun {
  /**
   * undefined on the first run (the engine's default); 0 on reruns: chunks are read again for each pass instead of
   * staying on the GPU between passes, or multi-pass methods would hold the whole model whatever the chunk size.
   */
  cacheBytes: number | undefined;
}

/** Whether `e` is an allocation the GPU could not satisfy (a real one, or a context's `maxAllocatedBytes`). */
export function isOutOfMemory(e: unknown): e is GpuError {
  return e instanceof GpuError && e.kind === 'out-of-memory';
}

/** Half of `elements`, rounded down to a multiple of 1024 (what config validation accepts). */
function halve(elements: number): number {
  return Math.floor(elements / 2048) * 1024;
}

/**
 * Runs a merge `task` with `config`; when a buffer allocation fails, runs it again without the between-pass cache and
 * with half the chunk size, down to `floor`, then rejects with a GpuError('out-of-memory') naming the tensor, the
 * buffer and the bytes it asked for. The task receives the config and the cache size to pass to the engine.
 * Continual methods hold whole tensors whatever the chunk size, so for them an allocation failure is reported at once.
 */
export async function withChunkFallback<T>(config: ResolvedConfig, task: (config: ResolvedConfig, run: FallbackRun) => Promise<T>, opts: ChunkFallbackOptions = {}): Promise<T> {
  const floor = opts.floor ?? DEFAULT_CHUNK_FLOOR;
  const largest = Math.max(0, ...(opts.tensors ?? []).map((t) => t.numel));
  const continual = config.method.family === 'continual';
  const tried: number[] = [];
  let chunkElements = config.options.chunkElements;
  for (;;) {
    tried.push(chunkElements);
    try {
      return await task({ ...config, options: { ...config.options, chunkElements } }, { cacheBytes: tried.length === 1 ? undefined : 0 });
    } catch (e) {
      if (!isOutOfMemory(e)) throw e;
      const next = halve(largest > 0 ? Math.min(chunkElements, largest) : chunkElements);
      if (continual || next < Math.max(floor, 1024)) throw outOfMemory(e, opts.tensors ?? [], tried, continual);
      chunkElements = next;
      opts.onFallback?.(chunkElements, e);
    }
  }
}

/** The tensor a buffer label names (chunks, uploads and per-tensor buffers carry it), the longest match winning. */
function tensorOf(label: string, tensors: readonly TensorSize[]): string | null {
  let best: string | null = null;
  for (const t of tensors) if (label.includes(t.name) && t.name.length > (best?.length ?? 0)) best = t.name;
  return best;
}

/** The final out-of-memory error: the tensor and buffer, the bytes asked for, and what was tried. */
function outOfMemory(e: GpuError, tensors: readonly TensorSize[], tried: number[], continual: boolean): GpuError {
  const label = e instanceof OutOfMemoryError ? e.label : e.message;
  const tensor = tensorOf(label, tensors);
  // Buffers that name no tensor (scratch space) are sized by the largest chunk, i.e. by the largest tensor.
  const largest = tensors.reduce<TensorSize | null>((a, t) => (a && a.numel >= t.numel ? a : t), null);
  const where = tensor ? ` for tensor ${tensor}` : largest ? ` for the chunks of tensor ${largest.name} (${largest.numel} elements, the largest)` : '';
  const what = e instanceof OutOfMemoryError ? `'${e.label}' asked for ${e.bytes} bytes with ${e.inUse} bytes already in use` : e.message;
  const how = continual ? 'continual methods hold whole tensors, so smaller chunks cannot help' : `tried chunks of ${tried.join(', ')} elements`;
  return new GpuError('out-of-memory', `Not enough GPU memory${where}: ${what} (${how}). Merge fewer or smaller models, or free GPU memory used by other programs or tabs.`);
}
