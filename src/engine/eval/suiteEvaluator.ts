/**
 * Per-task accuracy and loss of a vision tower on a suite, on the GPU: images are normalised once per (task, sample)
 * and kept on the GPU, heads are uploaded once, and each evaluation runs the transformer over every task's images
 * with that task's fixed head. Only logits are read back.
 */
import type { GpuContext } from '../gpu/device';
import { evaluateBatch } from './evaluate';
import { stratifiedSample } from './sample';
import type { Suite } from './suite';
import { VisionTransformer, type Head } from './vit';

/** One task's result: accuracy in percent, mean cross-entropy, and how many images were scored. */
export interface TaskScore {
  task: string;
  accuracy: number;
  loss: number;
  samples: number;
}

export interface EvaluateOptions {
  /** Images per task (stratified, seeded); null = the whole test set. */
  samples?: number | null;
  seed?: number;
  /** Only these task ids (default: all). */
  tasks?: string[];
  signal?: AbortSignal;
}

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;

export class SuiteEvaluator {
  private readonly heads = new Map<string, Head>();
  private readonly batches = new Map<string, { images: GPUBuffer; labels: Uint8Array; count: number }[]>();
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
        for (const b of this.batchesOf(t.task.id, opts.samples ?? null, opts.seed ?? 0)) {
          if (opts.signal?.aborted) throw new DOMException('cancelled', 'AbortError');
          const r = await evaluateBatch(model, b.images, b.count, this.headOf(t.task.id), b.labels);
          r.predictions.forEach((p, i) => (correct += p === b.labels[i] ? 1 : 0));
          r.loss.forEach((l) => (loss += l));
          n += b.count;
        }
        scores.push({ task: t.task.id, accuracy: n ? (100 * correct) / n : 0, loss: n ? loss / n : 0, samples: n });
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
  private batchesOf(id: string, samples: number | null, seed: number) {
    const key = `${id}|${samples}|${seed}`;
    let list = this.batches.get(key);
    if (list) return list;
    const t = this.suite.tasks.find((x) => x.task.id === id)!;
    const { mean, std, height, width, channels } = this.suite.manifest.image;
    const per = height * width * channels;
    const indices = stratifiedSample(t.labels, t.head.classes, samples, seed);
    list = [];
    for (let start = 0; start < indices.length; start += this.maxBatch) {
      const idx = indices.subarray(start, start + this.maxBatch);
      const data = new Float32Array(idx.length * per);
      idx.forEach((img, i) => {
        for (let j = 0; j < per; j++) data[i * per + j] = (t.images[img * per + j]! / 255 - mean) / std;
      });
      const images = this.ctx.createBuffer(`${id} images ${start}`, data.byteLength, storage());
      this.ctx.device.queue.writeBuffer(images, 0, data);
      this.owned.push(images);
      list.push({ images, labels: Uint8Array.from(idx, (i) => t.labels[i]!), count: idx.length });
    }
    this.batches.set(key, list);
    return list;
  }
}
