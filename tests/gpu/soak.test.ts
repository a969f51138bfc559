/**
 * Long use: the page re-merges and re-scores on every slider move, for hours. 1,000 consecutive updates as the page
 * makes them (merge with a new lambda, score on a small suite, every other one cancelled part-way) must leave the GPU
 * bytes the engine holds exactly where they started and the JS heap flat; and cancelling a merge, a continual merge
 * or an evaluation at any point frees every GPU buffer it made.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import { mergeAndScore } from '../../src/engine/eval/scoreMerge';
import type { Suite } from '../../src/engine/eval/suite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { CancelledError } from '../../src/engine/errors';
import type { GpuContext } from '../../src/engine/gpu/device';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import { runContinual } from '../../src/engine/merge/continual';
import { runMerge } from '../../src/engine/merge/runMerge';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { reliabilityCase } from '../helpers/reliability';
import { tinySuite } from '../helpers/tinySuite';

// A hook run before every evaluation batch, to cancel in the middle of an evaluation.
const beforeBatch = vi.hoisted(() => ({ run: null as (() => void) | null }));
vi.mock('../../src/engine/eval/evaluate', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/engine/eval/evaluate')>();
  return { ...real, evaluateBatch: (...args: Parameters<typeof real.evaluateBatch>) => (beforeBatch.run?.(), real.evaluateBatch(...args)) };
});

const UPDATES = 1000;
/** Images per task scored on each update, in batches of BATCH. */
const SAMPLES = 2;
const BATCH = 2;
/** Allowed JS heap growth over the soak, after garbage collection. */
const HEAP_BOUND_MB = 8;

// Node runs without --expose-gc here: enable it at run time and take the function from a fresh context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

let ctx: GpuContext;
let suite: Suite;
beforeAll(async () => {
  ctx = await testContext();
  // Fine-tuning two tensors keeps each merge short; the other weights come from the base, as with partial fine-tunes.
  suite = await tinySuite({ images: SAMPLES, finetuned: ['encoder.layers.0.mlp.fc1.weight', 'encoder.layers.0.self_attn.v_proj.weight'] });
});
afterAll(async () => {
  beforeBatch.run = null;
  await releaseTestContext();
});

/** Whether `e` is what a cancelled merge (CancelledError) or evaluation (AbortError) rejects with. */
const isCancel = (e: unknown) => e instanceof CancelledError || (e as Error)?.name === 'AbortError';

/**
 * One update as the page makes it: merge the suite's models with `lambda` (into a download sink if `download`) and score
 * the merge. `cancelAt` counts progress reports and evaluation batches: at that one the update is cancelled (0: never).
 */
async function update(evaluator: SuiteEvaluator, method: string, lambda: number, cancelAt = 0, download = true): Promise<{ events: number; cancelled: boolean }> {
  const controller = new AbortController();
  let events = 0;
  let cancelledIn: 'merge' | 'evaluation' | null = null;
  const event = (where: 'merge' | 'evaluation') => {
    if (++events !== cancelAt) return;
    cancelledIn = where;
    controller.abort();
  };
  beforeBatch.run = () => event('evaluation');
  const sink = memorySink('merged.safetensors');
  try {
    const { scores } = await mergeAndScore(ctx, suite, evaluator, resolveConfig({ method, params: { lambda } }), {
      samples: SAMPLES,
      signal: controller.signal,
      ...(download ? { output: async () => sink } : {}),
      onProgress: () => event('merge'),
      // The interference metrics' selection passes take seconds on a software GPU; their buffers are freed as the
      // merge's own (the batch-merge case below runs with them).
      metrics: false,
    });
    expect(scores).toHaveLength(suite.tasks.length);
    expect(sink.state()).toBe(download ? 'closed' : 'open');
    return { events, cancelled: false };
  } catch (e) {
    if (!isCancel(e) || cancelAt === 0) throw e;
    // Cancelled while scoring, the merged file was complete; during the merge, it is discarded (or complete when the
    // cancel came after the merge's last check).
    if (!download) expect(sink.state()).toBe('open');
    else if (cancelledIn === 'evaluation') expect(sink.state()).toBe('closed');
    else expect(sink.state() === 'closed' || (sink.state() === 'aborted' && sink.bytes().byteLength === 0)).toBe(true);
    return { events, cancelled: true };
  } finally {
    beforeBatch.run = null;
  }
}

