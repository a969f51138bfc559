/**
 * User actions: they call the engine and write progress and results into the store. The engine runs on the page's
 * thread but never blocks it: every step is asynchronous GPU work.
 */
import { resolveConfig } from '../engine/merge/config';
import { runContinual } from '../engine/merge/continual';
import { runMerge } from '../engine/merge/runMerge';
import type { Model } from '../engine/io/model';
import { GpuRuntime } from '../engine/gpu/device';
import { getMethod } from '../engine/methods/registry';
import { browserGpu, NO_WEBGPU_MESSAGE } from '../platform/browserGpu';
import { blobSink, openModelFromFiles } from '../platform/browserFiles';
import { currentSuite, loadSuiteFrom, mergeSuite } from './suiteActions';
import { appStore, type ModelEntry } from './store';

// Live objects that cannot go into the store.
const opened = new Map<string, Model>();
let runtime: GpuRuntime | null = null;
let running: AbortController | null = null;
let nextId = 1;

const set = appStore.setState;

/** Checks for WebGPU and starts the GPU device. */
export async function initGpu(): Promise<void> {
  const gpu = browserGpu();
  if (!gpu) {
    set({ gpu: { state: 'unavailable', message: NO_WEBGPU_MESSAGE } });
    return;
  }
  try {
    runtime = new GpuRuntime(gpu, { label: 'merge-playground page', onLost: (reason) => set({ run: { state: 'error', progress: 0, message: `The GPU device was lost (${reason}). Your settings are kept; merge again to restart it.` } }) });
    const ctx = await runtime.context();
    set({ gpu: { state: 'ready', adapter: ctx.info.adapter, software: ctx.info.isSoftware } });
  } catch (e) {
    set({ gpu: { state: 'unavailable', message: (e as Error).message } });
  }
}

/** The embedded demo suite, served with the page. */
export const DEMO_URL = `${import.meta.env.BASE_URL}demo/`;

/** Opens the demo suite: its base and fine-tuned models become the page's models, scored and merged at once. */
export async function loadDemo(url = DEMO_URL): Promise<void> {
  if (!runtime) return;
  try {
    const ctx = await runtime.context();
    const suite = await loadSuiteFrom(ctx, url);
    // A user who picked models while the demo loaded keeps them: their choice wins.
    if (appStore.getState().base) {
      set({ suite: null });
      return;
    }
    opened.clear();
    opened.set(DEMO_BASE, suite.base);
    const size = (m: { tensors: Map<string, { info: { begin: number; end: number } }> }) => [...m.tensors.values()].reduce((a, t) => a + t.info.end - t.info.begin, 0);
    const models = suite.tasks.map((t) => {
      const id = `demo:${t.task.id}`;
      opened.set(id, t.model);
      return { id, name: t.task.title, bytes: size(t.model), tensors: t.model.tensors.size };
    });
    set({ base: { id: DEMO_BASE, name: `${suite.manifest.name}: base`, bytes: size(suite.base), tensors: suite.base.tensors.size }, models, inputError: null });
    await merge();
  } catch (e) {
    set((s) => ({ suite: s.suite ? { ...s.suite, state: 'error', message: (e as Error).message } : null }));
  }
}

const DEMO_BASE = 'demo:base';

/** True while the page's models are the suite's (then every merge is scored on the suite). */
function suiteMode(): boolean {
  const s = appStore.getState();
  return !!currentSuite() && s.suite !== null && s.base?.id === DEMO_BASE && s.models.every((m) => m.id.startsWith('demo:'));
}

let liveTimer: ReturnType<typeof setTimeout> | null = null;

/** Re-merges shortly after the last parameter change (live view on the suite); older work is cancelled. */
function scheduleLiveMerge(): void {
  if (!suiteMode()) return;
  if (liveTimer) clearTimeout(liveTimer);
  liveTimer = setTimeout(() => {
    liveTimer = null;
    void merge();
  }, 150);
}

async function openEntry(files: File[]): Promise<ModelEntry> {
  const model = await openModelFromFiles(files);
  const id = `m${nextId++}`;
  opened.set(id, model);
  const bytes = files.reduce((s, f) => s + f.size, 0);
  return { id, name: model.name, bytes, tensors: model.tensors.size };
}

/** Sets the base (pretrained) model from picked files. */
export async function setBaseFiles(files: File[]): Promise<void> {
  if (!files.length) return;
  try {
    const entry = await openEntry(files);
    const old = appStore.getState().base;
    if (old) opened.delete(old.id);
    // Own files replace the demo: its models no longer belong together.
    if (old?.id === DEMO_BASE) {
      for (const m of appStore.getState().models) opened.delete(m.id);
      set({ models: [], suite: null, report: null, continual: null });
    }
    set({ base: entry, inputError: null });
  } catch (e) {
    set({ inputError: (e as Error).message });
  }
}

