/**
 * The evaluation side of the page: load a suite (the embedded demo by default), score the base and the fine-tuned
 * models once per sample size, and score every merge. Work is cancelled when a newer merge starts, so dragging a
 * slider never queues stale evaluations.
 */
import type { GpuContext } from '../engine/gpu/device';
import { loadSuite, type Suite } from '../engine/eval/suite';
import { SuiteEvaluator, type TaskScore } from '../engine/eval/suiteEvaluator';
import { mergeAndScore, scoreIndividuals, scoreModel } from '../engine/eval/scoreMerge';
import type { ResolvedConfig } from '../engine/merge/config';
import type { ByteSink } from '../engine/io/byteSource';
import type { MergeProgress } from '../engine/merge/runMerge';
import { MetricsCache } from '../engine/merge/metrics';
import { ResidentInputs } from '../engine/merge/residentInputs';
import { suiteFilesFromUrl } from '../platform/browserFiles';
import { decodeImageBrowser } from '../platform/imageDecode';
import { hubPreset } from '../engine/eval/fusionbench/presets';
import { hubCache, pageHubAccess } from './hubActions';
import { appStore, type SuiteState, type TaskAccuracy } from './store';

// The Hub suites' loader (and with it the parquet reader and the CLIP tokenizer) loads when a preset is picked.
const hubSuites = () => Promise.all([import('../engine/eval/hubSuite'), import('../engine/eval/zeroShotHeads')]);

let suite: Suite | null = null;
/** Which suite is loaded: the embedded demo, or a FusionBench preset from the Hub (by preset id). */
let choice = 'demo';

/** Store ids of the suite's base and task models: `demo:...` for the demo, `hub:...` for a Hub preset. */
export const suiteBaseId = (): string => (choice === 'demo' ? 'demo:base' : 'hub:base');
export const taskModelId = (taskId: string): string => `${choice === 'demo' ? 'demo' : 'hub'}:${taskId}`;
/** The loaded suite's name for the picker ('demo' or a preset id). */
export const suiteChoice = (): string => choice;
let evaluator: SuiteEvaluator | null = null;
let evaluatorCtx: GpuContext | null = null;
/** Base and individual scores by sample size ('all' = whole test sets); they do not change with the merge. */
const references = new Map<string, { base: TaskAccuracy; individual: TaskAccuracy }>();
/** The task-vector metrics of the merges so far (they depend only on the models): a slider step reuses them. */
export const taskVectorMetrics = new MetricsCache();
/**
 * GPU memory for the raw model bytes kept from one merge to the next of the same models, so that a slider step does
 * not upload them again. Beyond it, the first chunks are kept and the rest uploaded each time.
 */
export const RESIDENT_BYTES = 2 ** 30;
/** The raw inputs of the last merged models, kept on the GPU (merge/residentInputs.ts). */
export const residentInputs = new ResidentInputs(RESIDENT_BYTES);

export const accuracyOf = (scores: TaskScore[]): TaskAccuracy => Object.fromEntries(scores.map((s) => [s.task, s.accuracy]));

function setSuite(patch: Partial<SuiteState>): void {
  appStore.setState((s) => ({ suite: s.suite ? { ...s.suite, ...patch } : null }));
}

/** The loaded suite, if any (its models are the page's base and fine-tuned models). */
export function currentSuite(): Suite | null {
  return suite;
}

/** Forgets the suite (the user's own models replaced it). */
export function dropSuite(): void {
  evaluator?.destroy();
  evaluator = null;
  evaluatorCtx = null;
  suite = null;
  references.clear();
}

/** The evaluator for `ctx` (made again after a device loss gave the page a new context). */
export function evaluatorFor(ctx: GpuContext): SuiteEvaluator {
  if (!suite) throw new Error('no suite loaded');
  if (!evaluator || evaluatorCtx !== ctx) {
    evaluator?.destroy();
    evaluator = new SuiteEvaluator(ctx, suite);
    evaluatorCtx = ctx;
  }
  return evaluator;
}

/** Loads a suite from a URL and scores its base and fine-tuned models. */
export async function loadSuiteFrom(ctx: GpuContext, url: string, samples: number | null, seed: number): Promise<Suite | null> {
  return openSuite(ctx, 'demo', 'the demo suite', () => loadSuite(suiteFilesFromUrl(url)), samples, seed);
}

/**
 * Loads a FusionBench preset from the Hub (the Hub panel's endpoint and token): models opened lazily, zero-shot heads
 * built from the base CLIP text tower once and cached, test images read from the parquet splits as they are sampled.
 * `revisions` (repo id -> commit, from a share link) replaces the preset's revisions for those repos.
 */
