/**
 * Live objects of the page that cannot go into the store: the GPU runtime and the opened models (File-backed or
 * HTTP-backed readers), keyed by the store's model ids.
 */
import { GpuRuntime, type GpuContext } from '../engine/gpu/device';
import type { Model } from '../engine/io/model';
import { browserGpu, NO_WEBGPU_MESSAGE } from '../platform/browserGpu';
import { appStore } from './store';

export const opened = new Map<string, Model>();
let runtime: GpuRuntime | null = null;
let nextId = 1;
let settledFromLink = false;

/** A share link chose the settled sample size: the software-adapter default must not override it. */
export function keepSettledSamples(): void {
  settledFromLink = true;
}

/** A fresh id for a model the user opened. */
export const newModelId = (): string => `m${nextId++}`;

/** Checks for WebGPU and starts the GPU device. */
export async function initGpu(): Promise<void> {
  const gpu = browserGpu();
  if (!gpu) {
    appStore.setState({ gpu: { state: 'unavailable', message: NO_WEBGPU_MESSAGE } });
    return;
  }
  try {
    runtime = new GpuRuntime(gpu, {
      label: 'merge-playground page',
      // During a merge the retry says what happens; between merges the next one simply starts a new device.
      onLost: (reason) =>
        appStore.setState((s) => (s.run.state === 'merging' ? {} : { run: { ...s.run, message: `The GPU device was lost (${reason}); the next merge starts a new one. Your settings are kept.` } })),
    });
    const ctx = await runtime.context();
    appStore.setState((s) => ({
      gpu: { state: 'ready', adapter: ctx.info.adapter, software: ctx.info.isSoftware },
      // A CPU-emulated GPU scores tens of images/s: keep the live sample once the controls rest too (the user can raise it).
      evaluation: ctx.info.isSoftware && !settledFromLink ? { ...s.evaluation, settledSamples: s.evaluation.liveSamples } : s.evaluation,
    }));
  } catch (e) {
    appStore.setState({ gpu: { state: 'unavailable', message: (e as Error).message } });
  }
}

/** The current GPU context (a new device after a loss), or null without WebGPU. */
export async function gpuContext(): Promise<GpuContext | null> {
  return runtime ? runtime.context() : null;
}

/** The runtime itself (for work that retries after a device loss). */
export const gpuRuntime = (): GpuRuntime | null => runtime;
