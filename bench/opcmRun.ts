/**
 * One OPCM step on random ViT-shaped weights (issue 4's benchmark): the second step (t = 2), the first that takes an
 * SVD of the merged task vector and projects the incoming task vector for every Linear weight.
 *
 * GPU: runContinual (opcm, defaults) over a base and 2 fine-tuned models from bench/models.ts. The step is timed from
 * the return of the first step's onStep callback to the call of the second's: it reads and uploads the incoming
 * model and the base, forms the task vectors and their norm, runs svdGpu and the projection of every Linear weight,
 * adds the other tensors, rescales, and takes the merged norm (runContinual's own diagnostics).
 * CPU twin: opcmStep (float64) from M = the first model, as runContinualReference's second step, with the mean norm
 * given (about 12 s at width/4 on the 2-core machine; an SVD of 768 x 768 alone takes about a minute in float64).
 * PyTorch: bench/torch_opcm.py, the same step with torch.linalg.svd as FusionBench runs it.
 */
import type { GpuContext } from '../src/engine/gpu/device';
import { resolveConfig } from '../src/engine/merge/config';
import { runContinual } from '../src/engine/merge/continual';
import { svdMultiplyAdds } from '../src/engine/gpu/svd';
import { isLinearWeight } from '../src/engine/reference/linearWeights';
import { opcmStep, type LayerDiagnostics, type OpcmOptions } from '../src/engine/reference/opcm';
import type { RefModel } from '../src/engine/reference/refModel';
import { runPython, toRefModel } from './baselines';
import { sizeInfo } from './engineRun';
import type { BenchModels } from './models';
import type { OpcmFigure, OpcmTorchFigure, OpcmTwinFigure } from './results';
import { median, timeIt, type Repeats, type Timing } from './stats';
import { vitTensors, type ShapedTensor, type VitSize } from './vitShapes';

/** The method's defaults (src/engine/methods/opcm.ts), as the twin takes them. */
const TWIN_OPTIONS: OpcmOptions = { alpha: 0.5, zeroDiagonal: true, classEmbedding: 'merge' };

/** The Linear weights of a tensor list grouped by shape, in order of first appearance. */
export function linearShapes(tensors: readonly ShapedTensor[]): OpcmFigure['linearWeights'] {
  const out: OpcmFigure['linearWeights'] = [];
  for (const t of tensors) {
    if (!isLinearWeight(t.name, t.shape)) continue;
    const [rows, cols] = t.shape as [number, number];
    const same = out.find((s) => s.rows === rows && s.cols === cols);
    if (same) same.count++;
    else out.push({ rows, cols, count: 1 });
  }
  return out;
}

/**
 * Multiply-adds of one OPCM step's Linear weights, at most: each weight's SVD (svdMultiplyAdds, from the sweeps it
 * took) and the projection's four products (U^T tau, times V, Q V^T, U times that: 2 k m n + 2 k^2 n for an m x n
 * weight, k = min(m, n)). The other tensors' elementwise work is left out.
 */
export function stepMultiplyAdds(layers: readonly Pick<LayerDiagnostics, 'rows' | 'cols' | 'svdSweeps'>[]): number | null {
  let total = 0;
  for (const l of layers) {
    if (l.svdSweeps === undefined) return null;
    const k = Math.min(l.rows, l.cols);
    total += svdMultiplyAdds(l.rows, l.cols, l.svdSweeps) + 2 * k * l.rows * l.cols + 2 * k * k * l.cols;
  }
  return total;
}

/**
 * Times the GPU step `repeats` times (each a fresh runContinual over the 2 models), its SVDs on `svd` (the GPU's
 * Jacobi with same-shape SVDs batched in `svdBatchBytes`, gpu/opcmBatch.ts; or the host's Gram eigendecomposition).
 */
