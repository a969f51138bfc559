/**
 * The sweep: average accuracy as a function of one parameter (the method's main coefficient, or the real-valued
 * parameter the view chooses), merged and scored on the GPU at evenly spaced values of its range (live sample size).
 * Runs while the Sweep tab is open; a change of the experiment cancels it and starts it again once the controls rest.
 */
import { resolveConfig } from '../engine/merge/config';
import { mergeAndScore } from '../engine/eval/scoreMerge';
import type { CoefficientParam, NumberParam } from '../engine/methods/params';
import { getMethod } from '../engine/methods/registry';
import { enabledIds, suiteMode } from './mergeActions';
import { gpuContext } from './runtime';
import { accuracyOf, ensureReferences, evaluatorFor, residentInputs, suiteWithModels, taskVectorMetrics } from './suiteActions';
import { appStore, type JobState, type AppState } from './store';

/** Parameters that are a method's main coefficient, in order of preference. */
const MAIN = ['lambda', 'beta', 't', 'alpha', 'mask_lambda'];
/** Points of a sweep. */
export const SWEEP_POINTS = 9;

type Sweepable = NumberParam | CoefficientParam;

/** The coefficient a sweep varies for this method by default, or null (parameter-free methods). */
function mainCoefficient(methodId: string): Sweepable | null {
  const params = getMethod(methodId).params;
  for (const name of MAIN) {
    const p = params.find((q) => q.name === name);
    if (p && (p.kind === 'number' || p.kind === 'coefficient')) return p;
  }
  return null;
}

/** The parameters of a method a sweep can vary: its real-valued ones (integers such as seeds and counts are not). */
export function sweepableParams(methodId: string): Sweepable[] {
  return getMethod(methodId).params.filter((p): p is Sweepable => p.kind === 'number' || p.kind === 'coefficient');
}

/** The parameter a sweep varies: `chosen` (the view's choice) when the method has it, else its main coefficient. */
export function sweptParam(methodId: string, chosen: string): Sweepable | null {
  return sweepableParams(methodId).find((p) => p.name === chosen) ?? mainCoefficient(methodId);
}

/**
 * Evenly spaced values over the parameter's slider range (rounded to 4 decimals, so links stay short); an open end
 * is replaced by the point half a step inside it (TIES's k in (0, 1], DARE's p in [0, 1)).
 */
export function sweepValues(p: Sweepable, n = SWEEP_POINTS): number[] {
  const half = (p.max - p.min) / (2 * (n - 1));
  const lo = p.kind === 'number' && p.minExclusive ? p.min + half : p.min;
  const hi = p.kind === 'number' && p.maxExclusive ? p.max - half : p.max;
  return Array.from({ length: n }, (_, i) => Math.round((lo + ((hi - lo) * i) / (n - 1)) * 1e4) / 1e4);
}

/** What a sweep's numbers depend on: which parameter it varies, and everything but that parameter's value. */
export function sweepKey(s: AppState, param: string): string {
  const rest = { ...s.params };
  delete rest[param];
  return JSON.stringify([param, s.method, rest, enabledIds(s), s.evaluation.liveSamples, s.evaluation.seed]);
}

let running: AbortController | null = null;

/** Cancels a running sweep (its partial points stay, marked stale by their key). */
export function cancelSweep(): void {
  running?.abort();
  running = null;
  if (appStore.getState().jobs.sweep.state === 'running') setJob({ state: 'cancelled', message: 'Sweep cancelled.' });
}

/** Computes the sweep of the current experiment, unless an up-to-date one exists. */
export async function runSweep(force = false): Promise<void> {
  const s = appStore.getState();
  const p = sweptParam(s.method, s.view.sweep);
  const ctx = await gpuContext();
  if (!p || !ctx || !suiteMode(s) || s.method === 'tall_masks') return;
  const key = sweepKey(s, p.name);
  if (!force && s.sweep?.key === key && s.sweep.points.length === s.sweep.values.length) return;
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const { signal } = controller;
  const values = sweepValues(p);
  const samples = s.evaluation.liveSamples;
  const seed = s.evaluation.seed;
  const set = appStore.setState;
  set({ sweep: { param: p.name, key, points: [], values, samples }, jobs: { ...appStore.getState().jobs, sweep: { state: 'running', progress: 0, message: `sweeping ${p.name}`, startedAt: Date.now() } } });
  try {
    await ensureReferences(ctx, samples, seed, signal);
    const suite = suiteWithModels(enabledIds(s));
    const evaluator = evaluatorFor(ctx);
    for (const [i, value] of values.entries()) {
      if (signal.aborted) return;
      const config = resolveConfig({ method: s.method, params: { ...s.params, [p.name]: value }, options: { mixedDtypes: true } });
      // The live merges' caches: no point uploads the models again, and where the swept parameter leaves the method's
      // statistics as they are (lambda and TIES's thresholds, t and SLERP's angles) every point skips their pass.
      const { scores } = await mergeAndScore(ctx, suite, evaluator, config, { samples, seed, signal, metrics: false, metricsCache: taskVectorMetrics, resident: residentInputs });
      if (signal.aborted) return;
      const perTask = accuracyOf(scores);
      const average = scores.reduce((a, x) => a + x.accuracy, 0) / (scores.length || 1);
      set((st) => ({
        sweep: st.sweep && st.sweep.key === key ? { ...st.sweep, points: [...st.sweep.points, { value, average, perTask }] } : st.sweep,
        jobs: { ...st.jobs, sweep: { ...st.jobs.sweep, progress: (i + 1) / values.length, message: `${p.name} = ${value}` } },
      }));
    }
    setJob({ state: 'done', progress: 1, message: null });
  } catch (e) {
    if (signal.aborted) return;
    setJob({ state: 'error', message: `Sweep failed: ${(e as Error).message}` });
  } finally {
    if (running === controller) running = null;
  }
}

/** Updates the sweep job's state. */
function setJob(patch: Partial<JobState>): void {
  appStore.setState((s) => ({ jobs: { ...s.jobs, sweep: { ...s.jobs.sweep, ...patch } } }));
}