describe('long use', () => {
  reliabilityCase(
    'long-use',
    `${UPDATES} consecutive updates (merge with a new lambda and score, every other one cancelled part-way) leave GPU bytes and the JS heap flat`,
    async () => {
      const evaluator = new SuiteEvaluator(ctx, suite, BATCH);
      try {
        // The first update compiles the kernels and uploads the suite's images and heads, which the evaluator keeps.
        const { events } = await update(evaluator, 'task_arithmetic', 0.3, 0, false);
        expect(events).toBeGreaterThan(2);
        const gpuBefore = ctx.allocatedBytes;
        expect(gpuBefore).toBeGreaterThan(0);
        const heapBefore = heapMb();
        const started = Date.now();
        let cancelled = 0;
        for (let i = 0; i < UPDATES; i++) {
          const lambda = 0.05 + (0.9 * i) / UPDATES;
          // Odd updates are cancelled, at every point of the work in turn (a progress report or an evaluation batch;
          // a cancel at the last batch would come after the last check, so it is not one of them).
          const cancelAt = i % 2 ? 1 + (((i - 1) / 2) % (events - 1)) : 0;
          // Writing the download file would double the time; the cases below write it.
          const r = await update(evaluator, 'task_arithmetic', lambda, cancelAt, false);
          if (r.cancelled) cancelled++;
          expect(r.cancelled).toBe(cancelAt > 0);
          expect(ctx.allocatedBytes, `GPU bytes after update ${i}`).toBe(gpuBefore);
        }
        const seconds = (Date.now() - started) / 1000;
        const heapAfter = heapMb();
        expect(ctx.allocatedBytes).toBe(gpuBefore);
        expect(cancelled).toBe(UPDATES / 2);
        expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND_MB);
        return {
          runs: UPDATES,
          detail:
            `GPU bytes held ${gpuBefore} before, ${ctx.allocatedBytes} after; JS heap ${heapBefore.toFixed(1)} MB before, ` +
            `${heapAfter.toFixed(1)} MB after (bound +${HEAP_BOUND_MB} MB); ${cancelled} cancelled; ${seconds.toFixed(0)} s on ${ctx.info.isSoftware ? 'a software GPU' : 'a GPU'}`,
        };
      } finally {
        evaluator.destroy();
      }
    },
    300_000,
  );
});

describe('cancelling frees every GPU buffer', () => {
  reliabilityCase('long-use', 'a merge and score cancelled at each of its progress reports and evaluation batches frees every buffer', async () => {
    const evaluator = new SuiteEvaluator(ctx, suite, BATCH);
    try {
      const { events } = await update(evaluator, 'ties', 0.5);
      const held = ctx.allocatedBytes;
      // The evaluator checks for a cancel before each batch: one at the last batch comes too late to count.
      for (let at = 1; at < events; at++) {
        const r = await update(evaluator, 'ties', 0.5, at);
        expect(r.cancelled, `cancelled at ${at}`).toBe(true);
        expect(ctx.allocatedBytes, `GPU bytes after cancelling at ${at} of ${events}`).toBe(held);
      }
      return events - 1;
    } finally {
      evaluator.destroy();
    }
  });

  reliabilityCase('long-use', 'a batch merge cancelled at each of its progress reports frees every buffer', async () => {
    const models = suite.tasks.map((t) => t.model);
    const run = (config: ReturnType<typeof resolveConfig>, signal?: AbortSignal, onProgress?: () => void) =>
      runMerge(ctx, { base: suite.base, models, config, signal, onProgress, output: async () => memorySink('merged.safetensors') });
    let points = 0;
    for (const method of ['ties', 'tall_masks'] as const) {
      const config = resolveConfig({ method, options: { chunkElements: 1024 } });
      let events = 0;
      await run(config, undefined, () => events++);
      for (let at = 1; at <= events; at++) {
        const controller = new AbortController();
        let n = 0;
        await expect(run(config, controller.signal, () => ++n === at && controller.abort())).rejects.toBeInstanceOf(CancelledError);
        expect(ctx.allocatedBytes, `${method} cancelled at ${at} of ${events}`).toBe(0);
      }
      points += events;
    }
    return points;
  });

  reliabilityCase('long-use', 'a continual merge cancelled at each of its steps and tensors frees every buffer', async () => {
    const models = suite.tasks.map((t) => t.model);
    let points = 0;
    for (const method of ['opcm', 'continual_ties'] as const) {
      const config = resolveConfig({ method });
      let events = 0;
      await runContinual(ctx, { base: suite.base, models, config, onProgress: () => events++ });
      for (let at = 1; at <= events; at++) {
        const controller = new AbortController();
        let n = 0;
        const run = runContinual(ctx, { base: suite.base, models, config, signal: controller.signal, onProgress: () => ++n === at && controller.abort(), output: async () => memorySink('continual.safetensors') });
        await expect(run).rejects.toBeInstanceOf(CancelledError);
        expect(ctx.allocatedBytes, `${method} cancelled at ${at} of ${events}`).toBe(0);
      }
      points += events;
    }
    return points;
  });
});
