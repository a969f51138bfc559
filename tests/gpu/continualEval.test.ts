/**
 * The continual protocol on the GPU, on a generated three-task suite: every step's accuracies equal scoring the model
 * that step saved to a file (written by an independent run that takes the order as OPCM's own `order` parameter);
 * BWT and the averages follow from the matrix; a seed names the same orders and results, another seed other orders;
 * cancellation stops the run. Then `merge-playground eval --orders` end to end on two tasks of the demo suite.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContinualProtocol, seededOrders, type AccRow } from '../../src/engine/eval/continualEval';
import type { Suite } from '../../src/engine/eval/suite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { GpuWeights } from '../../src/engine/eval/weights';
import { CancelledError } from '../../src/engine/errors';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { runContinual } from '../../src/engine/merge/continual';
import { runCli } from '../helpers/cli';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { tinySuite } from '../helpers/tinySuite';

const SAMPLES = 10;
const SAMPLE_SEED = 4;
let suite: Suite;
let evaluator: SuiteEvaluator;

beforeAll(async () => {
  const ctx = await testContext();
  suite = await tinySuite({ tasks: 3, images: 16, seed: 5 });
  evaluator = new SuiteEvaluator(ctx, suite, 8);
});

afterAll(async () => {
  evaluator?.destroy();
  await releaseTestContext();
});

const ids = () => suite.tasks.map((t) => t.task.id);

describe('continual protocol', () => {
  it('each step scores the model that step saves, in an order given explicitly', async () => {
    const ctx = await testContext();
    const order = [2, 0, 1];
    const config = resolveConfig({ method: 'opcm' });
    const seen: { order: number; step: number; row: AccRow }[] = [];
    const r = await runContinualProtocol(ctx, suite, evaluator, {
      config,
      orders: [order],
      samples: SAMPLES,
      sampleSeed: SAMPLE_SEED,
      evaluate: 'all',
      onStep: (k, step, row) => seen.push({ order: k, step, row }),
    });
    expect(r.runs).toHaveLength(1);
    const run = r.runs[0]!;
    expect(run.order).toEqual(order);
    expect(run.seed).toBeNull();
    expect(run.steps.map((s) => s.modelIndex)).toEqual(order);
    expect(seen.map((s) => [s.order, s.step])).toEqual([[0, 0], [0, 1], [0, 2]]);
    expect(seen.map((s) => s.row)).toEqual(run.acc);

    // Independent path: OPCM takes the order itself (models in suite order), writes every step to a file, and each
    // file is loaded back as a model and scored on its own.
    const sinks: ReturnType<typeof memorySink>[] = [];
    const report = await runContinual(ctx, {
      base: suite.base,
      models: suite.tasks.map((t) => t.model),
      config: resolveConfig({ method: 'opcm', params: { order } }),
      saveStep: async (step) => (sinks[step] = memorySink(`step ${step + 1}`)),
    });
    expect(report.order).toEqual(order);
    report.steps.forEach((s, i) => {
      expect(run.steps[i]!.lambda).toBeCloseTo(s.lambda!, 6);
      expect(run.steps[i]!.mergedNorm).toBeCloseTo(s.mergedNorm, 4);
    });
    for (let step = 0; step < order.length; step++) {
      const model = await openSingleFileModel(`step ${step + 1}`, memorySource(`step ${step + 1}`, sinks[step]!.bytes()));
      const weights = await GpuWeights.fromModel(ctx, model, suite.config);
      const scores = await evaluator.evaluate(weights.get, { samples: SAMPLES, seed: SAMPLE_SEED });
      weights.destroy();
      expect(run.acc[step], `step ${step + 1}`).toEqual(ids().map((id) => scores.find((s) => s.task === id)!.accuracy));
    }

    // The numbers that follow from the matrix.
    const acc = run.acc;
    expect(run.bwt).toBeCloseTo((acc[2]![2]! - acc[0]![2]! + (acc[2]![0]! - acc[1]![0]!)) / 2, 10);
    expect(run.finalAverage).toBeCloseTo((acc[2]![0]! + acc[2]![1]! + acc[2]![2]!) / 3, 10);
    // With evaluate 'all', every row is complete; the step's average still covers only the tasks merged so far.
    acc.forEach((row, i) => {
      expect(row.every((v) => v !== null)).toBe(true);
      const seen = order.slice(0, i + 1);
      expect(run.seenAverage[i]).toBeCloseTo(seen.reduce((a, t) => a + row[t]!, 0) / seen.length, 10);
    });
    expect(r.finalAverage).toEqual({ mean: run.finalAverage, std: null, n: 1 });
    expect(r.bwt).toEqual({ mean: run.bwt, std: null, n: 1 });
  });

  it('the same seed gives the same orders and results; another seed gives other orders', async () => {
    const ctx = await testContext();
    const config = resolveConfig({ method: 'continual_ties' });
    const run = (seed: number, orders = 2) => runContinualProtocol(ctx, suite, evaluator, { config, orders, seed, samples: SAMPLES, sampleSeed: SAMPLE_SEED });
    const a = await run(1);
    const b = await run(1);
    expect(a.runs.map((x) => x.order)).toEqual(seededOrders(3, 2, 1));
    // Seed 3 names an order of the three tasks that seeds 1 and 2 do not: run(3) must merge in it.
    const other = seededOrders(3, 1, 3);
    for (const x of a.runs) expect(other[0]).not.toEqual(x.order);
    const strip = (r: typeof a) => r.runs.map(({ elapsedMs: _e, ...x }) => x);
    expect(strip(b)).toEqual(strip(a));
    expect(b.finalAverage).toEqual(a.finalAverage);
    expect(b.bwt).toEqual(a.bwt);
    const c = await run(3, 1);
    expect(c.runs.map((x) => x.order)).toEqual(other);

    // Scored on the tasks seen so far: row i holds exactly the first i + 1 tasks of the order.
    for (const r of a.runs) {
      r.acc.forEach((row, i) => {
        const seen = new Set(r.order.slice(0, i + 1));
        row.forEach((v, task) => expect(v === null, `step ${i + 1} task ${task}`).toBe(!seen.has(task)));
        const vals = row.filter((v): v is number => v !== null);
        expect(r.seenAverage[i]).toBeCloseTo(vals.reduce((x, y) => x + y, 0) / vals.length, 10);
      });
    }
    const finals = a.runs.map((r) => r.finalAverage);
    const mean = (finals[0]! + finals[1]!) / 2;
    expect(a.finalAverage.mean).toBeCloseTo(mean, 10);
    expect(a.finalAverage.std).toBeCloseTo(Math.abs(finals[0]! - finals[1]!) / Math.SQRT2, 10);
  });

  it('stops when its signal fires', async () => {
    const ctx = await testContext();
    const controller = new AbortController();
    let steps = 0;
    const run = runContinualProtocol(ctx, suite, evaluator, {
      config: resolveConfig({ method: 'continual_average' }),
      orders: 2,
      samples: 2,
      signal: controller.signal,
      onStep: () => {
        steps++;
        controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(steps).toBe(1);
  });

  it('rejects a batch method, an order parameter and a bad explicit order', async () => {
    const ctx = await testContext();
    const opts = { samples: 2 };
    await expect(runContinualProtocol(ctx, suite, evaluator, { ...opts, config: resolveConfig({ method: 'task_arithmetic' }) })).rejects.toThrow(/^method:.*batch method/);
    await expect(runContinualProtocol(ctx, suite, evaluator, { ...opts, config: resolveConfig({ method: 'opcm', params: { order: 'shuffle' } }) })).rejects.toThrow(/^params\.order:/);
    await expect(runContinualProtocol(ctx, suite, evaluator, { ...opts, config: resolveConfig({ method: 'opcm' }), orders: [[0, 0, 1]] })).rejects.toThrow(/^orders\[0\]:/);
  });
});

/** A suite folder holding the demo suite's first `tasks` tasks (its files linked, its manifest cut). */
function demoSubset(tasks: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'mp-continual-'));
  const manifest = JSON.parse(readFileSync('public/demo/manifest.json', 'utf8'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, tasks: manifest.tasks.slice(0, tasks) }));
  for (const sub of ['base', 'models', 'heads', 'data']) symlinkSync(resolve('public/demo', sub), join(dir, sub));
  return dir;
}

