/**
 * Hub suites (src/engine/eval/hubSuite.ts) end to end against an in-memory Hub: a tiny CLIPModel base (vision tower
 * at 224 x 224, the golden text tower, tokenizer, logit scale), two fine-tuned vision towers, and parquet test
 * splits of PNG images. Checks the heads (built, then taken from a cache without touching the tokenizer or the text
 * tower), labels, on-demand pixels (= decode + CLIP preprocessing), merge-facing base tensors, accuracy through
 * SuiteEvaluator on the whole split and on a stratified sample, and the errors for missing data. The same world is
 * also served over HTTP by the local Hub stand-in (tests/helpers/fakeHub.ts) and read with the real Hub client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { clipPreprocess } from '../../src/engine/eval/clipPreprocess';
import type { HubPreset } from '../../src/engine/eval/fusionbench/presets';
import { loadHubSuite, type HubAccess } from '../../src/engine/eval/hubSuite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { textWeightShapes } from '../../src/engine/eval/textConfig';
import { visionWeightShapes, type VisionConfig } from '../../src/engine/eval/visionConfig';
import { GpuWeights } from '../../src/engine/eval/weights';
import { headCacheOver, zeroShotHeadCacheKey } from '../../src/engine/eval/zeroShotHeads';
import { memoryStore, verifiedCache } from '../../src/platform/hubCache';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { numelOf } from '../../src/engine/types';
import { listRepoFiles, openRepoFile, openRepoModel } from '../../src/platform/hub';
import { decodeImageNode } from '../../src/platform/imageDecodeNode';
import { loadTextGolden, type TextGoldenCase } from '../fixtures/clipText/golden';
import { tinyTokenizerJson } from '../fixtures/clipText/tokenizer';
import { encodePng } from '../fixtures/parquet/encodePng';
import { writeImageParquet } from '../fixtures/parquet/writeParquet';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { startFakeHub } from '../helpers/fakeHub';
import { makeModelBytes, seededRandom } from '../helpers/safetensorsFixtures';

const VISION: VisionConfig = { hiddenSize: 32, numLayers: 1, numHeads: 4, intermediateSize: 64, patchSize: 32, imageSize: 224, numChannels: 3, hiddenAct: 'quick_gelu', layerNormEps: 1e-5, projectionDim: 16 };

let ctx: GpuContext;
let text: TextGoldenCase;
beforeAll(async () => {
  ctx = await testContext();
  text = (await loadTextGolden()).cases.find((c) => c.name === 'legacy')!;
});
afterAll(releaseTestContext);

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const f32 = (name: string, shape: number[], values: ArrayLike<number>) => ({ name, dtype: 'F32' as const, shape, data: encodeFloats(values, 'F32') });

/** Random vision weights, layer norms near 1, scaled so the tiny tower's features are O(1). */
function visionTensors(rng: () => number, prefix: string, withProjection: boolean) {
  const shapes = visionWeightShapes(withProjection ? VISION : { ...VISION, projectionDim: null });
  return [...shapes].map(([name, shape]) => {
    const n = numelOf(shape);
    const norm = name.includes('layer_norm') || name.includes('layrnorm');
    const values = Array.from({ length: n }, () => (norm && name.endsWith('.weight') ? 1 : 0) + (rng() - 0.5) * (norm ? 0.2 : 0.5 / Math.sqrt(shape[shape.length - 1]!)));
    return f32(name === 'visual_projection.weight' ? name : prefix + name, shape, values);
  });
}

/** An in-memory Hub: repo -> path -> bytes, with a log of every file opened. */
function fakeHub(files: Map<string, Map<string, Uint8Array>>): HubAccess & { opened: string[] } {
  const opened: string[] = [];
  const file = (repo: string, path: string) => {
    const bytes = files.get(repo)?.get(path);
    if (!bytes) throw new Error(`404 ${repo}/${path}`);
    opened.push(`${repo}/${path}`);
    return memorySource(`${repo}/${path}`, bytes);
  };
  return {
    opened,
    async openRepoFile(repo, _revision, path) {
      return file(repo, path);
    },
    async openRepoModel(repo) {
      return openSingleFileModel(repo, file(repo, 'model.safetensors'));
    },
    async listRepoFiles(repo) {
      return [...(files.get(repo) ?? new Map()).entries()].map(([path, bytes]) => ({ path, size: bytes.length }));
    },
  };
}

/** Task t's images: gradients whose direction depends on the label, as PNG; sizes vary (upsampled and cropped). */
function split(t: number, labels: number[]): { png: Uint8Array[]; labels: number[] } {
  const png = labels.map((label, i) => {
    const [w, h] = [20 + i * 3, 16 + ((i * 5) % 9)];
    const pixels = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) pixels[(y * w + x) * 3 + c] = (label * 90 + x * (c + 1) * 7 + y * (t + 2) * 5) % 256;
    return encodePng(pixels, w, h, 3);
  });
  return { png, labels };
}

