/**
 * FusionBench's CLIP benchmark as Hub presets: the base CLIP model, one fine-tuned vision tower per task
 * (`tanganke/<backbone>_<task>`), each task's test split on the Hub (parquet), and its class names and templates.
 * Three task lists per backbone, in FusionBench's TALL20 order (`config/dataset/image_classification/test/TALL20.yaml`):
 * TA8, TALL14 (TA8 and six more) and TALL20 (TALL14 and six more).
 *
 * Dataset repos, configs and splits are FusionBench's test configs (`config/dataset/image_classification/test`);
 * `ethz/food101` is scored on its `validation` split. Parquet layouts:
 * - verified (dataset card): `1aurent/PatchCamelyon` has `data/test-*` shards with columns `image` and `label`, the
 *   label a bool (false: class 0, "lymph node"; true: class 1, with tumor tissue);
 * - verified (FusionBench's loader): `clip-benchmark/wds_fer2013` is a WebDataset with entries `jpg` and `cls`, which
 *   FusionBench renames. Tar shards are not parquet, so it is read from the Hub's parquet conversion branch
 *   (`refs/convert/parquet`, files `default/<split>/NNNN.parquet`, the Hub's documented layout; not listed here);
 * - not verified: `nateraw/rendered-sst2`'s own files, so it is read from the conversion branch as well;
 * - the repos' usual layout, not verified here: `data/<split>-*` shards for the `dpdl-benchmark`, `timm`, `tanganke`
 *   and `ethz` repos, `fashion_mnist/test-*` for `zalando-datasets/fashion_mnist` (as `ylecun/mnist`), with columns
 *   `image` and `label`, which FusionBench's CLIPDataset reads from them without renaming.
 * A wrong prefix or column fails at load time with the repo's parquet files or the shard's columns listed.
 * The reference accuracies are FusionBench's (docs/modelpool/clip_vit.md, examples/opcm/results), in percent.
 */
import type { TaskPrompts } from './prompts';
import { DTD, EUROSAT, GTSRB, MNIST, RESISC45, STANFORD_CARS, SUN397, SVHN } from './ta8';
import { CIFAR10, CIFAR100, EMNIST_LETTERS, FASHION_MNIST, FER2013, FOOD101, KMNIST, OXFORD_FLOWERS102, OXFORD_IIIT_PET, PCAM, RENDERED_SST2, STL10 } from './tall20';

/** Where a task's test images are: parquet files of a dataset repo whose paths start with `filePrefix`. */
export interface HubDataset {
  /** `datasets/org/name`, as openRepoFile takes dataset repos. */
  repo: string;
  revision: string;
  /** Path prefix of the split's parquet shards (`data/test-` for `data/test-00000-of-00001.parquet`). */
  filePrefix: string;
  imageColumn: string;
  labelColumn: string;
  /** The split scored, when it is not `test`. */
  split?: string;
}

export interface HubTask {
  /** FusionBench's task name, as the fine-tuned repos spell it. */
  id: string;
  title: string;
  prompts: TaskPrompts;
  dataset: HubDataset;
}

export interface HubPreset {
  id: string;
  title: string;
  /** The base CLIPModel repo (vision and text towers, tokenizer, logit scale). */
  base: { repo: string; revision: string };
  /** Fine-tuned models: `${modelPrefix}${task.id}` at `modelRevision`. */
  modelPrefix: string;
  modelRevision: string;
  tasks: HubTask[];
  /** FusionBench's accuracies (%) of the base and of each task's own fine-tuned model, where published per task. */
  reference: { pretrained: Record<string, number>; finetuned: Record<string, number> } | null;
  /** FusionBench's averages over the tasks (%), by method. */
  averages: Record<string, number>;
}

const data = (repo: string, filePrefix = 'data/test-', split?: string): HubDataset => ({
  repo: `datasets/${repo}`, revision: 'main', filePrefix, imageColumn: 'image', labelColumn: 'label', ...(split ? { split } : {}),
});

/** A split from the Hub's parquet conversion of a dataset that is not stored as parquet itself. */
const converted = (repo: string, imageColumn: string, labelColumn: string): HubDataset => ({
  repo: `datasets/${repo}`, revision: 'refs/convert/parquet', filePrefix: 'default/test/', imageColumn, labelColumn,
});