describe('merge-playground eval --orders', () => {
  // The command's protocol is the same for every continual method (the engine tests above run OPCM); continual Task
  // Arithmetic on two demo tasks keeps this end-to-end run short on a CPU adapter. docs/continual.md has the full runs.
  it('prints the per-step table and writes the acc matrices, BWT and mean ± std as JSON', async () => {
    const dir = demoSubset(2);
    const out = join(dir, 'eval.json');
    const r = await runCli(['eval', '--suite', dir, '--method', 'continual_task_arithmetic', '--orders', '2', '--samples', '8', '--json', out, '--quiet'], { timeoutMs: 590_000 });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/step\s+task added\s+avg seen\s+lambda_t\s+sqrt\(t\)/);
    expect(r.stdout).toMatch(/continual_task_arithmetic over 2 order\(s\): final average [\d.]+ ± [\d.]+, BWT -?[\d.]+ ± [\d.]+ \(mean ± sample std\)/);
    const json = JSON.parse(readFileSync(out, 'utf8'));
    const c = json.continual;
    const T = json.tasks.length;
    expect(T).toBe(2);
    expect(c).toMatchObject({ method: 'continual_task_arithmetic', samples: 8, evaluate: 'seen', std: 'sample', tasks: json.tasks });
    expect(c.runs).toHaveLength(2);
    c.runs.forEach((run: { order: number[]; seed: number; acc: (number | null)[][]; seenAverage: number[]; finalAverage: number; bwt: number; steps: { lambda: number | null; sqrtT: number }[] }, k: number) => {
      expect(run.seed).toBe(k);
      expect(run.order).toEqual(seededOrders(T, 2, 0)[k]);
      expect(run.acc).toHaveLength(T);
      run.acc.forEach((row, i) => {
        expect(row).toHaveLength(T);
        const vals = row.filter((v): v is number => v !== null);
        expect(vals).toHaveLength(i + 1);
        vals.forEach((v) => expect(v >= 0 && v <= 100).toBe(true));
        expect(run.seenAverage[i]).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / vals.length, 10);
        // Only OPCM has an adaptive lambda_t; the baselines report null.
        expect(run.steps[i]!.lambda).toBeNull();
        expect(run.steps[i]!.sqrtT).toBeCloseTo(Math.sqrt(i + 1), 12);
      });
      expect(run.finalAverage).toBeCloseTo(run.seenAverage[T - 1]!, 10);
      let bwt = 0;
      for (let i = 0; i < T - 1; i++) bwt += run.acc[T - 1]![run.order[i]!]! - run.acc[i]![run.order[i]!]!;
      expect(run.bwt).toBeCloseTo(bwt / (T - 1), 10);
    });
    const finals = c.runs.map((x: { finalAverage: number }) => x.finalAverage);
    const bwts = c.runs.map((x: { bwt: number }) => x.bwt);
    expect(c.finalAverage.mean).toBeCloseTo((finals[0] + finals[1]) / 2, 10);
    expect(c.finalAverage.std).toBeCloseTo(Math.abs(finals[0] - finals[1]) / Math.SQRT2, 10);
    expect(c.bwt.mean).toBeCloseTo((bwts[0] + bwts[1]) / 2, 10);
    expect(c.bwt.std).toBeCloseTo(Math.abs(bwts[0] - bwts[1]) / Math.SQRT2, 10);
    // The merged column is the final model's accuracy averaged over the orders.
    expect(json.merged.average).toBeCloseTo(c.finalAverage.mean, 10);
  }, 600_000);

  it('--svd places OPCM\'s SVDs in the protocol (the GPU\'s Jacobi reports its sweeps, the host none), with the same accuracies', async () => {
    const dir = demoSubset(2);
    const layersOf = async (svd: string) => {
      const out = join(dir, `eval-${svd}.json`);
      const r = await runCli(['eval', '--suite', dir, '--method', 'opcm', '--orders', '1', '--samples', '8', '--svd', svd, '--json', out, '--quiet'], { timeoutMs: 590_000 });
      expect(r.stderr, svd).not.toMatch(/error/i);
      expect(r.code, svd).toBe(0);
      const json = JSON.parse(readFileSync(out, 'utf8'));
      return { run: json.continual.runs[0], layers: json.continual.runs[0].steps[1].layers as { svdSweeps?: number }[] };
    };
    const gpu = await layersOf('gpu');
    const host = await layersOf('host');
    // The second step projects every Linear weight; only the GPU's block Jacobi counts sweeps.
    expect(gpu.layers.length).toBeGreaterThan(0);
    expect(gpu.layers.every((l) => typeof l.svdSweeps === 'number' && l.svdSweeps > 0)).toBe(true);
    expect(host.layers).toHaveLength(gpu.layers.length);
    expect(host.layers.every((l) => l.svdSweeps === undefined)).toBe(true);
    // Both factorisations are exact to f32 rounding: the scored predictions agree.
    expect(host.run.acc).toEqual(gpu.run.acc);
    // --svd belongs to OPCM, and takes gpu or host.
    const batch = await runCli(['eval', '--suite', 'demo', '--method', 'ties', '--svd', 'host', '--quiet']);
    expect([batch.code, batch.stderr.trim().split('\n').at(-1)]).toEqual([2, "merge-playground: error: --svd: only opcm takes SVDs ('ties' does not)"]);
    const bad = await runCli(['eval', '--suite', 'demo', '--method', 'opcm', '--orders', '1', '--svd', 'cpu', '--quiet']);
    expect(bad.stderr.trim().split('\n').at(-1)).toBe('merge-playground: error: --svd: expected gpu or host, got "cpu"');
    const all = await runCli(['eval', '--suite', 'demo', '--all-methods', '--svd', 'gpu', '--quiet']);
    expect(all.stderr).toMatch(/--svd: needs --method opcm, and no --all-methods/);
  }, 600_000);

  it('--gpu-cache (batch methods, as for merge): the same accuracies without the between-pass cache; refused for a continual method', async () => {
    const dir = demoSubset(2);
    const merged = async (flag: string[]) => {
      const out = join(dir, `eval-cache-${flag.length}.json`);
      const r = await runCli(['eval', '--suite', dir, '--method', 'ties', '--samples', '8', ...flag, '--json', out, '--quiet'], { timeoutMs: 290_000 });
      expect(r.stderr, flag.join(' ')).not.toMatch(/error/i);
      expect(r.code, flag.join(' ')).toBe(0);
      return JSON.parse(readFileSync(out, 'utf8')).merged;
    };
    expect(await merged(['--gpu-cache', '0'])).toEqual(await merged([]));
    const continual = await runCli(['eval', '--suite', 'demo', '--method', 'opcm', '--gpu-cache', '64', '--quiet']);
    expect([continual.code, continual.stderr.trim().split('\n').at(-1)]).toEqual([2, "merge-playground: error: --gpu-cache: only batch methods keep model bytes between passes ('opcm' is a continual method)"]);
    const bad = await runCli(['eval', '--suite', 'demo', '--method', 'ties', '--gpu-cache', 'lots', '--quiet']);
    expect(bad.stderr.trim().split('\n').at(-1)).toBe('merge-playground: error: --gpu-cache: expected a whole number of MiB (0 or more), got "lots"');
  }, 600_000);

  it('refuses --orders with a batch method before scoring anything', async () => {
    const r = await runCli(['eval', '--suite', 'demo', '--method', 'task_arithmetic', '--orders', '2', '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--orders: only continual methods merge in steps/);
  });
});
