/**
 * User actions on models, method and settings. They edit the store (the experiment) and start the work that follows
 * from it; merging itself is in mergeActions.ts, the evaluation suite in suiteActions.ts.
 */
import { getMethod } from '../engine/methods/registry';
import type { Model } from '../engine/io/model';
import { openModelFromFiles } from '../platform/browserFiles';
import { merge, scheduleLiveMerge } from './mergeActions';
import { gpuContext, newModelId, opened } from './runtime';
import { dropSuite, loadPresetSuite, loadSuiteFrom, residentInputs, suiteBaseId, taskModelId } from './suiteActions';
import type { GpuContext } from '../engine/gpu/device';
import type { Suite } from '../engine/eval/suite';
import type { HubModel } from '../platform/hub';
import { appStore, type AppState, type ChartTab, type EvalSettings, type ModelEntry } from './store';

export { initGpu } from './runtime';
export { cancelMerge, merge } from './mergeActions';

const set = appStore.setState;

/** The embedded demo suite, served with the page. */
export const DEMO_URL = `${import.meta.env.BASE_URL}demo/`;

const sizeOf = (m: Model) => [...m.tensors.values()].reduce((a, t) => a + t.info.end - t.info.begin, 0);

/**
 * Opens the demo suite: its base and fine-tuned models become the page's models, scored and merged at once.
 * `layout` (from a share link) gives the models' order and which are switched on.
 */
export async function loadDemo(url = DEMO_URL, layout?: ModelLayout): Promise<void> {
  await useSuite((ctx, samples, seed) => loadSuiteFrom(ctx, url, samples, seed), layout);
}

/**
 * Opens a FusionBench preset from the Hub (see docs/hub-suites.md) as the page's suite; a link's layout carries the
 * commits it pinned, which are read instead of the preset's revisions.
 */
export async function loadPreset(presetId: string, layout?: ModelLayout): Promise<void> {
  const revisions = layout?.pins;
  await useSuite((ctx, samples, seed) => loadPresetSuite(ctx, presetId, samples, seed, revisions ? { revisions } : {}), layout);
}

/** Where a suite model came from, as links write it: the demo's id, or the Hub repo at the commit read. */
function sourceOf(model: Model, fallback: string): string {
  const hub = (model as Partial<HubModel>).hub;
  return hub ? `${hub.repo}@${hub.commit}` : fallback;
}

async function useSuite(load: (ctx: GpuContext, samples: number, seed: number) => Promise<Suite | null>, layout?: ModelLayout): Promise<void> {
  const ctx = await gpuContext();
  if (!ctx) return;
  try {
    const { evaluation } = appStore.getState();
    const before = appStore.getState().base;
    const suite = await load(ctx, evaluation.liveSamples, evaluation.seed);
    // Another suite picked while this one loaded: that one takes the page.
    if (!suite) return;
    // A user who picked models while the suite loaded keeps them: their choice wins.
    if (appStore.getState().base !== before) {
      dropSuite();
      set({ suite: null });
      return;
    }
    opened.clear();
    residentInputs.clear();
    const baseId = suiteBaseId();
    opened.set(baseId, suite.base);
    let models: ModelEntry[] = suite.tasks.map((t) => {
      const id = taskModelId(t.task.id);
      opened.set(id, t.model);
      return { id, name: t.task.title, bytes: sizeOf(t.model), tensors: t.model.tensors.size, enabled: true, source: sourceOf(t.model, id) };
    });
    if (layout) models = arrange(models, layout);
    set({
      baseTensors: [...suite.base.tensors.keys()],
      base: { id: baseId, name: `${suite.manifest.name}: base`, bytes: sizeOf(suite.base), tensors: suite.base.tensors.size, enabled: true, source: sourceOf(suite.base, baseId) },
      models,
      inputError: null,
      report: null,
      continual: null,
      sweep: null,
      continualRuns: null,
    });
    await merge('live');
  } catch (e) {
    set((s) => ({ suite: s.suite ? { ...s.suite, state: 'error', message: (e as Error).message } : null }));
  }
}

/** The order of the fine-tuned models and which are switched off, by source (from a share link). */
export interface ModelLayout {
  ids: string[];
  disabled: string[];
  /** The revision each Hub repo of the link was read at (repo id -> commit or branch), base included. */
  pins?: Record<string, string>;
}

/** Applies a layout to the current models (a link opened while the page was already showing them). */
export function applyLayout(layout: ModelLayout): void {
  set((s) => ({ models: arrange(s.models, layout) }));
}

/** A Hub source without its revision (`org/name@rev` -> `org/name`); demo and local sources as they are. */
const repoPart = (source: string): string => (/^(demo|local):/.test(source) ? source : source.replace(/@[^@]*$/, ''));

/**
 * Orders models as `ids` says (unknown ids ignored, unlisted models keep their place at the end) and switches some off.
 * A Hub model matches its id exactly, or by repo when the link named a branch and the model was read at its commit.
 */
