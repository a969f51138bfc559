/**
 * Continual merging on the GPU: models arrive one at a time (in the method's order) and are folded into a merged
 * task vector D = M - theta0 held on the GPU, one f32 buffer per tensor. Between steps only D (and, for MagMax, the
 * running max-magnitude vector) and a few scalars are kept: no earlier task vector, so GPU memory does not grow with
 * the number of models. Each step reads theta0 and the incoming model once, keeps the incoming task vector for the
 * step, updates D, and reports its diagnostics. References: src/engine/reference/continual.ts and opcm.ts.
 *
 * OPCM step (methods.md 1.3): R = lambda_prev * D + P(tau) (P = SVD projection for Linear weights, identity otherwise),
 * then D = R * (N-bar / ||R||) and lambda = ||R|| / N-bar, where N-bar is the running mean of task-vector norms.
 */
import { ConfigError, throwIfAborted } from '../errors';
import type { GpuContext } from '../gpu/device';
import { combine, packAdd, readBuffer, scaleAdd, squaredNorms, taskVector, unpack, uploadRaw, type RawDType } from '../gpu/kernels';
import { disjointMerge, magmaxSelect, trimMask } from '../gpu/mergeKernels';
import { signSum } from '../gpu/mergeReductions';
import { DEFAULT_SVD_BATCH_BYTES, SvdBatches } from '../gpu/opcmBatch';
import { projectOnFactors } from '../gpu/opcmProject';
import { MagnitudeSelect } from '../gpu/select';
import type { ByteSink } from '../io/byteSource';
import type { Model } from '../io/model';
import { SafetensorsWriter } from '../io/safetensorsWriter';
import { resolveOrder } from '../methods/order';
import { checkModelCount } from '../methods/registry';
import { coefficientAt, countLayers, type CoefficientSetting } from '../methods/scaling';
import type { StepDiagnostics } from '../reference/continual';
import { isClassEmbedding, type LayerDiagnostics } from '../reference/opcm';
import { isLinearWeight } from '../reference/linearWeights';
import type { DisjointMerge } from '../reference/methods/signElect';
import { decodeToF32, encodeFloats } from '../tensor/dtype';
import { alignModels, type AlignedTensor } from './align';
import { configToJson, type MergeConfig, type ResolvedConfig } from './config';
import { mergeMetadata, outputSpecs } from './runMerge';
import { gpuRaw } from './stream';

export const CONTINUAL_REPORT_FORMAT = 'merge-playground/continual-report@1';

/** What one step measured: the same fields as the float64 reference, so the two can be compared. */
export type { StepDiagnostics };

export interface ContinualReport {
  format: typeof CONTINUAL_REPORT_FORMAT;
  config: MergeConfig;
  base: string;
  models: string[];
  /** Model indices in the order they were merged. */
  order: number[];
  steps: StepDiagnostics[];
  backend: string;
  elapsedMs: number;
  /** Peak GPU bytes over the whole run (constant in the number of models). */
  peakGpuBytes: number;
  output: { file: string; bytes: number } | null;
}

/** The merged model after a step, for evaluators: D = M - theta0 per tensor (f32 GPU buffers, valid during the callback). */
export interface StepView {
  diagnostics: StepDiagnostics;
  tensors: AlignedTensor[];
  delta(name: string): GPUBuffer;
}

export interface ContinualRun {
  base: Model;
  models: Model[];
  config: ResolvedConfig;
  output?: () => Promise<ByteSink>;
  /** Called after every step (evaluate the merged model so far, save it...). */
  onStep?: (view: StepView) => Promise<void> | void;
  /** Writes the merged model after step `step` (e.g. --save-steps); null to skip. */
  saveStep?: (step: number) => Promise<ByteSink | null>;
  signal?: AbortSignal;
  onProgress?: (p: { step: number; steps: number; tensor: string }) => void;
  /** GPU bytes one batch of OPCM's same-shape SVDs may hold (gpu/opcmBatch.ts; default DEFAULT_SVD_BATCH_BYTES, 0: one at a time). */
  svdBatchBytes?: number;
  /**
   * Where OPCM factors the merged task vector's Linear weights: 'gpu' (block Jacobi, batched) or 'host' (float64
   * Gram eigendecomposition, gpu/opcmBatch.ts). Default: 'host' on a CPU-emulated adapter, where the Jacobi sweeps
   * made OPCM steps 4-5x slower and one 768 x 768 SVD 58x slower (bench/README.md), 'gpu' otherwise.
   */
  svd?: 'gpu' | 'host';
}

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Sum over the tensors of ||buffer(name)||^2, in tensor order, with one readback for all. */
async function normSq(ctx: GpuContext, tensors: readonly AlignedTensor[], buffer: (name: string) => GPUBuffer): Promise<number> {
  let sum = 0;
  for (const x of await squaredNorms(ctx, tensors.map((t) => ({ buf: buffer(t.name), numel: t.numel })))) sum += x;
  return sum;
}

