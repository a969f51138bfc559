/**
 * Tiny CLIP worlds for Hub suites: a CLIPModel base repo (a tiny vision tower at 224 x 224 with patch 32, the golden
 * text tower of tests/fixtures/clipText, its tokenizer and a logit scale), fine-tuned vision towers, and parquet test
 * splits of PNG images. `presetWorld` lays one out for a FusionBench preset under the preset's own repo ids, so the
 * page and the CLI open it by preset id from the local Hub stand-in (fakeHub.ts). Everything is seeded.
 */
import type { HubPreset } from '../../src/engine/eval/fusionbench/presets';
import { textWeightShapes } from '../../src/engine/eval/textConfig';
import { visionWeightShapes, type VisionConfig } from '../../src/engine/eval/visionConfig';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { numelOf } from '../../src/engine/types';
import { loadTextGolden } from '../fixtures/clipText/golden';
import { tinyTokenizerJson } from '../fixtures/clipText/tokenizer';
import { encodePng } from '../fixtures/parquet/encodePng';
import { writeImageParquet } from '../fixtures/parquet/writeParquet';
import type { FakeRepo } from './fakeHub';
import { makeModelBytes, seededRandom, type FixtureTensor } from './safetensorsFixtures';

/** The tiny vision tower: 224 x 224 input (what CLIP preprocessing crops), patch 32, width 32, one layer. */
export const TINY_VISION: VisionConfig = { hiddenSize: 32, numLayers: 1, numHeads: 4, intermediateSize: 64, patchSize: 32, imageSize: 224, numChannels: 3, hiddenAct: 'quick_gelu', layerNormEps: 1e-5, projectionDim: 16 };

/** Repo id (`org/name` or `datasets/org/name`) -> path -> bytes. */
export type RepoFiles = Map<string, Map<string, Uint8Array>>;

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const f32 = (name: string, shape: number[], values: ArrayLike<number>): FixtureTensor => ({ name, dtype: 'F32', shape, data: encodeFloats(values, 'F32') });

/** Random vision weights, layer norms near 1, scaled so the tiny tower's features are O(1). */
export function visionTensors(rng: () => number, withProjection: boolean): FixtureTensor[] {
  const shapes = visionWeightShapes(withProjection ? TINY_VISION : { ...TINY_VISION, projectionDim: null });
  return [...shapes].map(([name, shape]) => {
    const n = numelOf(shape);
    const norm = name.includes('layer_norm') || name.includes('layrnorm');
    const values = Array.from({ length: n }, () => (norm && name.endsWith('.weight') ? 1 : 0) + (rng() - 0.5) * (norm ? 0.2 : 0.5 / Math.sqrt(shape[shape.length - 1]!)));
    return f32(name === 'visual_projection.weight' ? name : `vision_model.${name}`, shape, values);
  });
}

/** A fine-tuned vision tower (no projection, as FusionBench's CLIPVisionModel repos): base + scale * uniform noise. */
export function fineTunedTower(base: FixtureTensor[], rng: () => number, scale = 0.03): FixtureTensor[] {
  return base
    .filter((t) => t.name.startsWith('vision_model.'))
    .map((t) => {
      const values = new Float32Array(t.data.slice().buffer);
      return f32(t.name, t.shape, values.map((v) => v + (rng() - 0.5) * 2 * scale));
    });
}

const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/**
 * The tiny tokenizer, made to keep class names apart in `templates`' prompts: the golden text tower reads 7 tokens
 * (one per letter), which a template's opening words would fill, so its normalizer removes each template's fixed text
 * (longest first) and spells digits as words (the tiny vocabulary has letters only).
 */
export function promptTokenizerJson(templates: string[]): Record<string, unknown> {
  const tokenizer = tinyTokenizerJson();
  const fixed = [...new Set(templates.flatMap((t) => t.toLowerCase().split('{c}')))].filter((f) => /[a-z]/.test(f)).sort((a, b) => b.length - a.length);
  const replace = (from: string, to: string) => ({ type: 'Replace', pattern: { String: from }, content: to });
  tokenizer.normalizer = { type: 'Sequence', normalizers: [tokenizer.normalizer, ...fixed.map((f) => replace(f, ' ')), ...DIGIT_WORDS.map((w, d) => replace(String(d), ` ${w} `))] };
  return tokenizer;
}

/**
 * A CLIPModel repo's files: config.json, model.safetensors (vision tower + golden text tower + logit scale), tokenizer
 * (promptTokenizerJson of `templates` when given, else the tiny one).
 */
