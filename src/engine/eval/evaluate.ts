/**
 * One evaluation step of a classifier: run a batch through the vision transformer and its head on the GPU, read
 * the logits back, and score them on the host in float64 (argmax prediction and cross-entropy loss per sample).
 * The readback is only B x K floats.
 */
import { ConfigError } from '../errors';
import { readBuffer } from '../gpu/kernels';
import type { Head, VisionTransformer } from './vit';

/** What one batch gives: per-sample predicted class, cross-entropy loss, and the logits [B, K] themselves. */
export interface BatchEvaluation {
  predictions: Int32Array;
  loss: Float64Array;
  logits: Float32Array;
}

/** Index of the largest value of each row of logits [rows, classes]; the first one on ties, -1 for a row of NaNs. */
export function argmaxRows(logits: ArrayLike<number>, rows: number, classes: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -1;
    let bestValue = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = logits[r * classes + c]!;
      if (v > bestValue || (best < 0 && v === -Infinity)) {
        best = c;
        bestValue = v;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Cross-entropy of each row: logsumexp(logits_r) - logits_r[label_r], in float64 (stable for any logit size). */
export function crossEntropyRows(logits: ArrayLike<number>, rows: number, classes: number, labels: ArrayLike<number>): Float64Array {
  checkLabels(labels, rows, classes);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c]! - max);
    out[r] = max + Math.log(sum) - logits[r * classes + labels[r]!]!;
  }
  return out;
}

function checkLabels(labels: ArrayLike<number>, rows: number, classes: number): void {
  if (labels.length < rows) throw new ConfigError('labels', `${labels.length} labels for a batch of ${rows}`);
  for (let r = 0; r < rows; r++) {
    const label = labels[r]!;
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new ConfigError(`labels[${r}]`, `must be a class index in 0..${classes - 1}, got ${label}`);
    }
  }
}

/**
 * Runs images [batch, C, S, S] (f32, normalised) through `model` and `head`, and returns each sample's predicted
 * class and cross-entropy against `labels`. GPU errors during the step become a GpuError naming it.
 */
export async function evaluateBatch(
  model: VisionTransformer,
  images: GPUBuffer,
  batch: number,
  head: Head,
  labels: ArrayLike<number>,
): Promise<BatchEvaluation> {
  checkLabels(labels, batch, head.classes);
  const { ctx } = model;
  const bytes = await ctx.scoped('evaluateBatch', async () => {
    const logits = model.logits(model.features(images, batch), batch, head);
    return readBuffer(ctx, logits, batch * head.classes * 4);
  });
  const logits = new Float32Array(bytes.buffer, bytes.byteOffset, batch * head.classes);
  return { predictions: argmaxRows(logits, batch, head.classes), loss: crossEntropyRows(logits, batch, head.classes, labels), logits };
}