/** Runs a continual method; returns per-step diagnostics and writes the final model if `output` is given. */
export async function runContinual(ctx: GpuContext, run: ContinualRun): Promise<ContinualReport> {
  const started = Date.now();
  const { base, models, config } = run;
  const spec = config.method;
  if (spec.family !== 'continual') throw new ConfigError('method', `'${spec.id}' is not a continual method`);
  checkModelCount(spec, models.length);
  const aligned = alignModels(base, models, config.options);
  const tensors = aligned.filter((t) => t.action === 'merge');
  for (const t of tensors) {
    if (t.numel * 4 > ctx.info.limits.maxStorageBufferBindingSize) {
      throw new ConfigError('models', `tensor ${t.name} (${t.numel} elements) is larger than one GPU buffer binding allows (${ctx.info.limits.maxStorageBufferBindingSize} bytes)`);
    }
  }
  const p = config.params;
  const order = resolveOrder(p.order ?? 'given', (p.seed as number | undefined) ?? 0, models.length);
  const layers = countLayers(tensors.map((t) => t.name));
  const lambdaAt = (tensor: string, task: number) => {
    const def = spec.params.find((x) => x.name === 'lambda')?.default;
    return coefficientAt(p.lambda as CoefficientSetting, { tensor, task, layers }, typeof def === 'number' ? def : 0);
  };
  ctx.resetPeak();
  const state = new Map<string, GPUBuffer>(); // D (or the running max-magnitude vector for MagMax)
  const steps: StepDiagnostics[] = [];
  let normSum = 0;
  let prevLambda = 1;
  try {
    for (let step = 0; step < order.length; step++) {
      throwIfAborted(run.signal);
      const modelIndex = order[step]!;
      const taus = await loadTaskVectors(ctx, run, tensors, models[modelIndex]!, (tensor) => run.onProgress?.({ step, steps: order.length, tensor }));
      try {
        const taskVectorNorm = Math.sqrt(await normSq(ctx, tensors, (name) => taus.get(name)!));
        normSum += taskVectorNorm;
        const meanNorm = normSum / (step + 1);
        if (step === 0) for (const t of tensors) state.set(t.name, ctx.createBuffer(`merged ${t.name}`, t.numel * 4, storage()));
        let lambda: number | null = null;
        let unscaledNorm: number | null = null;
        const stepLayers: LayerDiagnostics[] = [];
        switch (spec.id) {
          case 'opcm': {
            const opts = { alpha: p.alpha as number, zeroDiagonal: p.zero_diagonal as boolean };
            const projects = (t: AlignedTensor) => step > 0 && !(p.class_embedding === 'keep-first' && isClassEmbedding(t.name));
            const linear = new Set(tensors.filter((t) => projects(t) && isLinearWeight(t.name, t.shape)));
            const items = [...linear].map((t) => ({ name: t.name, m: t.shape[0]!, n: t.shape[1]!, delta: state.get(t.name)! }));
            const svds = new SvdBatches(ctx, items, { maxBytes: run.svdBatchBytes ?? DEFAULT_SVD_BATCH_BYTES, onHost: (run.svd ?? (ctx.info.isSoftware ? 'host' : 'gpu')) === 'host', signal: run.signal });
            let sq = 0;
            try {
              for (const t of tensors) {
                // A step of a large model on a CPU-emulated adapter takes minutes: stop between its weights.
                throwIfAborted(run.signal);
                const d = state.get(t.name)!;
                const tau = taus.get(t.name)!;
                if (step === 0) copy(ctx, tau, d, t.numel);
                else if (linear.has(t)) {
                  const [rows, cols] = t.shape as [number, number];
                  const factors = await svds.factors(t.name);
                  const projected = ctx.createBuffer(`projected ${t.name}`, t.numel * 4, storage());
                  try {
                    const stats = await ctx.scoped(`opcm projection ${t.name}`, () => projectOnFactors(ctx, factors, tau, rows, cols, { ...opts, label: t.name }, projected));
                    stepLayers.push({ tensor: t.name, rows, cols, ...stats });
                    scaleAdd(ctx, d, prevLambda, 1, projected, t.numel);
                  } finally {
                    ctx.destroyBuffer(projected);
                    svds.release(t.name);
                  }
                } else if (projects(t)) scaleAdd(ctx, d, prevLambda, 1, tau, t.numel);
              }
              sq = await normSq(ctx, tensors, (name) => state.get(name)!);
            } finally {
              svds.destroy();
            }
            if (step === 0) {
              lambda = 1;
              unscaledNorm = meanNorm;
            } else {
              const s = Math.sqrt(sq);
              const factor = s > 0 ? meanNorm / s : 0;
              for (const t of tensors) scaleAdd(ctx, state.get(t.name)!, factor, 0, state.get(t.name)!, t.numel);
              lambda = s > 0 ? s / meanNorm : 0;
              unscaledNorm = s;
              prevLambda = lambda;
            }
            break;
          }
          case 'continual_task_arithmetic':
            for (const t of tensors) scaleAdd(ctx, state.get(t.name)!, step === 0 ? 0 : 1, lambdaAt(t.name, modelIndex), taus.get(t.name)!, t.numel);
            break;
          case 'continual_average':
            for (const t of tensors) scaleAdd(ctx, state.get(t.name)!, step / (step + 1), 1 / (step + 1), taus.get(t.name)!, t.numel);
            break;
          case 'continual_magmax':
            for (const t of tensors) {
              if (step === 0) copy(ctx, taus.get(t.name)!, state.get(t.name)!, t.numel);
              else await magmaxInto(ctx, state.get(t.name)!, taus.get(t.name)!, t.numel);
            }
            break;
          case 'continual_ties':
            if (step === 0) for (const t of tensors) scaleAdd(ctx, state.get(t.name)!, 0, lambdaAt(t.name, modelIndex), taus.get(t.name)!, t.numel);
            else await tiesStep(ctx, tensors, state, taus, { k: p.k as number, merge: p.merge as DisjointMerge }, (name) => lambdaAt(name, modelIndex));
            break;
          default:
            throw new ConfigError('method', `no continual GPU implementation for '${spec.id}'`);
        }
        const view = await deltaView(ctx, spec.id, tensors, state, p.lambda as number);
        try {
          const mergedSq = await normSq(ctx, tensors, view.delta);
          const diagnostics: StepDiagnostics = { step, modelIndex, taskVectorNorm, meanNorm, mergedNorm: Math.sqrt(mergedSq), lambda, unscaledNorm, sqrtT: Math.sqrt(step + 1), layers: stepLayers };
          steps.push(diagnostics);
          await run.onStep?.({ diagnostics, tensors, delta: view.delta });
          const sink = await run.saveStep?.(step);
          if (sink) await writeModel(ctx, run, aligned, view.delta, sink);
        } finally {
          view.release();
        }
      } finally {
        for (const b of taus.values()) ctx.destroyBuffer(b);
      }
    }
    let output: ContinualReport['output'] = null;
    if (run.output) {
      const view = await deltaView(ctx, spec.id, tensors, state, p.lambda as number);
      try {
        const sink = await run.output();
        output = { file: sink.name, bytes: await writeModel(ctx, run, aligned, view.delta, sink) };
      } finally {
        view.release();
      }
    }
    return {
      format: CONTINUAL_REPORT_FORMAT,
      config: configToJson(config),
      base: base.name,
      models: models.map((m) => m.name),
      order,
      steps,
      backend: `webgpu: ${ctx.info.adapter}`,
      elapsedMs: Date.now() - started,
      peakGpuBytes: ctx.peakBytes,
      output,
    };
  } finally {
    for (const b of state.values()) ctx.destroyBuffer(b);
  }
}

