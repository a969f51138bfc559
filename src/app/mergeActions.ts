/**
 * Merging from the page. On the demo suite every change re-merges and re-scores live: first on a small sample while
 * the user is still moving a slider, then on the larger "settled" sample once the controls rest. Newer work cancels
 * older work, so nothing stale is ever queued. Own models (no suite) merge when the user presses the button.
 */
import { resolveConfig } from '../engine/merge/config';
import { runContinual } from '../engine/merge/continual';
import { runMerge } from '../engine/merge/runMerge';
import type { Model } from '../engine/io/model';
import { blobSink } from '../platform/browserFiles';
import { gpuRuntime, opened } from './runtime';
import { tensorSizes, withChunkFallback, withDeviceRetry } from '../engine/gpu/retry';
import { currentSuite, ensureReferences, mergeSuite, residentInputs, suiteBaseId, taskVectorMetrics } from './suiteActions';
import { appStore, type AppState } from './store';

let running: AbortController | null = null;
let liveTimer: ReturnType<typeof setTimeout> | null = null;
let settleTimer: ReturnType<typeof setTimeout> | null = null;

/** How long the controls must rest before the settled (larger) evaluation starts. */
const SETTLE_MS = 700;
/** Coalesces slider events: a merge starts this long after the last change. */
const LIVE_MS = 150;

const set = appStore.setState;

/** "merge: encoder.layers.0.mlp.fc1.weight", or just the phase when it is not about one tensor. */
const phaseText = (p: { phase: string; tensor: string }) => (p.tensor ? `${p.phase}: ${p.tensor}` : p.phase);

export const DEMO_BASE = 'demo:base';

/** True while the page's models are the suite's (then every merge is scored on the suite). */
export function suiteMode(s: AppState = appStore.getState()): boolean {
  const base = suiteBaseId();
  const prefix = base.slice(0, base.indexOf(':') + 1);
  return !!currentSuite() && s.suite !== null && s.base?.id === base && s.models.every((m) => m.id.startsWith(prefix));
}

/** The fine-tuned models that take part, in the page's order. */
export const enabledIds = (s: AppState): string[] => s.models.filter((m) => m.enabled).map((m) => m.id);

/** What a merge's results belong to: method, parameters and models (stale results are labelled as such). */
export const mergeKey = (s: AppState): string => JSON.stringify([s.method, s.params, enabledIds(s)]);

function clearTimers(): void {
  if (liveTimer) clearTimeout(liveTimer);
  if (settleTimer) clearTimeout(settleTimer);
  liveTimer = settleTimer = null;
}

/** Re-merges shortly after the last change (live view on the suite); older work is cancelled. */
export function scheduleLiveMerge(): void {
  if (!suiteMode()) return;
  clearTimers();
  running?.abort();
  liveTimer = setTimeout(() => {
    liveTimer = null;
    void merge('live');
  }, LIVE_MS);
}

/** Images per task of a live or a settled evaluation (null = the whole test sets). */
function samplesFor(kind: 'live' | 'settled', s: AppState): number | null {
  const e = s.evaluation;
  if (kind === 'live') return e.liveSamples;
  return e.settledSamples === 'all' ? null : e.settledSamples;
}