function world() {
  const rng = seededRandom(7);
  const textTensors = [...textWeightShapes(text.config)].map(([canonical, shape]) => f32(text.names.get(canonical)!, shape, text.weights.get(canonical)!));
  const base = writeModel([...visionTensors(rng, 'vision_model.', true), ...textTensors, f32('logit_scale', [], [Math.log(100)])]);
  const config = { model_type: 'clip', projection_dim: 16, text_config: JSON.parse(text.configJson).text_config, vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, image_size: 224, patch_size: 32 } };
  const files = new Map<string, Map<string, Uint8Array>>([
    ['test/clip-tiny', new Map([['config.json', json(config)], ['model.safetensors', base], ['tokenizer.json', json(tinyTokenizerJson())], ['tokenizer_config.json', json({ model_max_length: 9 })]])],
    ['test/tiny_abc', new Map([['model.safetensors', writeModel(visionTensors(rng, 'vision_model.', false))]])],
    ['test/tiny_xy', new Map([['model.safetensors', writeModel(visionTensors(rng, 'vision_model.', false))]])],
  ]);
  const abc = split(0, [0, 1, 2, 0, 1, 2, 0, 1, 2, 2]);
  const xy = split(1, [0, 1, 1, 0, 1]);
  files.set('datasets/test/abc', new Map([
    ['data/test-00000-of-00002.parquet', writeImageParquet(abc.png.slice(0, 6).map((image, i) => ({ image, label: abc.labels[i]! })), 4)],
    ['data/test-00001-of-00002.parquet', writeImageParquet(abc.png.slice(6).map((image, i) => ({ image, label: abc.labels[6 + i]! })), 4)],
    ['data/train-00000-of-00001.parquet', writeImageParquet([{ image: abc.png[0]!, label: 7 }], 4)],
  ]));
  files.set('datasets/test/xy', new Map([['plain/test-00000-of-00001.parquet', writeImageParquet(xy.png.map((image, i) => ({ image, label: xy.labels[i]! })), 2)]]));
  const preset: HubPreset = {
    id: 'test-tiny',
    title: 'tiny',
    base: { repo: 'test/clip-tiny', revision: 'main' },
    modelPrefix: 'test/tiny_',
    modelRevision: 'main',
    tasks: [
      { id: 'abc', title: 'ABC', prompts: { classes: ['apple', 'bag', 'cup'], templates: ['a photo of a {c}.', 'a {c}.'] }, dataset: { repo: 'datasets/test/abc', revision: 'main', filePrefix: 'data/test-', imageColumn: 'image', labelColumn: 'label' } },
      { id: 'xy', title: 'XY', prompts: { classes: ['x', 'y'], templates: ['{c}.'] }, dataset: { repo: 'datasets/test/xy', revision: 'main', filePrefix: 'plain/test-', imageColumn: 'image', labelColumn: 'label' } },
    ],
    reference: null,
    averages: {},
  };
  return { files, preset, abc, xy };
}

function writeModel(tensors: ReturnType<typeof f32>[]): Uint8Array {
  return makeModelBytes(tensors);
}