function copy(ctx: GpuContext, src: GPUBuffer, dst: GPUBuffer, floats: number): void {
  const encoder = ctx.device.createCommandEncoder({ label: `copy ${src.label}` });
  encoder.copyBufferToBuffer(src, 0, dst, 0, floats * 4);
  ctx.device.queue.submit([encoder.finish()]);
}

/** The incoming model's task vectors, one f32 GPU buffer per tensor (held for the step only). */
async function loadTaskVectors(ctx: GpuContext, run: ContinualRun, tensors: AlignedTensor[], model: Model, onTensor: (name: string) => void): Promise<Map<string, GPUBuffer>> {
  const out = new Map<string, GPUBuffer>();
  try {
    for (const t of tensors) {
      throwIfAborted(run.signal);
      onTensor(t.name);
      const base = ctx.createBuffer(`theta0 ${t.name}`, t.numel * 4, storage());
      // Every buffer made here is freed on any failure (an allocation that does not fit included).
      const scratch: GPUBuffer[] = [];
      try {
        const tau = ctx.createBuffer(`tau ${t.name}`, t.numel * 4, storage());
        out.set(t.name, tau);
        const rawBase = gpuRaw(await run.base.readTensor(t.name, undefined, run.signal), t.dtype);
        const baseBuf = uploadRaw(ctx, `${t.name}: base bytes`, rawBase.bytes);
        scratch.push(baseBuf);
        unpack(ctx, baseBuf, rawBase.dtype, t.numel, base);
        const raw = gpuRaw(await model.readTensor(t.name, undefined, run.signal), model.tensors.get(t.name)!.info.dtype);
        const rawBuf = uploadRaw(ctx, `${t.name}: model bytes`, raw.bytes);
        scratch.push(rawBuf);
        await ctx.scoped(`task vector ${t.name}`, () => taskVector(ctx, rawBuf, raw.dtype, base, t.numel, tau, 0));
      } finally {
        ctx.destroyBuffer(base);
        for (const b of scratch) ctx.destroyBuffer(b);
      }
    }
  } catch (e) {
    for (const b of out.values()) ctx.destroyBuffer(b);
    throw e;
  }
  return out;
}

