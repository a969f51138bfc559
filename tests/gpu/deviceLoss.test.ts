/**
 * Device loss in the middle of work (src/engine/gpu/retry.ts): the device is really destroyed (`device.destroy()`, what
 * the browser does on a driver reset) mid-merge, mid-continual-merge and mid-evaluation; withDeviceRetry gets a new
 * device from the runtime and runs the work again from its sources. The retried result equals an undisturbed run bit
 * for bit, the first attempt's output is aborted (nothing partial is left), and a second loss is a clear error.
 */
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import { mergeAndScore } from '../../src/engine/eval/scoreMerge';
import type { Suite } from '../../src/engine/eval/suite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { ConfigError, GpuError } from '../../src/engine/errors';
import { GpuRuntime, type GpuContext } from '../../src/engine/gpu/device';
import { withDeviceRetry, type Attempt } from '../../src/engine/gpu/retry';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../../src/engine/io/model';
import { resolveConfig, type ResolvedConfig } from '../../src/engine/merge/config';
import { runContinual } from '../../src/engine/merge/continual';
import { runMerge } from '../../src/engine/merge/runMerge';
import { nodeGpu } from '../../src/platform/nodeGpu';
import { reliabilityCase } from '../helpers/reliability';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';
import { tinySuite } from '../helpers/tinySuite';

// A hook run before every evaluation batch, to strike in the middle of an evaluation.
const beforeBatch = vi.hoisted(() => ({ run: null as (() => void) | null }));
vi.mock('../../src/engine/eval/evaluate', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/engine/eval/evaluate')>();
  return { ...real, evaluateBatch: (...args: Parameters<typeof real.evaluateBatch>) => (beforeBatch.run?.(), real.evaluateBatch(...args)) };
});

const SHAPES = {
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [32, 64],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [32],
  'vision_model.encoder.layers.0.mlp.fc1.weight': [64, 32],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [64, 32],
  'vision_model.post_layernorm.weight': [32],
};

let runtime: GpuRuntime;
let base: Model;
let models: Model[];
let suite: Suite;

beforeAll(async () => {
  runtime = new GpuRuntime(await nodeGpu(), { label: 'device loss tests' });
  const fx = makeRelatedModels({ seed: 91, dtype: 'F32', models: 3, shapes: SHAPES });
  const open = (name: string, bytes: Uint8Array) => openSingleFileModel(name, memorySource(name, bytes));
  base = await open('base.safetensors', makeModelBytes(fx.base));
  models = await Promise.all(fx.finetuned.map((m, i) => open(`ft${i}.safetensors`, makeModelBytes(m))));
  suite = await tinySuite({ images: 8 });
});
afterAll(() => runtime.destroy());

/** Every sink a run opened, by attempt. */
type Sinks = ReturnType<typeof memorySink>[];

/** A merge on `ctx`, with a fresh sink per opened output, calling `strike(ctx)` on each progress report. */
function merge(ctx: GpuContext, attempt: Attempt | null, config: ResolvedConfig, sinks: Sinks, strike: (ctx: GpuContext) => void) {
  return runMerge(ctx, {
    base,
    models,
    config,
    // The interference metrics are not what is tested here; without them the merge compiles fewer kernels.
    metrics: false,
    output: async () => {
      const sink = memorySink(`merged-${attempt?.index ?? 'plain'}.safetensors`);
      sinks.push(sink);
      return attempt ? attempt.sink(sink) : sink;
    },
    onProgress: () => strike(ctx),
  });
}

/** Destroys the device at the `at`-th call, on the first `times` attempts' devices. */
function striker(at: number, times = 1) {
  const counts = new Map<GpuContext, number>();
  let struck = 0;
  return {
    hit(ctx: GpuContext) {
      const n = (counts.get(ctx) ?? 0) + 1;
      counts.set(ctx, n);
      if (n === at && struck < times) {
        struck++;
        ctx.device.destroy();
      }
    },
    get struck() {
      return struck;
    },
  };
}