export function arrange(models: ModelEntry[], layout: ModelLayout): ModelEntry[] {
  const exact = new Set(layout.ids);
  const byRepo = new Map(layout.ids.map((id) => [repoPart(id), id]));
  const linkId = (m: ModelEntry) => (exact.has(m.source) ? m.source : byRepo.get(repoPart(m.source)));
  const rank = new Map(layout.ids.map((id, i) => [id, i]));
  const place = (m: ModelEntry) => rank.get(linkId(m) ?? '') ?? Infinity;
  const sorted = [...models].sort((a, b) => place(a) - place(b));
  const off = new Set(layout.disabled);
  const out = sorted.map((m) => ({ ...m, enabled: !off.has(linkId(m) ?? '') }));
  // A link cannot switch every model off.
  return out.some((m) => m.enabled) ? out : out.map((m) => ({ ...m, enabled: true }));
}

async function openEntry(files: File[]): Promise<ModelEntry> {
  const model = await openModelFromFiles(files);
  return registerModel(model, files.reduce((s, f) => s + f.size, 0));
}

/** Adds an opened model (local files, the Hub) under a fresh id; returns its store entry. */
export function registerModel(model: Model, bytes: number, name = model.name, source = `local:${name}`): ModelEntry {
  const id = newModelId();
  opened.set(id, model);
  return { id, name, bytes, tensors: model.tensors.size, enabled: true, source };
}

/** Makes `entry` the base; own models replace the demo (its models no longer belong together). */
export function useAsBase(entry: ModelEntry): void {
  const old = appStore.getState().base;
  const model = opened.get(entry.id);
  if (old) opened.delete(old.id);
  // The kept raw inputs belong to the old base's merges.
  residentInputs.clear();
  if (old && old.id === suiteBaseId()) {
    for (const m of appStore.getState().models) opened.delete(m.id);
    dropSuite();
    set({ models: [], suite: null, report: null, continual: null, sweep: null, continualRuns: null });
  }
  set({ base: entry, baseTensors: model ? [...model.tensors.keys()] : [], inputError: null });
}

/** Adds fine-tuned models next to the current ones; the suite no longer scores the set. */
export function addModels(entries: ModelEntry[]): void {
  set((s) => ({ models: [...s.models, ...entries], inputError: null, suite: entries.length ? null : s.suite }));
}

/** Sets the base (pretrained) model from picked files. */
export async function setBaseFiles(files: File[]): Promise<void> {
  if (!files.length) return;
  try {
    useAsBase(await openEntry(files));
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
    addModels(added);
  } catch (e) {
    addModels(added);
    set({ inputError: (e as Error).message });
  }
}

/** Removes one fine-tuned model. */
export function removeModel(id: string): void {
  opened.delete(id);
  residentInputs.clear();
  set((s) => ({ models: s.models.filter((m) => m.id !== id), suite: s.base?.id === suiteBaseId() ? null : s.suite }));
}

/** Switches a fine-tuned model in or out of the merge (at least one stays in). */
export function toggleModel(id: string): void {
  const s = appStore.getState();
  const target = s.models.find((m) => m.id === id);
  if (!target) return;
  if (target.enabled && s.models.filter((m) => m.enabled).length <= 1) {
    set({ inputError: 'At least one fine-tuned model must take part in the merge.' });
    return;
  }
  set({ models: s.models.map((m) => (m.id === id ? { ...m, enabled: !m.enabled } : m)), inputError: null });
  afterExperimentChange();
}

/** Moves a fine-tuned model to position `to` (the order continual methods merge in). */
export function moveModel(id: string, to: number): void {
  const models = [...appStore.getState().models];
  const from = models.findIndex((m) => m.id === id);
  if (from < 0) return;
  const clamped = Math.max(0, Math.min(models.length - 1, to));
  if (clamped === from) return;
  const [m] = models.splice(from, 1);
  models.splice(clamped, 0, m!);
  set({ models });
  afterExperimentChange();
}

/** Chooses the merging method (parameters go back to that method's defaults). */
export function setMethod(id: string): void {
  getMethod(id);
  set({ method: id, params: {} });
  afterExperimentChange();
}

/** Sets one method parameter (undefined = back to the default). */
export function setParam(name: string, value: unknown): void {
  set((s) => {
    const params = { ...s.params };
    if (value === undefined) delete params[name];
    else params[name] = value;
    return { params };
  });
  afterExperimentChange();
}

export function setOutputDtype(dtype: AppState['outputDtype']): void {
  set({ outputDtype: dtype });
}

/** Changes the evaluation's sample sizes or seed. */
export function setEvaluation(patch: Partial<EvalSettings>): void {
  set((s) => ({ evaluation: { ...s.evaluation, ...patch } }));
  afterExperimentChange();
}

/** Switches the results tab; the interference tab needs a merge with metrics. */
export function setTab(tab: ChartTab): void {
  const s = appStore.getState();
  set({ view: { ...s.view, tab } });
  if (tab === 'interference' && s.report && !s.report.interference) scheduleLiveMerge();
}

export function setNormalized(normalized: boolean): void {
  set((s) => ({ view: { ...s.view, normalized } }));
}

/** Chooses the parameter the Sweep tab varies ("main": the method's main coefficient). */
export function setSweepParam(sweep: string): void {
  set((s) => ({ view: { ...s.view, sweep } }));
}

/** Everything that follows a change of the experiment: a live re-merge (on the suite). */
function afterExperimentChange(): void {
  scheduleLiveMerge();
}
