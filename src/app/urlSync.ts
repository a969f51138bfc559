/**
 * The URL hash always holds the experiment (shareLink.ts): read once when the page opens (and again when the user
 * edits the address), written back with history.replaceState whenever the experiment changes. A bad link leaves the
 * defaults in place and says what was wrong, as text.
 */
import { CHART_TABS, appStore, type AppState, type ChartTab } from './store';
import { decodeShareLink, encodeShareLink } from './shareLink';
import { validateExperiment, type Experiment } from './experiment';
import { applyLayout, type ModelLayout } from './actions';
import { keepSettledSamples } from './runtime';
import { scheduleLiveMerge } from './mergeActions';
import { currentSuite, suiteChoice, taskModelId } from './suiteActions';
import { HUB_PRESETS, type HubPreset } from '../engine/eval/fusionbench/presets';

/** The experiment the store describes now. */
export function experimentOf(s: AppState): Experiment {
  // The demo's models in their own order, all switched on, is what a link without `models` means: keep links short.
  const demoOrder = currentSuite()?.tasks.map((t) => taskModelId(t.task.id)) ?? [];
  const usual = s.base?.id === 'demo:base' && s.models.length === demoOrder.length && s.models.every((m, i) => m.enabled && m.id === demoOrder[i]);
  return validateExperiment({
    base: s.base?.source ?? 'demo:base',
    models: usual ? [] : s.models.map((m) => ({ source: m.source, enabled: m.enabled })),
    method: s.method,
    params: s.params,
    outputDtype: s.outputDtype,
    evaluation: s.evaluation,
    view: { tab: s.view.tab, normalized: s.view.normalized, sweep: s.view.sweep },
    // A FusionBench preset's test sets, at the commits they were read at.
    data: suiteChoice() !== 'demo' ? (currentSuite()?.datasets ?? []) : [],
  });
}

/** Puts a decoded experiment's settings into the store; returns the model layout to apply once the models exist. */
export function applyExperiment(e: Experiment, warnings: string[]): ModelLayout | undefined {
  const tab = CHART_TABS.includes(e.view.tab as ChartTab) ? (e.view.tab as ChartTab) : 'accuracy';
  const notes = [...warnings];
  if (e.base.kind !== 'demo' && !presetOf(e)) notes.push(`The link's base model (${e.base.kind === 'hub' ? `${e.base.repo}@${e.base.revision}` : e.base.name}) is not loaded automatically: open it from the Models panel.`);
  const local = e.models.filter((m) => m.source.kind === 'local').map((m) => (m.source.kind === 'local' ? m.source.name : ''));
  if (local.length) notes.push(`Local files cannot travel in a link: open ${local.join(', ')} again.`);
  appStore.setState({
    method: e.method,
    params: { ...e.params },
    outputDtype: e.outputDtype,
    evaluation: { ...e.evaluation },
    view: { tab, normalized: e.view.normalized === true, sweep: typeof e.view.sweep === 'string' ? e.view.sweep : 'main' },
    linkError: notes.length ? notes.join(' ') : null,
  });
  const pins = pinsOf(e);
  if (!e.models.length && !pins) return undefined;
  const text = (m: Experiment['models'][number]) => (m.source.kind === 'demo' ? `demo:${m.source.id}` : m.source.kind === 'local' ? `local:${m.source.name}` : `${m.source.repo}@${m.source.revision}`);
  return { ids: e.models.map(text), disabled: e.models.filter((m) => !m.enabled).map(text), ...(pins ? { pins } : {}) };
}

/** The revision a link gives each Hub repo (base, models and test sets), by repo id; null when it names none. */
export function pinsOf(e: Experiment): Record<string, string> | null {
  const pins: Record<string, string> = {};
  for (const source of [e.base, ...e.models.map((m) => m.source)]) if (source.kind === 'hub') pins[source.repo] = source.revision;
  for (const d of e.data) pins[d.slice(0, d.lastIndexOf('@'))] = d.slice(d.lastIndexOf('@') + 1);
  return Object.keys(pins).length ? pins : null;
}

/**
 * The FusionBench preset an experiment belongs to: its base is the preset's CLIP repo and its models are the preset's
 * fine-tuned repos. Presets that share a base (8, 14, 20 tasks) are told apart by the models: the one whose repos are
 * exactly the link's, else the smallest that holds them all (a link without models: the smallest with that base).
 */
export function presetOf(e: Experiment, presets: readonly HubPreset[] = HUB_PRESETS): string | null {
  const base = e.base;
  if (base.kind !== 'hub' || e.models.some((m) => m.source.kind !== 'hub')) return null;
  const repos = new Set(e.models.map((m) => (m.source.kind === 'hub' ? m.source.repo : '')));
  const candidates = presets.filter((p) => p.base.repo === base.repo).map((p) => ({ id: p.id, repos: new Set(p.tasks.map((t) => `${p.modelPrefix}${t.id}`)) }));
  const holding = candidates.filter((p) => [...repos].every((r) => p.repos.has(r))).sort((a, b) => a.repos.size - b.repos.size);
  return (holding.find((p) => p.repos.size === repos.size) ?? holding[0])?.id ?? null;
}

/** What opening a link asks for: which suite to load, the order and switches of its models, and the commits it pins. */
export interface LinkStart {
  layout?: ModelLayout;
  presetId: string | null;
}

/** Reads the page's link: applies it, or records why it could not (the defaults stay). */
export function readLink(hash: string): LinkStart {
  if (!hash || hash === '#') return { presetId: null };
  try {
    const { experiment, warnings } = decodeShareLink(hash);
    if (/(^|[#&])settled=/.test(hash)) keepSettledSamples();
    const layout = applyExperiment(experiment, warnings);
    return { ...(layout ? { layout } : {}), presetId: presetOf(experiment) };
  } catch (e) {
    appStore.setState({ linkError: `This link could not be read, so the page shows the defaults: ${(e as Error).message}` });
    return { presetId: null };
  }
}

let lastWritten = '';

/** Keeps location.hash equal to the experiment from now on; follows edits of the address by the user. */
export function startUrlSync(): void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const write = () => {
    timer = null;
    const s = appStore.getState();
    if (!s.base) return;
    try {
      const hash = encodeShareLink(experimentOf(s));
      if (hash !== location.hash) history.replaceState(null, '', hash);
      lastWritten = hash;
    } catch (e) {
      appStore.setState({ linkError: `The link cannot hold this experiment: ${(e as Error).message}` });
    }
  };
  appStore.subscribe((s, prev) => {
    if (s.method === prev.method && s.params === prev.params && s.models === prev.models && s.base === prev.base && s.outputDtype === prev.outputDtype && s.evaluation === prev.evaluation && s.view === prev.view) return;
    if (!timer) timer = setTimeout(write, 100);
  });
  write();
  window.addEventListener('hashchange', () => {
    if (location.hash === lastWritten) return;
    const { layout } = readLink(location.hash);
    if (layout) applyLayout(layout);
    scheduleLiveMerge();
  });
}

/** The current experiment's link (for the copy button). */
export function currentLink(): string {
  return `${location.origin}${location.pathname}${encodeShareLink(experimentOf(appStore.getState()))}`;
}
