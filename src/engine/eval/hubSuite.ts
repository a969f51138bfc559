/**
 * A Suite built from the Hugging Face Hub, as FusionBench's CLIP benchmark lays it out (presets in
 * fusionbench/presets.ts): the base CLIPModel repo gives the vision tower that merges start from, the text tower,
 * tokenizer and logit scale for the zero-shot heads; each task has a fine-tuned vision tower repo and a dataset repo
 * whose test split is read from parquet on demand. The Hub itself is injected (src/platform/hub.ts implements
 * HubAccess), as is image decoding (src/platform/imageDecode*.ts), so this module stays platform-free.
 */
import { FormatError } from '../errors';
import type { GpuContext } from '../gpu/device';
import type { ByteSource } from '../io/byteSource';
import type { Model } from '../io/model';
import { clipPreprocess, CLIP_PREPROCESS, type DecodedImage } from './clipPreprocess';
import type { HubPreset, HubTask } from './fusionbench/presets';
import { openParquetSplit } from './parquetData';
import type { LoadedTask, Suite, SuiteManifest } from './suite';
import { PROJECTION_WEIGHT, VISION_PREFIX, parseVisionConfig, resolveVisionWeights } from './visionConfig';
import { buildZeroShotHead, clipTokenizer, openTextTower, readLogitScale, zeroShotHeadCacheKey, type HeadCache, type PromptTokenizer, type TextTower } from './zeroShotHeads';

/** What the suite needs of the Hub; `repo` is `org/name` or `datasets/org/name`. */
export interface HubAccess {
  openRepoFile(repo: string, revision: string, path: string, opts?: { signal?: AbortSignal }): Promise<ByteSource>;
  openRepoModel(repo: string, revision: string, opts?: { prefix?: string; signal?: AbortSignal }): Promise<Model>;
  listRepoFiles(repo: string, revision: string, opts?: { signal?: AbortSignal }): Promise<{ path: string; size: number }[]>;
  /** The commit a revision points to (test sets are read at it, and links record it). */
  resolveRevision?(repo: string, revision: string, opts?: { signal?: AbortSignal }): Promise<string>;
}

/** Decodes an encoded image (PNG, JPEG, ...); `name` is what errors call it. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => Promise<DecodedImage>;

export interface HubSuiteOptions {
  ctx: GpuContext;
  hub: HubAccess;
  decodeImage: ImageDecoder;
  preset: HubPreset;
  /** Only these task ids (default: all of the preset's). */
  tasks?: string[];
  /**
   * The revision to read a repo at, by repo id (`org/name`, `datasets/org/name`), in place of the preset's: the commits a
   * share link pinned, so a reopened link reads the bytes it was made from even after the repos moved on.
   */
  revisions?: Record<string, string>;
  /** Heads by zeroShotHeadCacheKey (headCacheOver() puts them in the Hub download cache). */
  headCache?: HeadCache;
  /** Prompts per text-tower batch. */
  textBatch?: number;
  signal?: AbortSignal;
  /** One line per step, for a status bar or the CLI. */
  onStatus?: (message: string) => void;
}

