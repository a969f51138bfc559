/**
 * Prediction parity of the two evaluation paths on the embedded demo suite: a Task Arithmetic merge (defaults) made
 * and evaluated on the GPU (mergeAndScore: weights never leave the GPU) against the float64 path (the
 * reference merge, then the CPU twin of the vision transformer) on the same stratified images of all 8 tasks.
 * Acceptance (issue 5): the same predicted class on >= 99.9% of the images, so at most floor(0.001 N) differ, each of
 * them a near tie of the twin's two best logits; per-task and mean accuracy equal to 0.1 points.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { loadSuite, type Suite } from '../../src/engine/eval/suite';
import { normalizedImages, SuiteEvaluator, type TaskScore } from '../../src/engine/eval/suiteEvaluator';
import { mergeAndScore } from '../../src/engine/eval/scoreMerge';
import { resolveConfig } from '../../src/engine/merge/config';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import { readRefModel, type RefModel } from '../../src/engine/reference/refModel';
import { refVisionWeights, vitPredictRef } from '../../src/engine/reference/vit';
import { suiteFilesFromDir } from '../../src/platform/nodeFiles';
import { releaseTestContext, testContext } from '../helpers/gpu';

/**
 * Images per task (stratified, seed 0): 8 x 50 = 400 in all, so no prediction may differ; both paths take about 75 s
 * on the 2-core machine (the timeout leaves room for a busy one).
 */
const SAMPLES = 50;
/** Largest gap between the twin's two best logits at which the GPU's f32 rounding may pick the other class. */
const NEAR_TIE = 1e-3;
const BATCH = 50;

let ctx: GpuContext;
let suite: Suite;
beforeAll(async () => {
  ctx = await testContext();
  suite = await loadSuite(suiteFilesFromDir('public/demo'));
});
afterAll(releaseTestContext);

/** Merged on the GPU and scored there, keeping each image's prediction. */
async function gpuScores(): Promise<TaskScore[]> {
  const evaluator = new SuiteEvaluator(ctx, suite, BATCH);
  try {
    const config = resolveConfig({ method: 'task_arithmetic', options: { mixedDtypes: true } });
    return (await mergeAndScore(ctx, suite, evaluator, config, { samples: SAMPLES, seed: 0, predictions: true })).scores;
  } finally {
    evaluator.destroy();
  }
}

/** The float64 reference merge with the base's other tensors: the twin's weights. */
async function referenceMerge(): Promise<RefModel> {
  const base = await readRefModel(suite.base);
  const models = await Promise.all(suite.tasks.map((t) => readRefModel(t.model)));
  const shared = new Map([...base].filter(([name]) => models[0]!.has(name)));
  return new Map([...base, ...mergeReference('task_arithmetic', {}, shared, models)]);
}

/** The twin's logits and predictions on the images the GPU scored, for one task. */
function twinOf(weights: RefModel, taskIndex: number, images: Int32Array) {
  const t = suite.tasks[taskIndex]!;
  const w = refVisionWeights(suite.config, weights, 'reference merge');
  const head = { kind: 'zero-shot' as const, weight: Float64Array.from(t.head.weight), classes: t.head.classes, dim: t.head.dim, logitScale: t.head.logitScale };
  const logits = new Float64Array(images.length * head.classes);
  const predictions = new Int32Array(images.length);
  for (let start = 0; start < images.length; start += BATCH) {
    const idx = images.subarray(start, start + BATCH);
    const r = vitPredictRef(suite.config, w, Float64Array.from(normalizedImages(suite, t, idx)), idx.length, head);
    logits.set(r.logits, start * head.classes);
    predictions.set(r.predictions, start);
  }
  return { logits, predictions, classes: head.classes };
}

/** Gap between the largest and second-largest value of row r. */
function topGap(logits: Float64Array, r: number, classes: number): number {
  const row = Array.from(logits.subarray(r * classes, (r + 1) * classes)).sort((a, b) => b - a);
  return row[0]! - row[1]!;
}

describe('evaluation parity: GPU path vs float64 CPU twin', () => {
  it(`Task Arithmetic merge, ${SAMPLES} images on each task`, { timeout: 300_000 }, async () => {
    const gpu = await gpuScores();
    const weights = await referenceMerge();
    expect(gpu.map((s) => s.task)).toEqual(suite.tasks.map((t) => t.task.id));
    let total = 0;
    const mismatches: { task: string; image: number; gpu: number; twin: number; gap: number }[] = [];
    const accuracies = gpu.map((s, i) => {
      const t = suite.tasks[i]!;
      expect(s.samples, s.task).toBe(SAMPLES);
      const twin = twinOf(weights, i, s.images!);
      let correct = 0;
      s.images!.forEach((img, j) => {
        if (twin.predictions[j] === t.labels[img]) correct++;
        if (twin.predictions[j] !== s.predictions![j]) mismatches.push({ task: s.task, image: img, gpu: s.predictions![j]!, twin: twin.predictions[j]!, gap: topGap(twin.logits, j, twin.classes) });
      });
      total += s.samples;
      return { task: s.task, gpu: s.accuracy, twin: (100 * correct) / s.samples };
    });
    expect(total).toBe(8 * SAMPLES);
    expect(mismatches.length, JSON.stringify(mismatches)).toBeLessThanOrEqual(Math.floor(0.001 * total));
    for (const m of mismatches) expect(m.gap, `${m.task} image ${m.image}`).toBeLessThan(NEAR_TIE);
    for (const a of accuracies) expect(Math.abs(a.gpu - a.twin), a.task).toBeLessThanOrEqual(0.1);
    const mean = (k: 'gpu' | 'twin') => accuracies.reduce((s, a) => s + a[k], 0) / accuracies.length;
    expect(Math.abs(mean('gpu') - mean('twin'))).toBeLessThanOrEqual(0.1);
    // The merge is a real one: well above chance on every task (4 or 10 classes).
    for (const a of accuracies) expect(a.twin, a.task).toBeGreaterThan(40);
    expect(ctx.allocatedBytes).toBe(0);
  });
});
