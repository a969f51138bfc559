/**
 * The baselines measured in the same run as the engine: the float64 CPU reference twins (src/engine/reference), timed
 * in this process on models already decoded to float64, and PyTorch (bench/torch_merge.py), timed inside its own
 * process on state dicts it generates. Neither side's timing includes loading files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mergeReference, tallMaskModels } from '../src/engine/reference/mergeReference';
import type { RefModel } from '../src/engine/reference/refModel';
import { decodeFloats } from '../src/engine/tensor/dtype';
import type { Model } from '../src/engine/io/model';
import type { BenchDType, BenchModels } from './models';
import type { TorchFigure } from './results';
import { timeIt, type Repeats, type Timing } from './stats';
import type { ShapedTensor } from './vitShapes';

/** A whole model decoded to float64 (not timed: the twins take models in memory). */
export async function toRefModel(model: Model): Promise<RefModel> {
  const out: RefModel = new Map();
  for (const [name, t] of model.tensors) out.set(name, { shape: [...t.info.shape], data: decodeFloats(await model.readTensor(name), t.info.dtype) });
  return out;
}

/** Times the CPU reference of `method` (defaults) on `m`. */
export async function timeReference(m: BenchModels, method: string, repeats: Repeats): Promise<Timing> {
  const base = await toRefModel(m.base);
  const models = await Promise.all(m.models.map(toRefModel));
  return timeIt(repeats, async () => {
    if (method === 'tall_masks') tallMaskModels({}, base, models);
    else mergeReference(method, {}, base, models);
  });
}

/** The first interpreter that can import torch, or null (candidates in order; a missing one is skipped). */
export function findTorchPython(candidates: readonly string[]): string | null {
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return python;
  }
  return null;
}

/** One PyTorch job: the tensor list, dtype, number of models, methods, repetitions and device. */
export interface TorchJob {
  tensors: ShapedTensor[];
  sizeLabel: string;
  dtype: BenchDType;
  tasks: number;
  methods: string[];
  repeats: Repeats;
  device: 'cpu' | 'cuda' | 'auto';
}

/** Runs bench/torch_merge.py once for `job`; resolves to one figure per method. */
export async function runTorch(python: string, script: string, job: TorchJob): Promise<TorchFigure[]> {
  const input = {
    tensors: job.tensors.map((t) => [t.name, t.shape]),
    dtype: job.dtype,
    tasks: job.tasks,
    seed: 1,
    methods: job.methods,
    warmups: job.repeats.warmups,
    reps: job.repeats.reps,
    device: job.device,
  };
  return parseTorchOutput(await runPython(python, script, input), job);
}

/** Runs a Python script with one JSON job on stdin; resolves to its stdout, rejects with its last error lines. */
export function runPython(python: string, script: string, job: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(out);
      const how = signal ? `was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with ${code}`;
      reject(new Error(`${script} ${how}: ${err.trim().split('\n').slice(-3).join(' | ') || 'no error output'}`));
    });
    child.stdin.end(JSON.stringify(job));
  });
}

/** Parses torch_merge.py's JSON lines into figures; throws unless it finished and reported every method. */
export function parseTorchOutput(stdout: string, job: Pick<TorchJob, 'methods' | 'tasks' | 'dtype' | 'sizeLabel'>): TorchFigure[] {
  const lines = stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  if (!lines.some((l) => l.done === true)) throw new Error('torch_merge.py did not finish (no {"done": true} line)');
  const figures = lines
    .filter((l) => typeof l.method === 'string')
    .map((l) => ({
      method: l.method as string,
      tasks: job.tasks,
      dtype: job.dtype,
      sizeLabel: job.sizeLabel,
      ms: l.ms as number,
      runs: l.runs as number[],
      device: l.device as string,
      torch: l.torch as string,
      threads: l.threads as number,
      peakRssBytes: l.peak_rss_bytes as number,
      ...(typeof l.cuda_peak_bytes === 'number' ? { cudaPeakBytes: l.cuda_peak_bytes } : {}),
    }));
  const missing = job.methods.filter((m) => !figures.some((f) => f.method === m));
  if (missing.length) throw new Error(`torch_merge.py reported no result for ${missing.join(', ')}`);
  return figures;
}
