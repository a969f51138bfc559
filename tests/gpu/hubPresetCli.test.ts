/**
 * `merge-playground eval --suite <FusionBench preset>` end to end against the local fake Hub (HF_ENDPOINT): a tiny
 * world laid out under the preset's real repo ids (tests/helpers/presetWorld.ts) is downloaded, scored and merged by
 * the CLI. The printed table and the --json file have every task of the preset and a base, individual and merged
 * column; their accuracies are the ones the engine computes in this process on the same world; a second run
 * downloads nothing (every byte and every zero-shot head from the cache) and gives the same numbers.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { hubPreset } from '../../src/engine/eval/fusionbench/presets';
import { loadHubSuite } from '../../src/engine/eval/hubSuite';
import { mergeAndScore, scoreIndividuals, scoreModel } from '../../src/engine/eval/scoreMerge';
import { SuiteEvaluator, type TaskScore } from '../../src/engine/eval/suiteEvaluator';
import { headCacheOver } from '../../src/engine/eval/zeroShotHeads';
import { resolveConfig } from '../../src/engine/merge/config';
import { nodeHubAccess, nodeHubOptions } from '../../src/platform/hubNode';
import { decodeImageNode } from '../../src/platform/imageDecodeNode';
import type { EvalResult } from '../../src/cli/evalCommand';
import { runCli } from '../helpers/cli';
import { startFakeHub, type FakeHub, cliHubEnv } from '../helpers/fakeHub';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { presetWorld } from '../helpers/presetWorld';

const PRESET = hubPreset('fusionbench-clip-vit-base-patch32-ta8');
const SAMPLES = 4;
const SEED = 3;
const ARGS = ['eval', '--suite', PRESET.id, '--method', 'task_arithmetic', '--samples', String(SAMPLES), '--seed', String(SEED)];

let ctx: GpuContext;
let hub: FakeHub;
let dir: string;
let restoreEnv: () => void = () => {};

beforeAll(async () => {
  ctx = await testContext();
  hub = await startFakeHub((await presetWorld(PRESET)).repos);
  dir = mkdtempSync(join(tmpdir(), 'mp-hubpreset-'));
  restoreEnv = cliHubEnv(hub.url, join(dir, 'cache'));
});
afterAll(async () => {
  restoreEnv();
  await hub?.close();
  releaseTestContext();
});

const byTask = (scores: TaskScore[]) => Object.fromEntries(scores.map((s) => [s.task, s.accuracy]));

/** The same evaluation assembled from the engine in this process (bytes and heads from the cache the CLI filled). */
async function inProcess() {
  const options = nodeHubOptions();
  const suite = await loadHubSuite({ ctx, hub: nodeHubAccess(), decodeImage: decodeImageNode, preset: PRESET, headCache: headCacheOver(options.cache!) });
  const evaluator = new SuiteEvaluator(ctx, suite);
  try {
    const opts = { samples: SAMPLES, seed: SEED };
    const base = byTask(await scoreModel(ctx, suite, evaluator, null, opts));
    const individual = byTask(await scoreIndividuals(ctx, suite, evaluator, opts));
    const config = resolveConfig({ method: 'task_arithmetic', options: { mixedDtypes: true } });
    const merged = byTask((await mergeAndScore(ctx, suite, evaluator, config, opts)).scores);
    return { base, individual, merged };
  } finally {
    evaluator.destroy();
  }
}

describe('merge-playground eval --suite PRESET against the local Hub', () => {
  it('prints and writes every task for base, individual and merged, as the engine computes them; a second run downloads nothing', async () => {
    const taskIds = PRESET.tasks.map((t) => t.id);
    const first = join(dir, 'first.json');
    const run = await runCli([...ARGS, '--json', first], { timeoutMs: 400_000 });
    expect(run.code, run.stderr).toBe(0);
    // Every repo of the preset was read from the fake Hub under its real id.
    const read = new Set(hub.fileRequests().map((r) => r.path));
    for (const repo of [PRESET.base.repo, ...taskIds.map((t) => `${PRESET.modelPrefix}${t}`), ...PRESET.tasks.map((t) => t.dataset.repo.replace(/^datasets\//, ''))]) {
      expect([...read].some((p) => p.includes(`/${repo}/`)), repo).toBe(true);
    }

    // The table: a header naming the columns, one row per task, then the average and normalized rows.
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]!.trim().split(/\s+/)).toEqual(['task', 'base', 'individual', 'task_arithmetic']);
    expect(lines.slice(1, 1 + taskIds.length).map((l) => l.trim().split(/\s+/)[0])).toEqual(taskIds);
    expect(lines[1 + taskIds.length]!.trim().split(/\s+/)[0]).toBe('average');
    for (const line of lines.slice(1, 1 + taskIds.length)) {
      const values = line.trim().split(/\s+/).slice(1).map(Number);
      expect(values).toHaveLength(3);
      for (const v of values) expect(v >= 0 && v <= 100, line).toBe(true);
    }

    const result = JSON.parse(readFileSync(first, 'utf8')) as EvalResult;
    expect(result).toMatchObject({ suite: PRESET.title, samples: SAMPLES, seed: SEED, tasks: taskIds, merged: { method: 'task_arithmetic' } });
    const engine = await inProcess();
    for (const col of ['base', 'individual', 'merged'] as const) {
      const row = result[col]!;
      expect(Object.keys(row.tasks)).toEqual(taskIds);
      for (const t of taskIds) {
        expect(row.tasks[t]! >= 0 && row.tasks[t]! <= 100).toBe(true);
        // Accuracy on SAMPLES images is a count: the CLI's and this process's agree exactly.
        expect(row.tasks[t], `${col} ${t}`).toBe(engine[col][t]);
      }
      // The table prints the same numbers, to one decimal.
      const printed = lines.slice(1, 1 + taskIds.length).map((l) => Number(l.trim().split(/\s+/)[['base', 'individual', 'merged'].indexOf(col) + 1]));
      expect(printed).toEqual(taskIds.map((t) => Number(row.tasks[t]!.toFixed(1))));
    }

    // Second run: every file and head comes from the cache; the same result.
    hub.log.length = 0;
    const second = join(dir, 'second.json');
    const again = await runCli([...ARGS, '--json', second, '--quiet'], { timeoutMs: 400_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(hub.fileRequests()).toEqual([]);
    expect(JSON.parse(readFileSync(second, 'utf8'))).toEqual(result);
  }, 900_000);
});