/**
 * Checks a retried run: one retry for a destroyed device, the output the lost attempt opened (`lostOpened`: whether it
 * had opened one) aborted and empty, the retry's complete and equal to the undisturbed run's.
 */
function expectRetried(retries: string[], sinks: Sinks, plain: Uint8Array, lostOpened: boolean): void {
  expect(retries).toHaveLength(1);
  expect(retries[0]).toMatch(/destroyed/i);
  expect(sinks.map((s) => s.state())).toEqual(lostOpened ? ['aborted', 'closed'] : ['closed']);
  if (lostOpened) expect(sinks[0]!.bytes().byteLength).toBe(0);
  expect(sinks[sinks.length - 1]!.bytes()).toEqual(plain);
}

describe('device lost in the middle of a merge', () => {
  for (const method of ['task_arithmetic', 'ties'] as const) {
    reliabilityCase('device-loss', `a ${method} merge retried after a loss mid-way equals an undisturbed merge bit for bit`, async () => {
      const config = resolveConfig({ method, options: { chunkElements: 1024 } });
      const plainSinks: Sinks = [];
      const plain = await merge(await runtime.context(), null, config, plainSinks, () => undefined);
      const strike = striker(4);
      const retries: string[] = [];
      const sinks: Sinks = [];
      const contexts: GpuContext[] = [];
      const report = await withDeviceRetry(runtime, (ctx, attempt) => (contexts.push(ctx), merge(ctx, attempt, config, sinks, strike.hit)), { onRetry: (r) => retries.push(r) });
      expect(strike.struck).toBe(1);
      expect(contexts).toHaveLength(2);
      expect(contexts[0]!.usable).toBe(false);
      expect(contexts[1]).not.toBe(contexts[0]);
      expectRetried(retries, sinks, plainSinks[0]!.bytes(), true);
      expect(report.tensors).toEqual(plain.tensors);
      expect(report.totals).toEqual(plain.totals);
      expect(contexts[1]!.allocatedBytes).toBe(0);
    });
  }

  reliabilityCase('device-loss', 'a second loss on the new device gives a clear error and leaves no output', async () => {
    const config = resolveConfig({ method: 'task_arithmetic', options: { chunkElements: 1024 } });
    const strike = striker(3, 2);
    const retries: string[] = [];
    const sinks: Sinks = [];
    const run = withDeviceRetry(runtime, (ctx, attempt) => merge(ctx, attempt, config, sinks, strike.hit), { onRetry: (r) => retries.push(r) });
    const err = await run.then(() => expect.fail('expected a rejection'), (e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as GpuError).kind).toBe('device-lost');
    expect((err as GpuError).message).toMatch(/^The GPU device was lost twice: first \(.*destroyed.*\), then again on the new device \(.*destroyed.*\)\. Nothing was saved; your settings are kept\.$/);
    expect(retries).toHaveLength(1);
    expect(sinks.map((s) => s.state())).toEqual(['aborted', 'aborted']);
    expect(sinks.every((s) => s.bytes().byteLength === 0)).toBe(true);
    // The runtime still gives a working device afterwards.
    expect((await runtime.context()).usable).toBe(true);
  });

  reliabilityCase('device-loss', 'failures that are not a device loss are not retried', async () => {
    const retries: string[] = [];
    let attempts = 0;
    const fail = (e: Error) => withDeviceRetry(runtime, async () => {
      attempts++;
      throw e;
    }, { onRetry: (r) => retries.push(r) });
    await expect(fail(new ConfigError('params.lambda', 'bad'))).rejects.toThrow('params.lambda: bad');
    await expect(fail(new Error('ft0.safetensors: read error'))).rejects.toThrow('read error');
    await expect(fail(new GpuError('validation', 'kernel: bad binding'))).rejects.toThrow('bad binding');
    expect(attempts).toBe(3);
    expect(retries).toEqual([]);
    // A context its owner destroyed on purpose is not replaced behind the owner's back.
    const own = new GpuRuntime(await nodeGpu(), { label: 'destroyed on purpose' });
    const ctx = await own.context();
    const purposely = withDeviceRetry(own, async (c) => {
      attempts++;
      c.destroy();
      c.assertAlive();
    }, { onRetry: (r) => retries.push(r) });
    await expect(purposely).rejects.toThrow(/context destroyed/);
    expect(ctx.released).toBe(true);
    expect(attempts).toBe(4);
    expect(retries).toEqual([]);
    own.destroy();
    return 4;
  });
});