describe('loadHubSuite', () => {
  it('takes the platform Hub client as it is (a compile-time check of the interface)', () => {
    const access: HubAccess = { openRepoFile, openRepoModel, listRepoFiles };
    expect(Object.keys(access)).toHaveLength(3);
  });

  it('builds heads, reads labels, decodes pixels on demand and scores merges-to-be', async () => {
    const { files, preset, abc } = world();
    const hub = fakeHub(files);
    // Heads go to the Hub byte cache (checksummed), as the page and the CLI keep them.
    const store = memoryStore();
    const cache = headCacheOver(verifiedCache(store));
    const suite = await loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, headCache: cache, textBatch: 4 });
    expect(suite.tasks.map((t) => [t.task.id, t.count, t.head.classes, t.head.dim])).toEqual([['abc', 10, 3, 16], ['xy', 5, 2, 16]]);
    expect([...suite.tasks[0]!.labels]).toEqual(abc.labels);
    expect(suite.tasks[0]!.task.head).toBe(await zeroShotHeadCacheKey('test/clip-tiny', 'main', preset.tasks[0]!.prompts));
    expect(store.entries.size).toBe(2);
    for (const t of suite.tasks) {
      expect(t.head.logitScale).toBeCloseTo(100, 3);
      for (let c = 0; c < t.head.classes; c++) expect(Math.hypot(...t.head.weight.subarray(c * 16, (c + 1) * 16))).toBeCloseTo(1, 5);
    }
    // Merges see the vision tower and projection only.
    expect([...suite.base.tensors.keys()].every((n) => n.startsWith('vision_model.') || n === 'visual_projection.weight')).toBe(true);
    expect(suite.base.tensors.has('visual_projection.weight')).toBe(true);
    expect(suite.config.projectionDim).toBe(16);

    // Pixels = decode + CLIP preprocessing of the stored PNGs, in the requested order, across shards.
    const pixels = await suite.tasks[0]!.pixels!([7, 2]);
    const per = 3 * 224 * 224;
    for (const [k, row] of [7, 2].entries()) {
      const expected = clipPreprocess(await decodeImageNode(abc.png[row]!, 'x'));
      expect(pixels.subarray(k * per, (k + 1) * per)).toEqual(expected);
    }

    const weights = await GpuWeights.fromModel(ctx, suite.base, suite.config);
    const evaluator = new SuiteEvaluator(ctx, suite, 4);
    try {
      const full = await evaluator.evaluate(weights.get);
      expect(full.map((s) => [s.task, s.samples])).toEqual([['abc', 10], ['xy', 5]]);
      for (const s of full) {
        expect(s.accuracy).toBeGreaterThanOrEqual(0);
        expect(s.accuracy).toBeLessThanOrEqual(100);
        expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
      }
      const sampled = await evaluator.evaluate(weights.get, { samples: 6, seed: 3, tasks: ['abc'], predictions: true });
      expect(sampled[0]!.samples).toBe(6);
      expect([0, 1, 2].map((c) => [...sampled[0]!.images!].filter((i) => abc.labels[i] === c).length)).toEqual([2, 2, 2]);
    } finally {
      evaluator.destroy();
      weights.destroy();
    }

    // Second load: heads from the cache, so neither the tokenizer nor the text tower is read.
    const again = fakeHub(files);
    const cached = await loadHubSuite({ ctx, hub: again, decodeImage: decodeImageNode, preset, headCache: cache });
    expect(again.opened.some((p) => p.endsWith('tokenizer.json'))).toBe(false);
    expect(cached.tasks[1]!.head.weight).toEqual(suite.tasks[1]!.head.weight);
    expect(cached.tasks[1]!.head.logitScale).toBeCloseTo(100, 3);

    // A corrupt cache entry is a miss (the byte cache's checksum): that head is built again, identically.
    const key = suite.tasks[0]!.task.head;
    store.entries.get(key)!.bytes[5]! ^= 0xff;
    const rebuilt = fakeHub(files);
    const third = await loadHubSuite({ ctx, hub: rebuilt, decodeImage: decodeImageNode, preset, headCache: cache, tasks: ['abc'], textBatch: 4 });
    expect(rebuilt.opened.some((p) => p.endsWith('tokenizer.json'))).toBe(true);
    expect(third.tasks[0]!.head.weight).toEqual(suite.tasks[0]!.head.weight);
  });

  it('says what is missing: a split without parquet files, an unknown task', async () => {
    const { files, preset } = world();
    files.get('datasets/test/xy')!.clear();
    files.get('datasets/test/xy')!.set('README.md', json('x'));
    const hub = fakeHub(files);
    await expect(loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['xy'] })).rejects.toThrow('datasets/test/xy@main: has no parquet files starting with "plain/test-" for task xy (parquet files: none)');
    await expect(loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['zz'] })).rejects.toThrow('test-tiny: has no task zz (tasks: abc, xy)');
  });

  it('loads through the real Hub client from the local Hub server, reading only what it needs', async () => {
    const { files, preset } = world();
    const server = await startFakeHub(
      [...files].map(([repo, repoFiles]) => ({
        id: repo.replace(/^datasets\//, ''),
        type: repo.startsWith('datasets/') ? ('dataset' as const) : ('model' as const),
        revisions: { main: Object.fromEntries(repoFiles) },
      })),
    );
    try {
      const opts = { endpoint: server.url };
      const hub: HubAccess = {
        openRepoFile: (repo, revision, path, o) => openRepoFile(repo, revision, path, { ...opts, ...o }),
        openRepoModel: (repo, revision, o) => openRepoModel(repo, revision, { ...opts, ...o }),
        listRepoFiles: (repo, revision, o) => listRepoFiles(repo, revision, { ...opts, ...o }),
      };
      const suite = await loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['xy'], textBatch: 2 });
      expect(suite.tasks.map((t) => [t.task.id, t.count, [...t.labels]])).toEqual([['xy', 5, [0, 1, 1, 0, 1]]]);
      const pixels = await suite.tasks[0]!.pixels!([4]);
      expect(pixels.length).toBe(3 * 224 * 224);
      // The train split and the fine-tuned model of the task left out were never downloaded.
      const paths = server.fileRequests().map((r) => r.path);
      expect(paths.some((p) => p.includes('train-'))).toBe(false);
      expect(paths.some((p) => p.includes('tiny_abc'))).toBe(false);
      expect(paths.some((p) => p.includes('plain/test-00000-of-00001.parquet'))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
