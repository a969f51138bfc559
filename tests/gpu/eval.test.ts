/**
 * Evaluation on the GPU against the float64 CPU twin, on the embedded demo suite: the same sampled images give the same
 * predictions (>= 99.9 %) and the same accuracy (to 0.1 points), for the base and for a merged model kept on the GPU.
 */
import { describe, expect, it } from 'vitest';
import { stratifiedSample } from '../../src/engine/eval/sample';
import { loadSuite, type Suite } from '../../src/engine/eval/suite';
import { SuiteEvaluator } from '../../src/engine/eval/suiteEvaluator';
import { resolveVisionWeights } from '../../src/engine/eval/visionConfig';
import { GpuWeights } from '../../src/engine/eval/weights';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { readRefModel, type RefModel } from '../../src/engine/reference/refModel';
import { vitFeaturesRef, vitLogitsRef } from '../../src/engine/reference/vit';
import { suiteFilesFromDir } from '../../src/platform/nodeFiles';
import { testContext } from '../helpers/gpu';

const SAMPLES = 24;
const TASKS = 3;

/** Accuracy (%) and predictions of float64 weights on the first TASKS tasks' samples, computed by the CPU twin. */
function twinScores(suite: Suite, weights: RefModel) {
  const names = resolveVisionWeights(suite.config, [...weights].map(([name, t]) => ({ name, shape: t.shape })), 'ref').names;
  const w = (canonical: string) => weights.get(names.get(canonical)!)!.data;
  const { mean, std, height, width } = suite.manifest.image;
  return suite.tasks.slice(0, TASKS).map((t) => {
    const idx = stratifiedSample(t.labels, t.head.classes, SAMPLES, 0);
    const per = height * width;
    const images = new Float64Array(idx.length * per);
    idx.forEach((img, i) => {
      for (let j = 0; j < per; j++) images[i * per + j] = Math.fround((t.images[img * per + j]! / 255 - mean) / std);
    });
    const f = vitFeaturesRef(suite.config, w, images, idx.length);
    const logits = vitLogitsRef(f, idx.length, { kind: 'zero-shot', weight: Float64Array.from(t.head.weight), classes: t.head.classes, dim: t.head.dim, logitScale: t.head.logitScale });
    const preds = Array.from(idx, (_, i) => {
      let best = 0;
      for (let c = 1; c < t.head.classes; c++) if (logits[i * t.head.classes + c]! > logits[i * t.head.classes + best]!) best = c;
      return best;
    });
    const correct = preds.filter((p, i) => p === t.labels[idx[i]!]).length;
    return { task: t.task.id, accuracy: (100 * correct) / idx.length };
  });
}

describe('evaluation on the GPU equals the CPU twin', () => {
  it('base model and a Task Arithmetic merge kept on the GPU', async () => {
    const ctx = await testContext();
    const suite = await loadSuite(suiteFilesFromDir('public/demo'));
    const evaluator = new SuiteEvaluator(ctx, suite, 32);
    const tasks = suite.tasks.slice(0, TASKS).map((t) => t.task.id);
    const base = await GpuWeights.fromModel(ctx, suite.base, suite.config);
    const gpuBase = await evaluator.evaluate(base.get, { samples: SAMPLES, tasks });
    base.destroy();
    const baseRef = await readRefModel(suite.base);
    const twinBase = twinScores(suite, baseRef);
    gpuBase.forEach((s, i) => expect(s.accuracy, s.task).toBeCloseTo(twinBase[i]!.accuracy, 1));

    // Merge on the GPU, keep the merged weights there, evaluate; compare with the twin on the reference merge.
    const merged = new Map<string, GPUBuffer>();
    const models = suite.tasks.map((t) => t.model);
    await runMerge(ctx, {
      base: suite.base,
      models,
      config: resolveConfig({ method: 'task_arithmetic', options: { mixedDtypes: true } }),
      metrics: false,
      collect: (t) => {
        const b = ctx.createBuffer(t.name, t.numel * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
        merged.set(t.name, b);
        return b;
      },
    });
    const weights = await GpuWeights.fromMerged(ctx, suite.base, suite.config, merged);
    const gpuMerged = await evaluator.evaluate(weights.get, { samples: SAMPLES, tasks });
    weights.destroy();
    merged.forEach((b) => ctx.destroyBuffer(b));
    const mergedModels = await Promise.all(models.map(readRefModel));
    const shared = new Map([...baseRef].filter(([name]) => mergedModels[0]!.has(name)));
    const refMerged = mergeReference('task_arithmetic', resolveParams(getMethod('task_arithmetic'), {}), shared, mergedModels);
    const full: RefModel = new Map([...baseRef, ...refMerged]);
    const twinMerged = twinScores(suite, full);
    gpuMerged.forEach((s, i) => expect(s.accuracy, s.task).toBeCloseTo(twinMerged[i]!.accuracy, 1));
    evaluator.destroy();
    expect(ctx.allocatedBytes).toBe(0);
  });
});
