/**
 * Hub suites (src/engine/eval/hubSuite.ts) end to end against an in-memory Hub: a tiny CLIPModel base (vision tower
 * at 224 x 224, the golden text tower, tokenizer, logit scale), two fine-tuned vision towers, and parquet test
 * splits of PNG images. Checks the heads (built, then taken from a cache without touching the tokenizer or the text
 * tower), labels, on-demand pixels (= decode + CLIP preprocessing), merge-facing base tensors, accuracy through
 * SuiteEvaluator on the whole split and on a stratified sample, and the errors for missing data. The same world is
 * also served over HTTP by the local Hub stand-in (tests/helpers/fakeHub.ts) and read with the real Hub client, with
 * some repos pinned to commits; and the preset worlds (tests/helpers/presetWorld.ts) of every preset are checked to be
 * where each preset reads them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { clipPreprocess } from '../../src/engine/eval/clipPreprocess';
import { HUB_PRESETS, type HubPreset } from '../../src/engine/eval/fusionbench/presets';
import { openParquetSplit } from '../../src/engine/eval/parquetData';
import { loadHubSuite, type HubAccess } from '../../src/engine/eval/hubSuite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { GpuWeights } from '../../src/engine/eval/weights';
import { headCacheOver, zeroShotHeadCacheKey } from '../../src/engine/eval/zeroShotHeads';
import { memoryStore, verifiedCache } from '../../src/platform/hubCache';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { listRepoFiles, openRepoFile, openRepoModel, resolveRevision, type HubModel } from '../../src/platform/hub';
import { decodeImageNode } from '../../src/platform/imageDecodeNode';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { startFakeHub } from '../helpers/fakeHub';
import { clipBaseFiles, fakeHubRepos, pngSplit, presetWorld, splitParquet, visionTensors, type RepoFiles } from '../helpers/presetWorld';
import { makeModelBytes, seededRandom } from '../helpers/safetensorsFixtures';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** An in-memory Hub: repo -> path -> bytes, with a log of every file opened. */
function fakeHub(files: RepoFiles): HubAccess & { opened: string[] } {
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

/** Two tasks with independent towers, a split in two shards next to a train split, and a split under its own prefix. */
async function world() {
  const rng = seededRandom(7);
  const files: RepoFiles = new Map([
    ['test/clip-tiny', await clipBaseFiles(visionTensors(rng, true))],
    ['test/tiny_abc', new Map([['model.safetensors', makeModelBytes(visionTensors(rng, false))]])],
    ['test/tiny_xy', new Map([['model.safetensors', makeModelBytes(visionTensors(rng, false))]])],
  ]);
  const abc = pngSplit(0, [0, 1, 2, 0, 1, 2, 0, 1, 2, 2]);
  const xy = pngSplit(1, [0, 1, 1, 0, 1]);
  const rows = (from: number, to: number) => ({ png: abc.png.slice(from, to), labels: abc.labels.slice(from, to) });
  files.set('datasets/test/abc', new Map([
    ['data/test-00000-of-00002.parquet', splitParquet(rows(0, 6), 4)],
    ['data/test-00001-of-00002.parquet', splitParquet(rows(6, 10), 4)],
    ['data/train-00000-of-00001.parquet', splitParquet({ png: [abc.png[0]!], labels: [7] }, 4)],
  ]));
  files.set('datasets/test/xy', new Map([['plain/test-00000-of-00001.parquet', splitParquet(xy, 2)]]));
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

describe('loadHubSuite', () => {
  it('takes the platform Hub client as it is (a compile-time check of the interface)', () => {
    const access: HubAccess = { openRepoFile, openRepoModel, listRepoFiles };
    expect(Object.keys(access)).toHaveLength(3);
  });

  it('builds heads, reads labels, decodes pixels on demand and scores merges-to-be', async () => {
    const { files, preset, abc } = await world();
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
    const { files, preset } = await world();
    files.get('datasets/test/xy')!.clear();
    files.get('datasets/test/xy')!.set('README.md', json('x'));
    const hub = fakeHub(files);
    await expect(loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['xy'] })).rejects.toThrow('datasets/test/xy@main: has no parquet files starting with "plain/test-" for task xy (parquet files: none)');
    await expect(loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['zz'] })).rejects.toThrow('test-tiny: has no task zz (tasks: abc, xy)');
  });

  it('loads through the real Hub client from the local Hub server, reading only what it needs', async () => {
    const { files, preset } = await world();
    const server = await startFakeHub(fakeHubRepos(files));
    try {
      const opts = { endpoint: server.url };
      const hub: HubAccess = {
        openRepoFile: (repo, revision, path, o) => openRepoFile(repo, revision, path, { ...opts, ...o }),
        openRepoModel: (repo, revision, o) => openRepoModel(repo, revision, { ...opts, ...o }),
        listRepoFiles: (repo, revision, o) => listRepoFiles(repo, revision, { ...opts, ...o }),
      };
      // The task's model and split pinned to commits (a share link's), the base left at the preset's `main`.
      const pins = { 'test/tiny_xy': server.commit('test/tiny_xy', 'main'), 'datasets/test/xy': server.commit('test/xy', 'main') };
      const suite = await loadHubSuite({ ctx, hub, decodeImage: decodeImageNode, preset, tasks: ['xy'], textBatch: 2, revisions: pins });
      expect(suite.tasks.map((t) => [t.task.id, t.count, [...t.labels]])).toEqual([['xy', 5, [0, 1, 1, 0, 1]]]);
      expect((suite.tasks[0]!.model as HubModel).hub.commit).toBe(pins['test/tiny_xy']);
      const asked = server.log.map((r) => r.path);
      expect([...new Set(asked.filter((p) => p.endsWith('/revision/main')))]).toEqual(['/api/models/test/clip-tiny/revision/main']);
      expect(asked).toContain(`/api/datasets/test/xy/tree/${pins['datasets/test/xy']}`);
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

  it('presetWorld serves every preset where the preset reads it: repos, revisions, split files, columns and labels', async () => {
    for (const preset of HUB_PRESETS) {
      const world = await presetWorld(preset, { images: 3 });
      const server = await startFakeHub(world.repos);
      try {
        const opts = { endpoint: server.url };
        await resolveRevision(preset.base.repo, preset.base.revision, opts);
        for (const task of preset.tasks) {
          await resolveRevision(`${preset.modelPrefix}${task.id}`, preset.modelRevision, opts);
          const { repo, revision, filePrefix, imageColumn, labelColumn } = task.dataset;
          const files = (await listRepoFiles(repo, revision, opts)).map((f) => f.path).filter((f) => f.startsWith(filePrefix) && f.endsWith('.parquet'));
          expect(files, `${preset.id} ${task.id}`).toHaveLength(1);
          const split = await openParquetSplit([await openRepoFile(repo, revision, files[0]!, opts)], { image: imageColumn, label: labelColumn }, task.prompts.classes.length);
          expect([...split.labels], `${preset.id} ${task.id}`).toEqual(world.splits.get(task.id)!.labels);
        }
      } finally {
        await server.close();
      }
    }
  });
});

