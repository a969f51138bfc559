/**
 * The continual comparison: OPCM next to the continual baselines, each run over several seeded random orders of the
 * switched-on models; after every step the merged model is scored (on the GPU) on the tasks merged so far. Rows
 * arrive step by step, so the chart grows while the work runs. Started from the Continual tab; cancellable.
 */
import { runContinualProtocol } from '../engine/eval/continualEval';
import { resolveConfig } from '../engine/merge/config';
import { getMethod } from '../engine/methods/registry';
import { enabledIds, suiteMode } from './mergeActions';
import { gpuContext } from './runtime';
import { evaluatorFor, suiteWithModels } from './suiteActions';
import { appStore, type JobState, type AppState, type ContinualRunsState } from './store';

/** The methods compared, OPCM first. */
export const CONTINUAL_METHODS = ['opcm', 'continual_task_arithmetic', 'continual_ties', 'continual_average', 'continual_magmax'] as const;
/** Random orders per method. */
export const CONTINUAL_ORDERS = 3;

/** What the comparison's numbers depend on. OPCM and the baselines run at their defaults, except a continual method being edited. */
export function continualKey(s: AppState): string {
  const own = getMethod(s.method).family === 'continual' ? [s.method, s.params] : null;
  return JSON.stringify([enabledIds(s), own, s.evaluation.liveSamples, s.evaluation.seed, CONTINUAL_ORDERS]);
}

let running: AbortController | null = null;

export function cancelContinual(): void {
  running?.abort();
  running = null;
  if (appStore.getState().jobs.continual.state === 'running') setJob({ state: 'cancelled', message: 'Continual comparison cancelled.' });
}

/** Runs every continual method over CONTINUAL_ORDERS seeded orders (unless an up-to-date result exists). */
export async function runContinualComparison(force = false): Promise<void> {
  const s = appStore.getState();
  const ctx = await gpuContext();
  if (!ctx || !suiteMode(s)) return;
  const key = continualKey(s);
  if (!force && s.continualRuns?.key === key) return;
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const { signal } = controller;
  const set = appStore.setState;
  const suite = suiteWithModels(enabledIds(s));
  const samples = s.evaluation.liveSamples;
  const T = suite.tasks.length;
  const totalSteps = CONTINUAL_METHODS.length * CONTINUAL_ORDERS * T;
  let done = 0;
  const state: ContinualRunsState = { key, samples, tasks: suite.tasks.map((t) => t.task.id), methods: [] };
  set({ continualRuns: state, jobs: { ...appStore.getState().jobs, continual: { state: 'running', progress: 0, message: 'continual comparison', startedAt: Date.now() } } });
  try {
    const evaluator = evaluatorFor(ctx);
    for (const id of CONTINUAL_METHODS) {
      const spec = getMethod(id);
      const params = s.method === id ? { ...s.params, order: 'given' } : {};
      const config = resolveConfig({ method: id, params, options: { mixedDtypes: true } });
      const orders = Array.from({ length: CONTINUAL_ORDERS }, () => ({ order: [] as number[], acc: [] as (number | null)[][], finalAverage: null as number | null, bwt: null as number | null }));
      const entry = { id, label: spec.label, orders };
      state.methods = [...state.methods, entry];
      const result = await runContinualProtocol(ctx, suite, evaluator, {
        config,
        orders: CONTINUAL_ORDERS,
        seed: s.evaluation.seed,
        samples,
        sampleSeed: s.evaluation.seed,
        signal,
        onStep: (k, _step, row, detail) => {
          const o = orders[k]!;
          o.order = [...o.order, detail.task];
          o.acc = [...o.acc, row];
          done++;
          set((st) => ({
            continualRuns: st.continualRuns?.key === key ? { ...state, methods: [...state.methods] } : st.continualRuns,
            jobs: { ...st.jobs, continual: { ...st.jobs.continual, progress: done / totalSteps, message: `${spec.label}, order ${k + 1} of ${CONTINUAL_ORDERS}` } },
          }));
        },
      });
      if (signal.aborted) return;
      result.runs.forEach((r, k) => {
        orders[k] = { order: r.order, acc: r.acc, finalAverage: r.finalAverage, bwt: r.bwt };
      });
      set({ continualRuns: { ...state, methods: [...state.methods] } });
    }
    setJob({ state: 'done', progress: 1, message: null });
  } catch (e) {
    if (signal.aborted) return;
    setJob({ state: 'error', message: `Continual comparison failed: ${(e as Error).message}` });
  } finally {
    if (running === controller) running = null;
  }
}

/** Updates the continual job's state. */
function setJob(patch: Partial<JobState>): void {
  appStore.setState((s) => ({ jobs: { ...s.jobs, continual: { ...s.jobs.continual, ...patch } } }));
}