/** Running max-magnitude vector: max <- (|tau| >= |max| ? tau : max), the newer model winning ties. */
async function magmaxInto(ctx: GpuContext, max: GPUBuffer, tau: GPUBuffer, numel: number): Promise<void> {
  const stack = ctx.createBuffer('magmax stack', 2 * numel * 4, storage());
  try {
    const encoder = ctx.device.createCommandEncoder({ label: 'magmax stack' });
    encoder.copyBufferToBuffer(max, 0, stack, 0, numel * 4);
    encoder.copyBufferToBuffer(tau, 0, stack, numel * 4, numel * 4);
    ctx.device.queue.submit([encoder.finish()]);
    magmaxSelect(ctx, stack, 2, numel);
    combine(ctx, stack, 2, numel, new Float32Array([1, 1]), max);
  } finally {
    ctx.destroyBuffer(stack);
  }
}

/**
 * Continual TIES (methods.md 2): tau^ = TIES([D, tau]) with the global top-k trim over the whole model per row,
 * majority sign fill and disjoint merge; then D <- D + lambda * tau^.
 */
async function tiesStep(
  ctx: GpuContext,
  tensors: AlignedTensor[],
  state: Map<string, GPUBuffer>,
  taus: Map<string, GPUBuffer>,
  s: { k: number; merge: DisjointMerge },
  lambdaAt: (tensor: string) => number,
): Promise<void> {
  const total = tensors.reduce((n, t) => n + t.numel, 0);
  const rank = Math.trunc(total * s.k);
  const withPair = async (f: (t: AlignedTensor, pair: GPUBuffer) => Promise<void> | void) => {
    for (const t of tensors) {
      const pair = ctx.createBuffer(`ties pair ${t.name}`, 2 * t.numel * 4, storage());
      try {
        const encoder = ctx.device.createCommandEncoder({ label: 'ties pair' });
        encoder.copyBufferToBuffer(state.get(t.name)!, 0, pair, 0, t.numel * 4);
        encoder.copyBufferToBuffer(taus.get(t.name)!, 0, pair, t.numel * 4, t.numel * 4);
        ctx.device.queue.submit([encoder.finish()]);
        await f(t, pair);
      } finally {
        ctx.destroyBuffer(pair);
      }
    }
  };
  const thresholds = new Uint32Array(2);
  if (rank < total) {
    const sel = new MagnitudeSelect(ctx, { label: 'continual ties', segments: 2, ranks: [[rank], [rank]] });
    try {
      while (!sel.done) {
        sel.beginPass();
        await withPair((t, pair) => sel.feed(pair, 2, t.numel, [0, 1]));
        await sel.endPass();
      }
      sel.results().forEach((r, i) => (thresholds[i] = r.bits[0]!));
    } finally {
      sel.destroy();
    }
  }
  let signs = 0;
  await withPair(async (t, pair) => {
    trimMask(ctx, pair, 2, t.numel, thresholds);
    signs += await signSum(ctx, pair, 2, t.numel);
  });
  const majority = Math.sign(signs) as -1 | 0 | 1;
  const merged = new Map<string, GPUBuffer>();
  try {
    await withPair((t, pair) => {
      trimMask(ctx, pair, 2, t.numel, thresholds);
      disjointMerge(ctx, pair, 2, t.numel, s.merge, { rule: 'majority', majority });
      const out = ctx.createBuffer(`ties merged ${t.name}`, t.numel * 4, storage());
      merged.set(t.name, out);
      combine(ctx, pair, 2, t.numel, new Float32Array([1, 1]), out);
    });
    for (const t of tensors) scaleAdd(ctx, state.get(t.name)!, 1, lambdaAt(t.name), merged.get(t.name)!, t.numel);
  } finally {
    for (const b of merged.values()) ctx.destroyBuffer(b);
  }
}