/** Adds fine-tuned models: one per .safetensors file, or one sharded model if an index file is among them. */
export async function addModelFiles(files: File[]): Promise<void> {
  if (!files.length) return;
  const groups = files.some((f) => f.name.endsWith('.index.json')) ? [files] : files.map((f) => [f]);
  const added: ModelEntry[] = [];
  try {
    for (const g of groups) added.push(await openEntry(g));
    // Models of one's own next to the demo's: the suite no longer scores this set.
    set((s) => ({ models: [...s.models, ...added], inputError: null, suite: null }));
  } catch (e) {
    set((s) => ({ models: [...s.models, ...added], inputError: (e as Error).message }));
  }
}

/** Removes one fine-tuned model. */
export function removeModel(id: string): void {
  opened.delete(id);
  set((s) => ({ models: s.models.filter((m) => m.id !== id), suite: id.startsWith('demo:') ? null : s.suite }));
}

/** Chooses the merging method (parameters go back to that method's defaults). */
export function setMethod(id: string): void {
  getMethod(id);
  set({ method: id, params: {} });
  scheduleLiveMerge();
}

/** Sets one method parameter. */
export function setParam(name: string, value: unknown): void {
  set((s) => ({ params: { ...s.params, [name]: value } }));
  scheduleLiveMerge();
}

export function setOutputDtype(dtype: 'base' | 'F32' | 'F16' | 'BF16'): void {
  set({ outputDtype: dtype });
}

/** Merges on the GPU, fills the report and offers the merged file for download. */
export async function merge(): Promise<void> {
  const s = appStore.getState();
  const base = s.base && opened.get(s.base.id);
  const models = s.models.map((m) => opened.get(m.id)).filter((m): m is Model => !!m);
  if (!runtime || !base || !models.length) return;
  running?.abort();
  const controller = new AbortController();
  running = controller;
  for (const o of s.outputs) URL.revokeObjectURL(o.url);
  set({ run: { state: 'merging', progress: 0, message: null }, outputs: [] });
  try {
    const config = resolveConfig({ method: s.method, params: s.params, options: { outputDtype: s.outputDtype, mixedDtypes: suiteMode() } });
    const ctx = await runtime.context();
    const sinks: { name: string; sink: ReturnType<typeof blobSink> }[] = [];
    if (suiteMode() && config.method.id !== 'tall_masks') {
      const sink = blobSink(`merged-${s.method}.safetensors`);
      const report = await mergeSuite(ctx, config, JSON.stringify([s.method, s.params]), controller.signal, async () => sink);
      if (controller.signal.aborted) return;
      const blob = sink.blob()!;
      set({
        report: 'tensors' in report ? report : null,
        continual: 'steps' in report ? report : null,
        run: { state: 'done', progress: 1, message: null },
        outputs: [{ url: URL.createObjectURL(blob), name: sink.name, bytes: blob.size }],
      });
      return;
    }
    if (config.method.family === 'continual') {
      const sink = blobSink(`merged-${s.method}.safetensors`);
      sinks.push({ name: sink.name, sink });
      const continual = await runContinual(ctx, {
        base,
        models,
        config,
        output: async () => sink,
        signal: controller.signal,
        onProgress: (p) => set({ run: { state: 'merging', progress: p.step / p.steps, message: `step ${p.step + 1} of ${p.steps}: ${p.tensor}` } }),
      });
      if (controller.signal.aborted) return;
      set({
        continual: continual,
        report: null,
        run: { state: 'done', progress: 1, message: null },
        outputs: [{ url: URL.createObjectURL(sink.blob()!), name: sink.name, bytes: sink.blob()!.size }],
      });
      return;
    }
    const report = await runMerge(ctx, {
      base,
      models,
      config,
      output: async (index, label) => {
        const name = label === null ? `merged-${s.method}.safetensors` : `${s.method}-${index}-${label.replace(/\.safetensors$/, '')}.safetensors`;
        const sink = blobSink(name);
        sinks.push({ name, sink });
        return sink;
      },
      signal: controller.signal,
      onProgress: (p) => set({ run: { state: 'merging', progress: p.totalBytes ? Math.min(1, p.doneBytes / p.totalBytes) : 1, message: `${p.phase}: ${p.tensor}` } }),
    });
    if (controller.signal.aborted) return;
    const outputs = sinks.map(({ name, sink }) => ({ name, blob: sink.blob()! }));
    set({
      report,
      continual: null,
      run: { state: 'done', progress: 1, message: null },
      outputs: outputs.map(({ name, blob }) => ({ url: URL.createObjectURL(blob), name, bytes: blob.size })),
    });
  } catch (e) {
    if (controller.signal.aborted) return;
    set({ run: { state: 'error', progress: 0, message: (e as Error).message } });
  } finally {
    if (running === controller) running = null;
  }
}

/** Cancels a running merge; nothing is offered for download. */
export function cancelMerge(): void {
  running?.abort();
  running = null;
  set({ run: { state: 'idle', progress: 0, message: 'Merge cancelled.' } });
}