async function readJson(hub: HubAccess, repo: string, revision: string, path: string, signal?: AbortSignal): Promise<unknown> {
  const src = await hub.openRepoFile(repo, revision, path, { signal });
  const text = new TextDecoder().decode(await src.read(0, src.size, signal));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${repo}/${path}`, `is not valid JSON (${(e as Error).message})`);
  }
}

/** The tensors of `model` that `keep` selects, as a Model of their own (reads go to the same files). */
function selectTensors(model: Model, keep: (name: string) => boolean): Model {
  return { ...model, tensors: new Map([...model.tensors].filter(([name]) => keep(name))) };
}

/** The parquet shards of a task's test split, in name order; the error lists the repo's parquet files. */
async function splitFiles(hub: HubAccess, task: HubTask, signal?: AbortSignal): Promise<string[]> {
  const { repo, revision, filePrefix } = task.dataset;
  const all = (await hub.listRepoFiles(repo, revision, { signal })).map((f) => f.path).filter((p) => p.endsWith('.parquet'));
  const files = all.filter((p) => p.startsWith(filePrefix)).sort();
  if (files.length === 0) {
    throw new FormatError(`${repo}@${revision}`, `has no parquet files starting with "${filePrefix}" for task ${task.id} (parquet files: ${all.slice(0, 8).join(', ') || 'none'}${all.length > 8 ? ', ...' : ''})`);
  }
  return files;
}

/** The base repo's tokenizer: tokenizer.json, with tokenizer_config.json when the repo has one. */
async function baseTokenizer(hub: HubAccess, repo: string, revision: string, signal?: AbortSignal): Promise<PromptTokenizer> {
  const files = new Set((await hub.listRepoFiles(repo, revision, { signal })).map((f) => f.path));
  if (!files.has('tokenizer.json')) throw new FormatError(`${repo}@${revision}`, 'has no tokenizer.json; zero-shot heads need the base CLIP repo\'s tokenizer');
  const config = files.has('tokenizer_config.json') ? await readJson(hub, repo, revision, 'tokenizer_config.json', signal) : {};
  return clipTokenizer(await readJson(hub, repo, revision, 'tokenizer.json', signal), config, `${repo}/tokenizer.json`);
}

/** Loads a preset's suite: models opened lazily (headers only), heads built or taken from the cache, labels read. */
export async function loadHubSuite(opts: HubSuiteOptions): Promise<Suite> {
  const { ctx, hub, preset, signal } = opts;
  const status = opts.onStatus ?? (() => {});
  const wanted = opts.tasks ?? preset.tasks.map((t) => t.id);
  const unknown = wanted.filter((id) => !preset.tasks.some((t) => t.id === id));
  if (unknown.length) throw new FormatError(preset.id, `has no task ${unknown.join(', ')} (tasks: ${preset.tasks.map((t) => t.id).join(', ')})`);
  const pinned = (repo: string, revision: string) => (opts.revisions && Object.hasOwn(opts.revisions, repo) ? opts.revisions[repo]! : revision);
  // Each test set is read at one commit, resolved once, so every shard comes from the same version and a link can
  // record it.
  const resolve = async (repo: string, revision: string) => (hub.resolveRevision ? hub.resolveRevision(repo, revision, { signal }) : revision);
  const tasks = await Promise.all(
    preset.tasks.filter((t) => wanted.includes(t.id)).map(async (t) => ({ ...t, dataset: { ...t.dataset, revision: await resolve(t.dataset.repo, pinned(t.dataset.repo, t.dataset.revision)) } })),
  );

  const baseRepo = preset.base.repo;
  const baseRevision = pinned(baseRepo, preset.base.revision);
  status(`reading ${baseRepo}`);
  const configJson = await readJson(hub, baseRepo, baseRevision, 'config.json', signal);
  const fullBase = await hub.openRepoModel(baseRepo, baseRevision, { signal });
  // Merges see the vision tower and the projection only; the text tower stays out of them.
  const base = selectTensors(fullBase, (name) => name.startsWith(VISION_PREFIX) || name === PROJECTION_WEIGHT);
  const baseTensors = [...base.tensors.values()].map((t) => ({ name: t.info.name, shape: t.info.shape }));
  const config = resolveVisionWeights(parseVisionConfig(configJson, `${baseRepo}/config.json`), baseTensors, base.name).config;
  if (config.imageSize !== CLIP_PREPROCESS.cropSize) {
    throw new FormatError(`${baseRepo}/config.json`, `vision image_size is ${config.imageSize}; the CLIP preprocessing here crops ${CLIP_PREPROCESS.cropSize}`);
  }

  let text: TextTower | null = null;
  let tokenizer: PromptTokenizer | null = null;
  const loaded: LoadedTask[] = [];
  try {
    for (const task of tasks) {
      signal?.throwIfAborted();
      const key = await zeroShotHeadCacheKey(baseRepo, baseRevision, task.prompts);
      const cached = (await opts.headCache?.get(key)) ?? null;
      let head: LoadedTask['head'];
      if (cached) {
        const classes = task.prompts.classes.length;
        if (cached.length % classes !== 0) throw new FormatError(`head cache ${key}`, `holds ${cached.length} values, not a multiple of ${classes} classes`);
        // A cached head needs only the logit scale: one scalar, not the text tower.
        head = { weight: cached, classes, dim: cached.length / classes, logitScale: text?.logitScale ?? (await readLogitScale(fullBase, signal)) };
      } else {
        tokenizer ??= await baseTokenizer(hub, baseRepo, baseRevision, signal);
        text ??= await openTextTower(ctx, fullBase, configJson, `${baseRepo}/config.json`, opts.textBatch ?? 64, signal);
        head = await buildZeroShotHead(text, tokenizer, task.prompts, { signal, onProgress: (done, total) => status(`${task.title} head: ${done}/${total} prompts`) });
        await opts.headCache?.put(key, head.weight);
      }
      if (head.dim !== (config.projectionDim ?? config.hiddenSize)) {
        throw new FormatError(task.id, `head has ${head.dim} features, the vision tower gives ${config.projectionDim ?? config.hiddenSize}`);
      }
      status(`${task.title}: opening ${preset.modelPrefix}${task.id} and its test split`);
      const modelRepo = `${preset.modelPrefix}${task.id}`;
      const model = await hub.openRepoModel(modelRepo, pinned(modelRepo, preset.modelRevision), { signal });
      const files = await splitFiles(hub, task, signal);
      const sources = await Promise.all(files.map((f) => hub.openRepoFile(task.dataset.repo, task.dataset.revision, f, { signal })));
      const split = await openParquetSplit(sources, { image: task.dataset.imageColumn, label: task.dataset.labelColumn }, task.prompts.classes.length, signal);
      const per = 3 * CLIP_PREPROCESS.cropSize ** 2;
      loaded.push({
        task: {
          id: task.id,
          title: task.title,
          description: `${task.dataset.repo.replace(/^datasets\//, '')}, ${task.dataset.split ?? 'test'} split`,
          classes: [...task.prompts.classes],
          model: `${preset.modelPrefix}${task.id}`,
          head: key,
          data: task.dataset.repo,
          individualAccuracy: preset.reference?.finetuned[task.id] ?? null,
          baseAccuracy: preset.reference?.pretrained[task.id] ?? null,
        },
        model,
        head,
        images: new Uint8Array(0),
        labels: split.labels,
        count: split.count,
        async pixels(indices, pixelSignal) {
          const encoded = await split.readImages(indices, pixelSignal);
          const out = new Float32Array(indices.length * per);
          for (let i = 0; i < encoded.length; i++) {
            const name = `${task.dataset.repo} image ${indices[i]}`;
            clipPreprocess(await opts.decodeImage(encoded[i]!, name), CLIP_PREPROCESS, out, i * per);
          }
          return out;
        },
      });
    }
  } finally {
    text?.destroy();
  }
  const manifest: SuiteManifest = {
    format: 1,
    name: preset.title,
    // Pixels come preprocessed and normalised from LoadedTask.pixels: identity mean and std here.
    image: { height: CLIP_PREPROCESS.cropSize, width: CLIP_PREPROCESS.cropSize, channels: 3, mean: 0, std: 1 },
    base: { path: baseRepo, config: 'config.json' },
    tasks: loaded.map((t) => t.task),
    files: {},
  };
  return { manifest, config, base, tasks: loaded, datasets: tasks.map((t) => `${t.dataset.repo}@${t.dataset.revision}`) };
}
