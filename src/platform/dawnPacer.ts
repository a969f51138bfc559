/**
 * Sleeps instead of spinning while Node waits for the GPU.
 *
 * Dawn's Node binding resolves a pending GPU promise (mapAsync, onSubmittedWorkDone, popErrorScope, ...) by queueing
 * setImmediate(process events) again and again until no promise is pending, so the main thread keeps a whole core
 * busy for as long as it waits. On a CPU-emulated adapter (SwiftShader) that core is one the "GPU" runs on: on a
 * 2-core machine, eight Task Arithmetic kernels over 1M elements took 280 to 330 ms with the spinning wait and about
 * 200 ms when the main thread slept instead.
 *
 * `pace` wraps a promise so that, while any wrapped promise is pending, every turn of the event loop also blocks for
 * a short slice (Atomics.wait). A slice is an eighth of the time waited so far, from 20 us to 1 ms: a short wait adds
 * at most an eighth to its latency, and a long one costs almost no CPU. Timers, I/O and the binding's own callbacks
 * still run on every turn. `installPacer` wraps the binding's promise-returning methods once.
 */

const MIN_SLICE_MS = 0.02;
const MAX_SLICE_MS = 1;

let pending = 0;
let waitingSince = 0;
let ticking = false;
let cell: Int32Array | null = null;

/** How long one turn of the event loop sleeps after `waitedMs` of waiting. */
export function sliceMs(waitedMs: number): number {
  return Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, waitedMs / 8));
}

/** Wrapped promises not yet settled (for tests). */
export function pacedPending(): number {
  return pending;
}

function tick(): void {
  if (pending === 0) {
    ticking = false;
    return;
  }
  cell ??= new Int32Array(new SharedArrayBuffer(4));
  // Nothing ever notifies the cell: the wait always runs to its timeout.
  Atomics.wait(cell, 0, 0, sliceMs(performance.now() - waitingSince));
  setImmediate(tick);
}

/** `p`, with the event loop sleeping a slice per turn until it settles. */
export function pace<T>(p: Promise<T>): Promise<T> {
  if (pending++ === 0) waitingSince = performance.now();
  if (!ticking) {
    ticking = true;
    setImmediate(tick);
  }
  return p.finally(() => {
    pending--;
  });
}

/** The binding's methods whose promise keeps its event-processing loop running. */
const PACED_METHODS: Record<string, readonly string[]> = {
  GPU: ['requestAdapter'],
  GPUAdapter: ['requestDevice'],
  GPUDevice: ['popErrorScope', 'createComputePipelineAsync', 'createRenderPipelineAsync'],
  GPUQueue: ['onSubmittedWorkDone'],
  GPUBuffer: ['mapAsync'],
  GPUShaderModule: ['getCompilationInfo'],
};

const installed = new WeakSet<object>();

/** Wraps the promise-returning methods of the binding's classes in `globals` (once per class). */
export function installPacer(globals: Record<string, unknown>): void {
  for (const [name, methods] of Object.entries(PACED_METHODS)) {
    const cls = globals[name] as { prototype?: Record<string, unknown> } | undefined;
    const proto = cls?.prototype;
    if (!proto || installed.has(proto)) continue;
    installed.add(proto);
    for (const method of methods) {
      const original = proto[method];
      if (typeof original !== 'function') continue;
      Object.defineProperty(proto, method, {
        configurable: true,
        writable: true,
        value: function paced(this: unknown, ...args: unknown[]) {
          return pace(Promise.resolve((original as (...a: unknown[]) => unknown).apply(this, args)));
        },
      });
    }
  }
}
