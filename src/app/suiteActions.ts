/**
 * The evaluation side of the page: load a suite (the embedded demo by default), score the base and the fine-tuned
 * models once, and score every merge live. Work is cancelled when a newer merge starts, so dragging a slider never
 * queues stale evaluations.
 */
import type { GpuContext } from '../engine/gpu/device';
import { loadSuite, type Suite } from '../engine/eval/suite';
import { SuiteEvaluator, type TaskScore } from '../engine/eval/suiteEvaluator';
import { mergeAndScore, scoreIndividuals, scoreModel } from '../engine/eval/scoreMerge';
import type { ResolvedConfig } from '../engine/merge/config';
import type { ByteSink } from '../engine/io/byteSource';
import { suiteFilesFromUrl } from '../platform/browserFiles';
import { appStore, type SuiteState, type TaskAccuracy } from './store';

/** Images per task scored on every live update. */
export const LIVE_SAMPLES = 32;

let suite: Suite | null = null;
let evaluator: SuiteEvaluator | null = null;

const accuracyOf = (scores: TaskScore[]): TaskAccuracy => Object.fromEntries(scores.map((s) => [s.task, s.accuracy]));

function setSuite(patch: Partial<SuiteState>): void {
  appStore.setState((s) => ({ suite: s.suite ? { ...s.suite, ...patch } : null }));
}

/** The loaded suite, if any (its models are the page's base and fine-tuned models). */
export function currentSuite(): Suite | null {
  return suite;
}

/** Loads a suite from a URL and scores its base and fine-tuned models. */
export async function loadSuiteFrom(ctx: GpuContext, url: string): Promise<Suite> {
  appStore.setState({ suite: { name: 'demo suite', tasks: [], samples: LIVE_SAMPLES, base: null, individual: null, merged: null, mergedFor: null, state: 'loading', message: 'Loading the demo suite…' } });
  evaluator?.destroy();
  suite = await loadSuite(suiteFilesFromUrl(url));
  evaluator = new SuiteEvaluator(ctx, suite);
  setSuite({
    name: suite.manifest.name,
    tasks: suite.tasks.map((t) => ({ id: t.task.id, title: t.task.title, description: t.task.description, classes: t.task.classes })),
    message: 'Scoring the base and the fine-tuned models…',
  });
  const opts = { samples: LIVE_SAMPLES };
  setSuite({ base: accuracyOf(await scoreModel(ctx, suite, evaluator, null, opts)) });
  setSuite({ individual: accuracyOf(await scoreIndividuals(ctx, suite, evaluator, opts)), state: 'ready', message: null });
  return suite;
}

/** Merges the suite's models with `config`, scores the result live, and returns the merge's report. */
export async function mergeSuite(ctx: GpuContext, config: ResolvedConfig, key: string, signal: AbortSignal, output: () => Promise<ByteSink>) {
  if (!suite || !evaluator) throw new Error('no suite loaded');
  const { scores, report } = await mergeAndScore(ctx, suite, evaluator, config, { samples: LIVE_SAMPLES, signal, output, metrics: true });
  if (!signal.aborted) setSuite({ merged: accuracyOf(scores), mergedFor: key });
  return report;
}
