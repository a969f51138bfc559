/**
 * Per-task accuracy and loss of a vision tower on a suite, on the GPU: images are normalised once per (task, sample)
 * and kept on the GPU, heads are uploaded once, and each evaluation runs the transformer over every task's images
 * with that task's fixed head. Only logits are read back.
 */
import type { GpuContext } from '../gpu/device';
import { evaluateBatch } from './evaluate';
import { stratifiedSample } from './sample';
import type { LoadedTask, Suite } from './suite';
import { VisionTransformer, type Head } from './vit';

/** One task's result: accuracy in percent, mean cross-entropy, and how many images were scored. */
export interface TaskScore {
  task: string;
  accuracy: number;
  loss: number;
  samples: number;
  /** With `predictions: true`: the scored images (indices into the task's test set) and each one's predicted class. */
  images?: Int32Array;
  predictions?: Int32Array;
}

export interface EvaluateOptions {
  /** Images per task (stratified, seeded); null = the whole test set. */
  samples?: number | null;
  seed?: number;
  /** Only these task ids (default: all). */
  tasks?: string[];
  signal?: AbortSignal;
  /** Also return every scored image's index and predicted class (TaskScore.images, .predictions). */
  predictions?: boolean;
}

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;

/** The model's input for images `indices` of a task: pixels / 255, normalised with the suite's mean and std, as f32 [n, C, H, W]. */
export function normalizedImages(suite: Suite, task: LoadedTask, indices: ArrayLike<number>): Float32Array<ArrayBuffer> {
  const { mean, std, height, width, channels } = suite.manifest.image;
  const per = height * width * channels;
  const data = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) {
    const img = indices[i]!;
    for (let j = 0; j < per; j++) data[i * per + j] = (task.images[img * per + j]! / 255 - mean) / std;
  }
  return data;
}

export class SuiteEvaluator {
  private readonly heads = new Map<string, Head>();
  private readonly batches = new Map<string, { images: GPUBuffer; indices: Int32Array; labels: Int32Array; count: number }[]>();
  private readonly owned: GPUBuffer[] = [];

  constructor(
    readonly ctx: GpuContext,
    readonly suite: Suite,
    readonly maxBatch = 64,
  ) {}

  /** Scores the weights `weights` (canonical name -> f32 buffer) on every task. */
  async evaluate(weights: (canonical: string) => GPUBuffer, opts: EvaluateOptions = {}): Promise<TaskScore[]> {
    const model = new VisionTransformer(this.ctx, this.suite.config, weights, this.maxBatch);
    try {
      const scores: TaskScore[] = [];
      for (const t of this.suite.tasks) {
        if (opts.tasks && !opts.tasks.includes(t.task.id)) continue;
        let correct = 0;
        let loss = 0;
        let n = 0;
        const batches = await this.batchesOf(t.task.id, opts.samples ?? null, opts.seed ?? 0, opts.signal);
        const predictions = opts.predictions ? new Int32Array(batches.reduce((s, b) => s + b.count, 0)) : null;
        for (const b of batches) {
          if (opts.signal?.aborted) throw new DOMException('cancelled', 'AbortError');
          const r = await evaluateBatch(model, b.images, b.count, this.headOf(t.task.id), b.labels);
          r.predictions.forEach((p, i) => (correct += p === b.labels[i] ? 1 : 0));
          r.loss.forEach((l) => (loss += l));
          predictions?.set(r.predictions, n);
          n += b.count;
        }
        const score: TaskScore = { task: t.task.id, accuracy: n ? (100 * correct) / n : 0, loss: n ? loss / n : 0, samples: n };
        if (predictions) Object.assign(score, { images: Int32Array.from(batches.flatMap((b) => [...b.indices])), predictions });
        scores.push(score);
      }
      return scores;
    } finally {
      model.destroy();
    }
  }

  destroy(): void {
    for (const b of this.owned) this.ctx.destroyBuffer(b);
    this.owned.length = 0;
    this.heads.clear();
    this.batches.clear();
  }

  private headOf(id: string): Head {
    let head = this.heads.get(id);
    if (!head) {
      const t = this.suite.tasks.find((x) => x.task.id === id)!;
      const weight = this.ctx.createBuffer(`head ${id}`, t.head.weight.byteLength, storage());
      this.ctx.device.queue.writeBuffer(weight, 0, t.head.weight as Float32Array<ArrayBuffer>);
      this.owned.push(weight);
      head = { kind: 'zero-shot', weight, classes: t.head.classes, dim: t.head.dim, logitScale: t.head.logitScale };
      this.heads.set(id, head);
    }
    return head;
  }

  /** The task's (sampled) images as normalised f32 batches on the GPU, made once per (task, samples, seed). */
  private async batchesOf(id: string, samples: number | null, seed: number, signal?: AbortSignal) {
    const key = `${id}|${samples}|${seed}`;
    let list = this.batches.get(key);
    if (list) return list;
    const t = this.suite.tasks.find((x) => x.task.id === id)!;
    const indices = stratifiedSample(t.labels, t.head.classes, samples, seed);
    list = [];
    for (let start = 0; start < indices.length; start += this.maxBatch) {
      const idx = indices.subarray(start, start + this.maxBatch);
      // Hub suites decode and preprocess on demand; embedded suites hold u8 pixels.
      const data = t.pixels ? await t.pixels(idx, signal) : normalizedImages(this.suite, t, idx);
      const images = this.ctx.createBuffer(`${id} images ${start}`, data.byteLength, storage());
      this.ctx.device.queue.writeBuffer(images, 0, data);
      this.owned.push(images);
      list.push({ images, indices: idx, labels: Int32Array.from(idx, (i) => t.labels[i]!), count: idx.length });
    }
    this.batches.set(key, list);
    return list;
  }
}