export async function timeOpcmGpu(ctx: GpuContext, m: BenchModels, repeats: Repeats, svdBatchBytes: number, svd: 'gpu' | 'host'): Promise<OpcmFigure['gpu'] & { svdBatchBytes: number }> {
  if (m.models.length !== 2) throw new Error(`timeOpcmGpu: needs 2 fine-tuned models, got ${m.models.length}`);
  const config = resolveConfig({ method: 'opcm' });
  let projected = 0;
  let peakGpuBytes = 0;
  let layers: LayerDiagnostics[] = [];
  const once = async (): Promise<number> => {
    let firstDone = 0;
    let stepMs = NaN;
    const report = await runContinual(ctx, {
      base: m.base,
      models: m.models,
      config,
      svdBatchBytes,
      svd,
      onStep: (view) => {
        if (view.diagnostics.step === 0) firstDone = performance.now();
        else {
          stepMs = performance.now() - firstDone;
          layers = view.diagnostics.layers;
          projected = layers.length;
        }
      },
    });
    peakGpuBytes = report.peakGpuBytes;
    return stepMs;
  };
  for (let i = 0; i < repeats.warmups; i++) await once();
  const runs: number[] = [];
  for (let i = 0; i < repeats.reps; i++) runs.push(await once());
  const timing: Timing = { ms: median(runs), runs, warmups: repeats.warmups };
  const multiplyAdds = stepMultiplyAdds(layers);
  return { timing, peakGpuBytes, projected, svdBatchBytes, svd, ...(multiplyAdds === null ? {} : { multiplyAdds, sweeps: layers.map((l) => l.svdSweeps!) }) };
}

/** ||a - b|| over every tensor. */
function distance(a: RefModel, b: RefModel): number {
  let sq = 0;
  for (const [name, t] of b) {
    const x = a.get(name)!.data;
    for (let i = 0; i < t.data.length; i++) sq += (x[i]! - t.data[i]!) ** 2;
  }
  return Math.sqrt(sq);
}

/** The twin's step on the same models (one run; the models are decoded to float64 before the clock starts). */
export async function timeOpcmTwin(m: BenchModels): Promise<OpcmTwinFigure> {
  const base = await toRefModel(m.base);
  const [first, incoming] = [await toRefModel(m.models[0]!), await toRefModel(m.models[1]!)];
  const meanNorm = (distance(first, base) + distance(incoming, base)) / 2;
  return { timing: await timeIt({ warmups: 0, reps: 1 }, async () => void opcmStep(base, first, incoming, 1, meanNorm, TWIN_OPTIONS)) };
}

/** Parses torch_opcm.py's output; throws unless it finished with a result. */
export function parseTorchOpcmOutput(stdout: string): OpcmTorchFigure {
  const lines = stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  if (!lines.some((l) => l.done === true)) throw new Error('torch_opcm.py did not finish (no {"done": true} line)');
  const r = lines.find((l) => typeof l.ms === 'number');
  if (!r) throw new Error('torch_opcm.py reported no result');
  return {
    ms: r.ms as number,
    runs: r.runs as number[],
    svdMs: r.svd_ms as number,
    device: r.device as string,
    torch: r.torch as string,
    threads: r.threads as number,
    peakRssBytes: r.peak_rss_bytes as number,
  };
}

/** Runs bench/torch_opcm.py on the tensors of `size`. */
export async function runTorchOpcm(python: string, script: string, size: VitSize, repeats: Repeats, device: 'cpu' | 'cuda' | 'auto'): Promise<OpcmTorchFigure> {
  const job = { tensors: vitTensors(size).map((t) => [t.name, t.shape]), seed: 1, alpha: TWIN_OPTIONS.alpha, warmups: repeats.warmups, reps: repeats.reps, device };
  return parseTorchOpcmOutput(await runPython(python, script, job));
}

/** The figure without its baselines (filled in by the suite as the budget allows). */
export function opcmFigure(size: VitSize, gpu: OpcmFigure['gpu']): OpcmFigure {
  return { size: sizeInfo(size), linearWeights: linearShapes(vitTensors(size)), gpu, twin: null, torch: null, torchError: null };
}