/** The eight tasks of task arithmetic (Ilharco et al.), FusionBench's TA8, in its order. */
export const TA8_TASKS: HubTask[] = [
  { id: 'sun397', title: 'SUN397', prompts: SUN397, dataset: data('tanganke/sun397') },
  { id: 'stanford-cars', title: 'Stanford Cars', prompts: STANFORD_CARS, dataset: data('tanganke/stanford_cars') },
  { id: 'resisc45', title: 'RESISC45', prompts: RESISC45, dataset: data('tanganke/resisc45') },
  { id: 'eurosat', title: 'EuroSAT', prompts: EUROSAT, dataset: data('tanganke/eurosat') },
  { id: 'svhn', title: 'SVHN', prompts: SVHN, dataset: data('ufldl-stanford/svhn', 'cropped_digits/test-') },
  { id: 'gtsrb', title: 'GTSRB', prompts: GTSRB, dataset: data('tanganke/gtsrb') },
  { id: 'mnist', title: 'MNIST', prompts: MNIST, dataset: data('ylecun/mnist', 'mnist/test-') },
  { id: 'dtd', title: 'DTD', prompts: DTD, dataset: data('tanganke/dtd') },
];

/** TALL14: TA8 and the six tasks the TALL-masks paper (Wang et al., 2024) adds first. */
export const TALL14_TASKS: HubTask[] = [
  ...TA8_TASKS,
  { id: 'oxford_flowers102', title: 'Oxford Flowers 102', prompts: OXFORD_FLOWERS102, dataset: data('dpdl-benchmark/oxford_flowers102') },
  { id: 'pcam', title: 'PCam', prompts: PCAM, dataset: data('1aurent/PatchCamelyon') },
  { id: 'fer2013', title: 'FER2013', prompts: FER2013, dataset: converted('clip-benchmark/wds_fer2013', 'jpg', 'cls') },
  { id: 'oxford-iiit-pet', title: 'Oxford-IIIT Pet', prompts: OXFORD_IIIT_PET, dataset: data('timm/oxford-iiit-pet') },
  { id: 'stl10', title: 'STL-10', prompts: STL10, dataset: data('tanganke/stl10') },
  { id: 'cifar100', title: 'CIFAR-100', prompts: CIFAR100, dataset: data('tanganke/cifar100') },
];

/** TALL20: TALL14 and six more. */
export const TALL20_TASKS: HubTask[] = [
  ...TALL14_TASKS,
  { id: 'cifar10', title: 'CIFAR-10', prompts: CIFAR10, dataset: data('tanganke/cifar10') },
  { id: 'food101', title: 'Food-101', prompts: FOOD101, dataset: data('ethz/food101', 'data/validation-', 'validation') },
  { id: 'fashion_mnist', title: 'Fashion-MNIST', prompts: FASHION_MNIST, dataset: data('zalando-datasets/fashion_mnist', 'fashion_mnist/test-') },
  { id: 'emnist_letters', title: 'EMNIST Letters', prompts: EMNIST_LETTERS, dataset: data('tanganke/emnist_letters') },
  { id: 'kmnist', title: 'KMNIST', prompts: KMNIST, dataset: data('tanganke/kmnist') },
  { id: 'rendered-sst2', title: 'Rendered SST-2', prompts: RENDERED_SST2, dataset: converted('nateraw/rendered-sst2', 'image', 'label') },
];

/**
 * ViT-B/32 per-task accuracies of FusionBench's TALL20 table (pre-trained and fine-tuned; the same numbers as
 * examples/opcm/results/vit-b-32.csv). Each preset takes the entries of its own tasks.
 */
const B32_TALL20_REFERENCE = {
  pretrained: {
    sun397: 63.18, 'stanford-cars': 59.58, resisc45: 60.27, eurosat: 45.0, svhn: 31.63, gtsrb: 32.53, mnist: 48.26, dtd: 44.2,
    oxford_flowers102: 66.45, pcam: 60.64, fer2013: 41.25, 'oxford-iiit-pet': 83.32, stl10: 97.12, cifar100: 63.72,
    cifar10: 89.83, food101: 82.36, fashion_mnist: 63.01, emnist_letters: 11.98, kmnist: 9.95, 'rendered-sst2': 58.65,
  },
  finetuned: {
    sun397: 74.86, 'stanford-cars': 78.52, resisc45: 95.14, eurosat: 99.07, svhn: 97.27, gtsrb: 98.91, mnist: 99.58, dtd: 79.68,
    oxford_flowers102: 88.55, pcam: 87.96, fer2013: 71.61, 'oxford-iiit-pet': 92.45, stl10: 97.55, cifar100: 88.38,
    cifar10: 97.6, food101: 88.41, fashion_mnist: 94.75, emnist_letters: 95.62, kmnist: 98.23, 'rendered-sst2': 71.28,
  },
};

