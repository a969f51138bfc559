/**
 * Sharing an experiment: the link, experiment files (JSON), the CLI's config and mergekit YAML; and importing files.
 * Imports go through the same validation as links; a bad file changes nothing and says what was wrong.
 */
import { exportExperimentJson, exportMergeConfigJson, importConfigJson } from './configFile';
import { applyLayout } from './actions';
import { scheduleLiveMerge } from './mergeActions';
import { currentSuite } from './suiteActions';
import { appStore } from './store';
import { applyExperiment, experimentOf } from './urlSync';

// mergekit YAML (and the yaml library) load when first used: the page's first load does without them.
const mergekit = () => import('./mergekit');

export type ExportKind = 'experiment' | 'cli' | 'mergekit';

/** A file to download: its name, text and the notes that go with it (e.g. what mergekit computes differently). */
export interface ExportFile {
  name: string;
  text: string;
  type: string;
  warnings: string[];
}

/** Builds an export of the current experiment; throws a clear error where the format cannot express it. */
export async function exportFile(kind: ExportKind): Promise<ExportFile> {
  const e = experimentOf(appStore.getState());
  if (kind === 'experiment') return { name: `experiment-${e.method}.json`, text: exportExperimentJson(e), type: 'application/json', warnings: [] };
  if (kind === 'cli') return { name: `merge-config-${e.method}.json`, text: exportMergeConfigJson(e), type: 'application/json', warnings: [] };
  const demo = currentSuite()?.tasks.map((t) => ({ kind: 'demo' as const, id: t.task.id })) ?? [];
  const { yaml, warnings } = (await mergekit()).exportMergekitYaml(e, demo);
  return { name: `mergekit-${e.method}.yaml`, text: yaml, type: 'application/yaml', warnings };
}

/** Reads an experiment file, a CLI config or mergekit YAML (by extension) and makes it the page's experiment. */
export async function importFile(file: File): Promise<string[]> {
  const text = await file.text();
  const yaml = /\.ya?ml$/i.test(file.name);
  const { experiment, warnings } = yaml ? (await mergekit()).importMergekitYaml(text, experimentOf(appStore.getState())) : importConfigJson(text, file.name);
  const layout = applyExperiment(experiment, warnings);
  if (layout) applyLayout(layout);
  scheduleLiveMerge();
  return warnings;
}