describe('device lost in the middle of a continual merge', () => {
  reliabilityCase('device-loss', 'an OPCM merge retried after a loss at its second step equals an undisturbed one bit for bit', async () => {
    const config = resolveConfig({ method: 'opcm' });
    const continual = (ctx: GpuContext, attempt: Attempt | null, sinks: Sinks, strike: (ctx: GpuContext) => void) =>
      runContinual(ctx, {
        base,
        models,
        config,
        output: async () => {
          const sink = memorySink(`opcm-${attempt?.index ?? 'plain'}.safetensors`);
          sinks.push(sink);
          return attempt ? attempt.sink(sink) : sink;
        },
        onProgress: (p) => p.step === 1 && strike(ctx),
      });
    const plainSinks: Sinks = [];
    const plain = await continual(await runtime.context(), null, plainSinks, () => undefined);
    // Strike on the second tensor of step 1: step 0's merged state already lives on the lost device.
    const strike = striker(2);
    const retries: string[] = [];
    const sinks: Sinks = [];
    const report = await withDeviceRetry(runtime, (ctx, attempt) => continual(ctx, attempt, sinks, strike.hit), { onRetry: (r) => retries.push(r) });
    expect(strike.struck).toBe(1);
    expect(report.steps).toEqual(plain.steps);
    // The output is opened only at the end, so the lost attempt never opened one.
    expectRetried(retries, sinks, plainSinks[0]!.bytes(), false);
    expect((await runtime.context()).allocatedBytes).toBe(0);
  });
});

describe('device lost in the middle of an evaluation', () => {
  for (const method of ['task_arithmetic', 'continual_task_arithmetic'] as const) {
    reliabilityCase('device-loss', `a ${method} merge and score retried after a loss mid-evaluation gives the same scores and file bit for bit`, async () => {
      const config = resolveConfig({ method, params: { lambda: 0.4 } });
      const score = async (ctx: GpuContext, attempt: Attempt | null, sinks: Sinks) => {
        // The evaluator holds images and heads on one device: each attempt makes its own.
        const evaluator = new SuiteEvaluator(ctx, suite, 2);
        try {
          return await mergeAndScore(ctx, suite, evaluator, config, {
            samples: 8,
            output: async () => {
              const sink = memorySink(`scored-${attempt?.index ?? 'plain'}.safetensors`);
              sinks.push(sink);
              return attempt ? attempt.sink(sink) : sink;
            },
          });
        } finally {
          evaluator.destroy();
        }
      };
      const plainSinks: Sinks = [];
      const plain = await score(await runtime.context(), null, plainSinks);
      let batches = 0;
      let current: GpuContext | null = null;
      const retries: string[] = [];
      const sinks: Sinks = [];
      beforeBatch.run = () => {
        // The third batch of the first attempt: a task scored, the next one half-way.
        if (++batches === 3) current!.device.destroy();
      };
      try {
        const scored = await withDeviceRetry(runtime, (ctx, attempt) => ((current = ctx), score(ctx, attempt, sinks)), { onRetry: (r) => retries.push(r) });
        expect(batches).toBeGreaterThan(3);
        expect(scored.scores).toEqual(plain.scores);
        expect(scored.scores.map((s) => s.samples)).toEqual([8, 8]);
        // A batch merge commits its file before the evaluation: the lost attempt's file is discarded and written again.
        // A continual merge scores its last step before writing, so the lost attempt never opened one.
        expectRetried(retries, sinks, plainSinks[0]!.bytes(), method === 'task_arithmetic');
      } finally {
        beforeBatch.run = null;
      }
      expect((await runtime.context()).allocatedBytes).toBe(0);
    });
  }
});