const SUITES = {
  ta8: { tasks: TA8_TASKS, label: '8 tasks' },
  tall14: { tasks: TALL14_TASKS, label: 'TALL14, 14 tasks' },
  tall20: { tasks: TALL20_TASKS, label: 'TALL20, 20 tasks' },
};
type SuiteName = keyof typeof SUITES;

/** The entries of a per-task table that belong to `tasks`. */
function referenceOf(table: typeof B32_TALL20_REFERENCE, tasks: HubTask[]): NonNullable<HubPreset['reference']> {
  const pick = (r: Record<string, number>) => Object.fromEntries(tasks.map((t) => [t.id, r[t.id]!]));
  return { pretrained: pick(table.pretrained), finetuned: pick(table.finetuned) };
}

interface Backbone {
  name: string;
  title: string;
  baseRepo: string;
  perTask: typeof B32_TALL20_REFERENCE | null;
  averages: Record<SuiteName, Record<string, number>>;
}

/**
 * TA8 averages: FusionBench docs/modelpool/clip_vit.md. TALL14 and TALL20: the means of the first 14 and 20 tasks of
 * the per-task pre-trained and fine-tuned accuracies in FusionBench's examples/opcm/results/vit-{b-32,b-16,l-14}.csv;
 * FusionBench publishes no per-method averages of these runs here, so none are listed.
 */
const BACKBONES: Backbone[] = [
  {
    name: 'clip-vit-base-patch32', title: 'CLIP-ViT-B/32', baseRepo: 'openai/clip-vit-base-patch32', perTask: B32_TALL20_REFERENCE,
    averages: {
      ta8: { pretrained: 48.2, finetuned: 90.3, simple_average: 66.5, task_arithmetic: 68.0, ties_merging: 72.2, fisher_merging: 70.6, regmean: 82.4, layer_wise_adamerging: 82.6 },
      tall14: { pretrained: 56.94, finetuned: 89.25 },
      tall20: { pretrained: 55.65, finetuned: 89.77 },
    },
  },
  {
    name: 'clip-vit-base-patch16', title: 'CLIP-ViT-B/16', baseRepo: 'openai/clip-vit-base-patch16', perTask: null,
    averages: {
      ta8: { pretrained: 55.3, finetuned: 92.3, simple_average: 72.3, task_arithmetic: 77.1, ties_merging: 77.5, regmean: 86.0 },
      tall14: { pretrained: 61.97, finetuned: 91.33 },
      tall20: { pretrained: 59.85, finetuned: 91.62 },
    },
  },
  {
    name: 'clip-vit-large-patch14', title: 'CLIP-ViT-L/14', baseRepo: 'openai/clip-vit-large-patch14', perTask: null,
    averages: {
      ta8: { pretrained: 64.6, finetuned: 94.3, simple_average: 80.0, task_arithmetic: 80.7, ties_merging: 84.0, regmean: 90.4 },
      tall14: { pretrained: 69.1, finetuned: 93.37 },
      tall20: { pretrained: 65.61, finetuned: 93.52 },
    },
  },
];

function preset(b: Backbone, suite: SuiteName): HubPreset {
  const { tasks, label } = SUITES[suite];
  return {
    id: `fusionbench-${b.name}-${suite}`,
    title: `FusionBench ${b.title}, ${label}`,
    // main has no model.safetensors for the OpenAI repos: the Hub loader falls back to the safetensors conversion PR.
    base: { repo: b.baseRepo, revision: 'main' },
    modelPrefix: `tanganke/${b.name}_`,
    modelRevision: 'main',
    tasks,
    reference: b.perTask && referenceOf(b.perTask, tasks),
    averages: b.averages[suite],
  };
}

/** Every backbone's TA8, TALL14 and TALL20 presets, by backbone. */
export const HUB_PRESETS: HubPreset[] = BACKBONES.flatMap((b) => (Object.keys(SUITES) as SuiteName[]).map((suite) => preset(b, suite)));

/** A preset by id; the error lists the known ids. */
export function hubPreset(id: string): HubPreset {
  const found = HUB_PRESETS.find((p) => p.id === id);
  if (!found) throw new Error(`unknown suite preset ${JSON.stringify(id)} (known: ${HUB_PRESETS.map((p) => p.id).join(', ')})`);
  return found;
}