/** D per tensor: the state itself, or lambda * (running max) for MagMax (materialised for the view's lifetime). */
async function deltaView(ctx: GpuContext, methodId: string, tensors: AlignedTensor[], state: Map<string, GPUBuffer>, lambda: number): Promise<{ delta(name: string): GPUBuffer; release(): void }> {
  if (methodId !== 'continual_magmax') return { delta: (name) => state.get(name)!, release: () => {} };
  const scaled = new Map<string, GPUBuffer>();
  for (const t of tensors) {
    const b = ctx.createBuffer(`magmax delta ${t.name}`, t.numel * 4, storage());
    scaleAdd(ctx, b, 0, lambda, state.get(t.name)!, t.numel);
    scaled.set(t.name, b);
  }
  return { delta: (name) => scaled.get(name)!, release: () => scaled.forEach((b) => ctx.destroyBuffer(b)) };
}

/** Writes theta0 + D (merged tensors) and the base's other tensors to `sink`; returns the file size. */
async function writeModel(ctx: GpuContext, run: ContinualRun, aligned: AlignedTensor[], delta: (name: string) => GPUBuffer, sink: ByteSink): Promise<number> {
  const specs = outputSpecs(aligned, run.config);
  const writer = await SafetensorsWriter.create(sink, specs, mergeMetadata(run, null));
  try {
    for (let i = 0; i < aligned.length; i++) {
      const t = aligned[i]!;
      const bytes = await run.base.readTensor(t.name, undefined, run.signal);
      if (t.action !== 'merge') {
        await writer.write(t.name, bytes);
        continue;
      }
      const outDtype = specs[i]!.dtype;
      const packDtype: RawDType = outDtype === 'F16' || outDtype === 'BF16' ? outDtype : 'F32';
      const per = packDtype === 'F32' ? 4 : 2;
      const raw = gpuRaw(bytes, t.dtype);
      const made: GPUBuffer[] = [];
      try {
        const rawBuf = uploadRaw(ctx, `${t.name}: base bytes`, raw.bytes);
        made.push(rawBuf);
        const base = ctx.createBuffer(`theta0 ${t.name}`, t.numel * 4, storage());
        made.push(base);
        const packed = ctx.createBuffer(`packed ${t.name}`, t.numel * 4, storage());
        made.push(packed);
        unpack(ctx, rawBuf, raw.dtype, t.numel, base);
        packAdd(ctx, base, delta(t.name), t.numel, packDtype, packed);
        const out = (await readBuffer(ctx, packed, Math.ceil((t.numel * per) / 4) * 4)).subarray(0, t.numel * per);
        await writer.write(t.name, outDtype === 'F64' ? encodeFloats(decodeToF32(out, 'F32'), 'F64') : out);
      } finally {
        for (const b of made) ctx.destroyBuffer(b);
      }
    }
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  return writer.totalBytes;
}