/** Merges on the GPU, fills the report and offers the merged file for download; on the suite, scores it too. */
export async function merge(kind: 'live' | 'settled' = 'settled'): Promise<void> {
  const s = appStore.getState();
  const base = s.base && opened.get(s.base.id);
  const ids = enabledIds(s);
  const models = ids.map((id) => opened.get(id)).filter((m): m is Model => !!m);
  const runtime = gpuRuntime();
  if (!runtime || !base || !models.length) return;
  clearTimers();
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const { signal } = controller;
  for (const o of s.outputs) URL.revokeObjectURL(o.url);
  const progress = (p: number, message: string | null) => set((st) => ({ run: { state: 'merging', progress: p, message, startedAt: st.run.startedAt ?? Date.now() } }));
  set({ run: { state: 'merging', progress: 0, message: null, startedAt: Date.now() }, outputs: [] });
  const blobOf = (sink: ReturnType<typeof blobSink>) => ({ url: URL.createObjectURL(sink.blob()!), name: sink.name, bytes: sink.blob()!.size });
  try {
    const config = resolveConfig({ method: s.method, params: s.params, options: { outputDtype: s.outputDtype, mixedDtypes: suiteMode(s) } });
    const name = `merged-${s.method}.safetensors`;
    // A lost device (driver reset, another tab, sleep) restarts the work once on a new one; the settings stay.
    const onRetry = (reason: string) => progress(0, `The GPU device was lost (${reason}); starting again on a new device. Your settings are kept.`);
    await withDeviceRetry(
      runtime,
      async (ctx, attempt) => {
        if (suiteMode(s) && config.method.id !== 'tall_masks') {
          const samples = samplesFor(kind, s);
          progress(0, samples === null ? 'scoring on the whole test sets' : `scoring on ${samples} images per task`);
          await ensureReferences(ctx, samples, s.evaluation.seed, signal);
          if (signal.aborted) return;
          const sink = attempt.sink(blobSink(name));
          const report = await mergeSuite(ctx, config, mergeKey(s), {
            models: ids,
            samples,
            seed: s.evaluation.seed,
            metrics: kind === 'settled' || s.view.tab === 'interference',
            signal,
            output: async () => sink,
            onProgress: (p) => progress(p.totalBytes ? Math.min(1, p.doneBytes / p.totalBytes) : 0, phaseText(p)),
          });
          if (signal.aborted) return;
          set({ report: 'tensors' in report ? report : null, continual: 'steps' in report ? report : null, run: { state: 'done', progress: 1, message: null }, outputs: [blobOf(sink)] });
          const settled = samplesFor('settled', s);
          if (kind === 'live' && settled !== samples) settleTimer = setTimeout(() => void merge('settled'), SETTLE_MS);
          return;
        }
        if (config.method.family === 'continual') {
          const sink = attempt.sink(blobSink(name));
          const continual = await runContinual(ctx, { base, models, config, output: async () => sink, signal, onProgress: (p) => progress(p.step / p.steps, `step ${p.step + 1} of ${p.steps}: ${p.tensor}`) });
          if (signal.aborted) return;
          set({ continual, report: null, run: { state: 'done', progress: 1, message: null }, outputs: [blobOf(sink)] });
          return;
        }
        // Not enough GPU memory: merge again in smaller chunks (only these sinks of the last run are offered).
        let sinks: ReturnType<typeof blobSink>[] = [];
        const report = await withChunkFallback(
          config,
          (cfg, run) => {
            sinks = [];
            return runMerge(ctx, {
              base,
              models,
              config: cfg,
              metrics: true,
              metricsCache: taskVectorMetrics,
              // A rerun for lack of GPU memory keeps nothing between passes, nor between merges (onFallback frees it).
              ...(run.cacheBytes !== undefined ? { cacheBytes: run.cacheBytes } : { resident: residentInputs }),
              output: async (index, label) => {
                const sink = attempt.sink(blobSink(label === null ? name : `${s.method}-${index}-${label.replace(/\.safetensors$/, '')}.safetensors`));
                sinks.push(sink);
                return sink;
              },
              signal,
              onProgress: (p) => progress(p.totalBytes ? Math.min(1, p.doneBytes / p.totalBytes) : 1, phaseText(p)),
            });
          },
          { tensors: tensorSizes(base), onFallback: (n) => {
              residentInputs.clear();
              progress(0, `Not enough GPU memory: merging again in chunks of ${n.toLocaleString('en')} elements…`);
            },
          },
        );
        if (signal.aborted) return;
        set({ report, continual: null, run: { state: 'done', progress: 1, message: null }, outputs: sinks.map(blobOf) });
      },
      { signal, onRetry },
    );
  } catch (e) {
    if (signal.aborted) return;
    set({ run: { state: 'error', progress: 0, message: (e as Error).message } });
  } finally {
    if (running === controller) running = null;
  }
}

/** Cancels a running merge; nothing is offered for download. */
export function cancelMerge(): void {
  clearTimers();
  running?.abort();
  running = null;
  set({ run: { state: 'idle', progress: 0, message: 'Merge cancelled.' } });
}