export async function loadPresetSuite(ctx: GpuContext, presetId: string, samples: number | null, seed: number, opts: { signal?: AbortSignal; revisions?: Record<string, string> } = {}): Promise<Suite | null> {
  const { signal, revisions } = opts;
  const preset = hubPreset(presetId);
  return openSuite(
    ctx,
    presetId,
    preset.title,
    async () => {
      const [{ loadHubSuite }, { headCacheOver }] = await hubSuites();
      return loadHubSuite({
        ctx,
        hub: await pageHubAccess(signal),
        decodeImage: decodeImageBrowser,
        preset,
        ...(revisions ? { revisions } : {}),
        headCache: headCacheOver(await hubCache()),
        ...(signal ? { signal } : {}),
        onStatus: (message) => setSuite({ message }),
      });
    },
    samples,
    seed,
  );
}

/** Counts suite loads: one that ends after a newer one began (a preset picked while the demo loads) is dropped. */
let loads = 0;

/** Loads and scores a suite; null when a newer load replaced it meanwhile (that one owns the page's suite now). */
async function openSuite(ctx: GpuContext, id: string, title: string, load: () => Promise<Suite>, samples: number | null, seed: number): Promise<Suite | null> {
  const mine = ++loads;
  appStore.setState({
    suite: { id, name: title, tasks: [], samples: samples ?? 0, base: null, individual: null, merged: null, mergedFor: null, state: 'loading', message: `Loading ${title}…` },
  });
  dropSuite();
  try {
    const loaded = await load();
    if (mine !== loads) return null;
    suite = loaded;
    choice = id;
    setSuite({
      name: loaded.manifest.name,
      tasks: loaded.tasks.map((t) => ({ id: t.task.id, title: t.task.title, description: t.task.description, classes: t.task.classes })),
    });
    await ensureReferences(ctx, samples, seed);
    if (mine !== loads) return null;
    setSuite({ state: 'ready', message: null });
    return loaded;
  } catch (e) {
    // A replaced load's failure (its evaluator was destroyed under it, say) is not the page's suite failing.
    if (mine !== loads) return null;
    throw e;
  }
}

/** Scores the base and the fine-tuned models at this sample size (once) and shows them. */
export async function ensureReferences(ctx: GpuContext, samples: number | null, seed: number, signal?: AbortSignal): Promise<void> {
  const scored = suite;
  if (!scored) return;
  // Scores of a suite that was replaced while they ran belong to no suite: neither shown nor kept.
  const replaced = () => signal?.aborted || suite !== scored;
  const key = `${samples ?? 'all'}|${seed}`;
  let ref = references.get(key);
  if (!ref) {
    setSuite({ message: `Scoring the base and the fine-tuned models on ${samples ?? 'all'} images per task…` });
    const ev = evaluatorFor(ctx);
    const opts = { samples, seed, ...(signal ? { signal } : {}) };
    const base = accuracyOf(await scoreModel(ctx, scored, ev, null, opts));
    if (replaced()) return;
    setSuite({ base });
    const individual = accuracyOf(await scoreIndividuals(ctx, scored, ev, opts));
    if (replaced()) return;
    ref = { base, individual };
    references.set(key, ref);
  }
  setSuite({ base: ref.base, individual: ref.individual, message: null });
}

/** The suite with its tasks' models in the page's order, only those switched on (every task is still scored). */
export function suiteWithModels(ids: string[]): Suite {
  if (!suite) throw new Error('no suite loaded');
  const byId = new Map(suite.tasks.map((t) => [taskModelId(t.task.id), t]));
  return { ...suite, tasks: ids.map((id) => byId.get(id)).filter((t): t is Suite['tasks'][number] => !!t) };
}

export interface SuiteMergeOptions {
  models: string[];
  samples: number | null;
  seed: number;
  metrics: boolean;
  signal: AbortSignal;
  output?: () => Promise<ByteSink>;
  onProgress?: (p: MergeProgress) => void;
}

/** Merges the chosen suite models with `config` and scores the result on every task. */
export async function mergeSuite(ctx: GpuContext, config: ResolvedConfig, key: string, o: SuiteMergeOptions) {
  const ev = evaluatorFor(ctx);
  const { scores, report } = await mergeAndScore(ctx, suiteWithModels(o.models), ev, config, {
    samples: o.samples,
    seed: o.seed,
    signal: o.signal,
    metrics: o.metrics,
    metricsCache: taskVectorMetrics,
    resident: residentInputs,
    ...(o.output ? { output: o.output } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  // A sample larger than a test set is that whole set: say how many images were scored.
  if (!o.signal.aborted) setSuite({ merged: accuracyOf(scores), mergedFor: key, samples: Math.min(o.samples ?? Infinity, fullSize()) });
  return report;
}

/** Images per task of the whole test sets (the smallest task's count). */
export function fullSize(): number {
  return suite ? Math.min(...suite.tasks.map((t) => t.count)) : 0;
}
