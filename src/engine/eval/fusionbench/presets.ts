/**
 * FusionBench's CLIP benchmark as Hub presets: the base CLIP model, one fine-tuned vision tower per task
 * (`tanganke/<backbone>_<task>`), each task's test split on the Hub (parquet), and its class names and templates.
 * Dataset repos, configs and splits are FusionBench's test configs (`config/dataset/image_classification/test`);
 * the reference accuracies are FusionBench's (docs/modelpool/clip_vit.md), in percent.
 */
import type { TaskPrompts } from './prompts';
import { DTD, EUROSAT, GTSRB, MNIST, RESISC45, STANFORD_CARS, SUN397, SVHN } from './ta8';

/** Where a task's test images are: parquet files of a dataset repo whose paths start with `filePrefix`. */
export interface HubDataset {
  /** `datasets/org/name`, as openRepoFile takes dataset repos. */
  repo: string;
  revision: string;
  /** Path prefix of the split's parquet shards (`data/test-` for `data/test-00000-of-00001.parquet`). */
  filePrefix: string;
  imageColumn: string;
  labelColumn: string;
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

const data = (repo: string, filePrefix = 'data/test-'): HubDataset => ({ repo: `datasets/${repo}`, revision: 'main', filePrefix, imageColumn: 'image', labelColumn: 'label' });

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

/** ViT-B/32 per-task accuracies of FusionBench's TALL20 table (pre-trained and fine-tuned). */
const B32_REFERENCE = {
  pretrained: { sun397: 63.18, 'stanford-cars': 59.58, resisc45: 60.27, eurosat: 45.0, svhn: 31.63, gtsrb: 32.53, mnist: 48.26, dtd: 44.2 },
  finetuned: { sun397: 74.86, 'stanford-cars': 78.52, resisc45: 95.14, eurosat: 99.07, svhn: 97.27, gtsrb: 98.91, mnist: 99.58, dtd: 79.68 },
};

function preset(backbone: string, title: string, baseRepo: string, reference: HubPreset['reference'], averages: Record<string, number>): HubPreset {
  return {
    id: `fusionbench-${backbone}-ta8`,
    title: `FusionBench ${title}, 8 tasks`,
    // main has no model.safetensors for the OpenAI repos: the Hub loader falls back to the safetensors conversion PR.
    base: { repo: baseRepo, revision: 'main' },
    modelPrefix: `tanganke/${backbone}_`,
    modelRevision: 'main',
    tasks: TA8_TASKS,
    reference,
    averages,
  };
}

export const HUB_PRESETS: HubPreset[] = [
  preset('clip-vit-base-patch32', 'CLIP-ViT-B/32', 'openai/clip-vit-base-patch32', B32_REFERENCE, {
    pretrained: 48.2, finetuned: 90.3, simple_average: 66.5, task_arithmetic: 68.0, ties_merging: 72.2, fisher_merging: 70.6, regmean: 82.4, layer_wise_adamerging: 82.6,
  }),
  preset('clip-vit-base-patch16', 'CLIP-ViT-B/16', 'openai/clip-vit-base-patch16', null, {
    pretrained: 55.3, finetuned: 92.3, simple_average: 72.3, task_arithmetic: 77.1, ties_merging: 77.5, regmean: 86.0,
  }),
  preset('clip-vit-large-patch14', 'CLIP-ViT-L/14', 'openai/clip-vit-large-patch14', null, {
    pretrained: 64.6, finetuned: 94.3, simple_average: 80.0, task_arithmetic: 80.7, ties_merging: 84.0, regmean: 90.4,
  }),
];

/** A preset by id; the error lists the known ids. */
export function hubPreset(id: string): HubPreset {
  const found = HUB_PRESETS.find((p) => p.id === id);
  if (!found) throw new Error(`unknown suite preset ${JSON.stringify(id)} (known: ${HUB_PRESETS.map((p) => p.id).join(', ')})`);
  return found;
}