export async function clipBaseFiles(vision: FixtureTensor[], templates?: string[]): Promise<Map<string, Uint8Array>> {
  const text = (await loadTextGolden()).cases.find((c) => c.name === 'legacy')!;
  const textTensors = [...textWeightShapes(text.config)].map(([canonical, shape]) => f32(text.names.get(canonical)!, shape, text.weights.get(canonical)!));
  const v = TINY_VISION;
  const config = {
    model_type: 'clip',
    projection_dim: v.projectionDim,
    text_config: JSON.parse(text.configJson).text_config,
    vision_config: { hidden_size: v.hiddenSize, intermediate_size: v.intermediateSize, num_hidden_layers: v.numLayers, num_attention_heads: v.numHeads, image_size: v.imageSize, patch_size: v.patchSize },
  };
  return new Map([
    ['config.json', json(config)],
    ['model.safetensors', makeModelBytes([...vision, ...textTensors, f32('logit_scale', [], [Math.log(100)])])],
    ['tokenizer.json', json(templates ? promptTokenizerJson(templates) : tinyTokenizerJson())],
    ['tokenizer_config.json', json({ model_max_length: 9 })],
  ]);
}

/** Task t's images as PNG: gradients whose direction depends on the label; sizes vary (upsampled and cropped). */
export function pngSplit(t: number, labels: number[]): { png: Uint8Array[]; labels: number[] } {
  const png = labels.map((label, i) => {
    const [w, h] = [20 + i * 3, 16 + ((i * 5) % 9)];
    const pixels = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) pixels[(y * w + x) * 3 + c] = (label * 90 + x * (c + 1) * 7 + y * (t + 2) * 5) % 256;
    return encodePng(pixels, w, h, 3);
  });
  return { png, labels };
}

/** One parquet file of a split's rows (`rowGroupSize` rows per row group), under the given column names. */
export const splitParquet = (s: { png: Uint8Array[]; labels: number[] }, rowGroupSize: number, columns = { image: 'image', label: 'label' }): Uint8Array =>
  writeImageParquet(s.png.map((image, i) => ({ image, label: s.labels[i]! })), rowGroupSize, columns);

/** The fake Hub's repos for these files, each on the revision `revisions` names (default `main`). */
export function fakeHubRepos(files: RepoFiles, revisions: Map<string, string> = new Map()): FakeRepo[] {
  return [...files].map(([repo, repoFiles]) => ({
    id: repo.replace(/^datasets\//, ''),
    type: repo.startsWith('datasets/') ? ('dataset' as const) : ('model' as const),
    revisions: { [revisions.get(repo) ?? 'main']: Object.fromEntries(repoFiles) },
  }));
}

export interface PresetWorld {
  files: RepoFiles;
  /** The revision each repo is on, as the preset asks for it (`main`, `refs/convert/parquet`, ...). */
  revisions: Map<string, string>;
  /** Each task's test split (PNG bytes and labels), by task id. */
  splits: Map<string, { png: Uint8Array[]; labels: number[] }>;
  /** The fake Hub's repos: pass to startFakeHub. */
  repos: FakeRepo[];
}

/**
 * A preset's world under its real repo ids: the base CLIP repo, `${modelPrefix}${task}` per task, and each task's
 * dataset repo with `images` PNGs at `${filePrefix}00000-of-00001.parquet` (labels spread over the task's classes).
 */
export async function presetWorld(preset: HubPreset, opts: { seed?: number; images?: number } = {}): Promise<PresetWorld> {
  const rng = seededRandom(opts.seed ?? 11);
  const images = opts.images ?? 5;
  const vision = visionTensors(rng, true);
  const files: RepoFiles = new Map([[preset.base.repo, await clipBaseFiles(vision, preset.tasks.flatMap((t) => t.prompts.templates))]]);
  const revisions = new Map([[preset.base.repo, preset.base.revision]]);
  const splits = new Map<string, { png: Uint8Array[]; labels: number[] }>();
  preset.tasks.forEach((task, t) => {
    const model = `${preset.modelPrefix}${task.id}`;
    files.set(model, new Map([['model.safetensors', makeModelBytes(fineTunedTower(vision, rng))]]));
    revisions.set(model, preset.modelRevision);
    const classes = task.prompts.classes.length;
    // Labels spread over the task's classes (0, step, 2 * step, ...), wrapping around when it has fewer classes than images.
    const split = pngSplit(t, Array.from({ length: images }, (_, i) => (i * (classes > images ? Math.floor(classes / images) : 1)) % classes));
    splits.set(task.id, split);
    // Tasks may share a dataset repo (different configs): their files go into one repo, which has one revision here.
    const { repo, revision, filePrefix, imageColumn, labelColumn } = task.dataset;
    if (revisions.has(repo) && revisions.get(repo) !== revision) throw new Error(`presetWorld: ${repo} is asked for at ${revisions.get(repo)} and ${revision}`);
    revisions.set(repo, revision);
    const repoFiles = files.get(repo) ?? new Map<string, Uint8Array>();
    repoFiles.set(`${filePrefix}00000-of-00001.parquet`, splitParquet(split, 3, { image: imageColumn, label: labelColumn }));
    files.set(repo, repoFiles);
  });
  return { files, revisions, splits, repos: fakeHubRepos(files, revisions) };
}
