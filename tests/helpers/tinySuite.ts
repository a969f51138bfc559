/**
 * A generated evaluation suite small enough to merge and score hundreds of times on SwiftShader: a one-layer CLIP-style
 * vision tower (width 8, 4x4 greyscale images in 2x2 patches), fine-tuned variants of it, and per task a fixed
 * two-class head and a few labelled images, all held in memory and loaded through the real suite loader.
 */
import { loadSuite, type Suite, type SuiteManifest } from '../../src/engine/eval/suite';
import { VISION_PREFIX, visionWeightShapes, parseVisionConfig } from '../../src/engine/eval/visionConfig';
import { memorySource } from '../../src/engine/io/byteSource';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { makeModelBytes, makeRelatedModels, seededRandom } from './safetensorsFixtures';

const CONFIG = { model_type: 'clip_vision_model', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, image_size: 4, patch_size: 2, num_channels: 1 };

export interface TinySuiteOptions {
  seed?: number;
  tasks?: number;
  /** Test images per task. */
  images?: number;
  /**
   * Only these tensors (canonical names, e.g. 'encoder.layers.0.mlp.fc1.weight') are fine-tuned: the models carry just
   * them and the base completes the rest, so a merge visits few tensors. Default: all of them.
   */
  finetuned?: string[];
}

/** Builds and loads the suite (every file in memory; the manifest lists no checksums). */
export async function tinySuite(opts: TinySuiteOptions = {}): Promise<Suite> {
  const seed = opts.seed ?? 7;
  const tasks = opts.tasks ?? 2;
  const images = opts.images ?? 8;
  const config = parseVisionConfig(CONFIG, 'config.json');
  const shapes = Object.fromEntries([...visionWeightShapes(config)].map(([name, shape]) => [VISION_PREFIX + name, shape]));
  const related = makeRelatedModels({ seed, dtype: 'F32', models: tasks, shapes, scale: 0.05 });
  const { base } = related;
  const tuned = opts.finetuned?.map((name) => VISION_PREFIX + name);
  const finetuned = related.finetuned.map((m) => m.filter((t) => !tuned || tuned.includes(t.name)));
  const rng = seededRandom(seed + 1);
  const files = new Map<string, Uint8Array>([
    ['config.json', new TextEncoder().encode(JSON.stringify(CONFIG))],
    ['base.safetensors', makeModelBytes(base)],
  ]);
  const manifest: SuiteManifest = {
    format: 1,
    name: 'tiny generated suite',
    image: { height: 4, width: 4, channels: 1, mean: 0.5, std: 0.5 },
    base: { path: 'base.safetensors', config: 'config.json' },
    tasks: [],
    files: {},
  };
  for (let t = 0; t < tasks; t++) {
    const id = `task${t}`;
    files.set(`models/${id}.safetensors`, makeModelBytes(finetuned[t]!));
    const head = Float64Array.from({ length: 2 * config.hiddenSize }, () => rng() - 0.5);
    files.set(`heads/${id}.safetensors`, makeModelBytes([
      { name: 'weight', dtype: 'F32', shape: [2, config.hiddenSize], data: encodeFloats(head, 'F32') },
      { name: 'logit_scale', dtype: 'F32', shape: [1], data: encodeFloats(Float64Array.of(10), 'F32') },
    ]));
    const pixels = Uint8Array.from({ length: images * 16 }, () => Math.floor(rng() * 256));
    const labels = Uint8Array.from({ length: images }, (_, i) => i % 2);
    files.set(`data/${id}.safetensors`, makeModelBytes([
      { name: 'images', dtype: 'U8', shape: [images, 4, 4], data: pixels },
      { name: 'labels', dtype: 'U8', shape: [images], data: labels },
    ]));
    manifest.tasks.push({ id, title: `Task ${t}`, description: '', classes: ['a', 'b'], model: `models/${id}.safetensors`, head: `heads/${id}.safetensors`, data: `data/${id}.safetensors`, individualAccuracy: null, baseAccuracy: null });
  }
  // parseManifest reads the snake_case fields of the file format.
  const json = { ...manifest, tasks: manifest.tasks.map(({ individualAccuracy: _i, baseAccuracy: _b, ...t }) => t) };
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(json)));
  return loadSuite({
    root: 'tiny-suite',
    async open(path) {
      const bytes = files.get(path);
      if (!bytes) throw new Error(`tiny-suite: no file ${path}`);
      return memorySource(`tiny-suite/${path}`, bytes);
    },
  });
}
