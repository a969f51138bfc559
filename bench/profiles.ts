/**
 * What the suite runs, per machine: the sizes, model counts, repetitions and time budget. `swiftshader` fits the
 * 2-core CI machine (whole suite under 10 minutes, CPU-emulated GPU): the acceptance merges on a reduced-depth,
 * half-width ViT-B/32 and the method matrix on a tiny one. `gpu` runs everything at full ViT-B/32 size for a real GPU
 * (one device call). `full-size` measures only the two acceptance merges at full ViT-B/32 size on SwiftShader, 5 times
 * each plus 5 copy/TA/TIES triples (about 6 minutes on the 2-core machine, whose speed drifts by tens of percent
 * within minutes: 5 pairs make the median ratio steadier than 3). `smoke` is the tests' one-minute end-to-end run. The OPCM step
 * runs at width/4 on SwiftShader (with the GPU's Jacobi an SVD of 768 x 768 takes minutes there; the default profile times
 * it both ways), at full size with the host's SVDs in `full-size-opcm`, and at full size on a GPU.
 */
import type { BenchDType } from './models';
import type { ProbeSettings } from './probes';
import type { Repeats } from './stats';
import { scaledVit, VIT_B32, type VitSize } from './vitShapes';

/** One profile of the suite. */
export interface Profile {
  name: string;
  /** No new workload starts after this many ms of the run; what is left is listed as skipped. */
  budgetMs: number;
  probes: { copyBytes: number; transferBytes: number; matmulN: number; settings: ProbeSettings; matmulSettings: ProbeSettings };
  /** One untimed run of every method on this size before anything is timed (compiles every pipeline). */
  warmupSize: VitSize;
  /** Task Arithmetic and global TIES on `tasks` f32 models: the acceptance figures, and the time breakdown. */
  acceptance: { size: VitSize; tasks: number; repeats: Repeats; breakdownRepeats: Repeats | null };
  /** Every batch method at its defaults, for each dtype and model count (`repeatsAt` overrides `repeats` per count). */
  matrix: { size: VitSize; tasks: number[]; dtypes: BenchDType[]; repeats: Repeats; repeatsAt?: Record<number, Repeats> };
  /** The same merges with the interference metrics on (f32, matrix size). */
  metricsCost: { tasks: number; methods: string[] };
  /**
   * The float64 CPU twins: every method at the matrix size (or only `methods`), plus Task Arithmetic and TIES at the
   * acceptance size.
   */
  reference: { tasks: number; repeats: Repeats; acceptance: boolean; methods?: string[] };
  torch: { device: 'cpu' | 'cuda' | 'auto'; repeats: Repeats };
  /**
   * One OPCM step (bench/opcmRun.ts) per entry: GPU repetitions, whether the float64 twin runs too (PyTorch always),
   * and whether the step is timed a second time with the SVDs placed the other way (on a GPU: one at a time; on a
   * CPU-emulated adapter: the GPU's Jacobi instead of the host's SVDs; default true).
   */
  opcm: { size: VitSize; repeats: Repeats; twin: boolean; otherSvd?: boolean }[];
  /**
   * Evaluation throughput (bench/evalRun.ts): the demo suite's base on `demoSamples` images per task, the twin on the
   * first `demoTwinImages` of each; a random `vit` model on `vitImages` images, the twin on `vitTwinImages`.
   */
  evaluation: { batch: number; repeats: Repeats; demoSamples: number; demoTwinImages: number; vit: VitSize; vitImages: number; vitTwinImages: number } | null;
}

const MINUTE = 60_000;

export const PROFILES: Record<string, Profile> = {
  swiftshader: {
    name: 'swiftshader',
    budgetMs: 8 * MINUTE,
    probes: {
      copyBytes: 64 * 2 ** 20,
      transferBytes: 16 * 2 ** 20,
      matmulN: 1024,
      settings: { minBatchMs: 300, reps: 3 },
      matmulSettings: { minBatchMs: 0, reps: 3 },
    },
    warmupSize: scaledVit(64, 1),
    acceptance: { size: scaledVit(2, 1), tasks: 8, repeats: { warmups: 1, reps: 5 }, breakdownRepeats: { warmups: 0, reps: 3 } },
    // 20 models: one timed run per workload (Breadcrumbs alone takes 10-35 s there), so that a shared, busy machine
    // still finishes inside 10 minutes.
    matrix: { size: scaledVit(32, 1), tasks: [8, 2, 20], dtypes: ['F32', 'BF16'], repeats: { warmups: 0, reps: 3 }, repeatsAt: { 20: { warmups: 0, reps: 1 } } },
    // Model Stock too: its Gram pass is what a kept statistic saves most of (PlanContext.memo); Breadcrumbs, whose
    // merges after the first write through linear_merge with the entries the first kept (merge/keptBits.ts).
    metricsCost: { tasks: 8, methods: ['task_arithmetic', 'ties', 'model_stock', 'breadcrumbs'] },
    reference: { tasks: 8, repeats: { warmups: 1, reps: 3 }, acceptance: true },
    torch: { device: 'cpu', repeats: { warmups: 1, reps: 3 } },
    // A 768 x 768 SVD takes minutes on SwiftShader: the step runs at width/4 (192 x 192, 768 x 192, 192 x 768).
    opcm: [{ size: scaledVit(4, 1), repeats: { warmups: 0, reps: 3 }, twin: true }],
    evaluation: { batch: 32, repeats: { warmups: 0, reps: 3 }, demoSamples: 16, demoTwinImages: 16, vit: VIT_B32, vitImages: 2, vitTwinImages: 1 },
  },
  gpu: {
    name: 'gpu',
    // With the machine's start, one device call has about 8 minutes: 5 of starts, the last workload's overrun after it.
    budgetMs: 5 * MINUTE,
    probes: {
      copyBytes: 1024 * 2 ** 20,
      transferBytes: 16 * 2 ** 20,
      matmulN: 4096,
      settings: { minBatchMs: 200, reps: 5 },
      matmulSettings: { minBatchMs: 200, reps: 5 },
    },
    warmupSize: scaledVit(64, 1),
    acceptance: { size: VIT_B32, tasks: 8, repeats: { warmups: 1, reps: 3 }, breakdownRepeats: { warmups: 1, reps: 3 } },
    matrix: { size: VIT_B32, tasks: [8, 2, 20], dtypes: ['F32', 'BF16'], repeats: { warmups: 0, reps: 3 } },
    metricsCost: { tasks: 8, methods: ['task_arithmetic', 'ties'] },
    // At full size a twin runs at 0.2-6 Mparams/s on one core (TIES about 3 minutes per run on 8 models): Task
    // Arithmetic once, as the GPU-against-CPU figure; every method's twin is compared in the SwiftShader profile.
    reference: { tasks: 8, repeats: { warmups: 0, reps: 1 }, acceptance: false, methods: ['task_arithmetic'] },
    torch: { device: 'auto', repeats: { warmups: 1, reps: 3 } },
    // The float64 twin needs about a minute per 768 x 768 SVD: it is compared at width/4, the full-size step with
    // PyTorch. The warm-up's tiny OPCM run has compiled every pipeline, so no warm-up runs here.
    opcm: [
      { size: VIT_B32, repeats: { warmups: 0, reps: 3 }, twin: false },
      { size: scaledVit(4, 1), repeats: { warmups: 0, reps: 3 }, twin: true },
    ],
    evaluation: { batch: 64, repeats: { warmups: 1, reps: 3 }, demoSamples: 125, demoTwinImages: 16, vit: VIT_B32, vitImages: 128, vitTwinImages: 1 },
  },
  'full-size': {
    name: 'full-size',
    budgetMs: 40 * MINUTE,
    probes: {
      copyBytes: 64 * 2 ** 20,
      transferBytes: 16 * 2 ** 20,
      matmulN: 1024,
      settings: { minBatchMs: 300, reps: 3 },
      matmulSettings: { minBatchMs: 0, reps: 3 },
    },
    warmupSize: scaledVit(64, 1),
    acceptance: { size: VIT_B32, tasks: 8, repeats: { warmups: 0, reps: 5 }, breakdownRepeats: null },
    matrix: { size: scaledVit(32, 1), tasks: [], dtypes: [], repeats: { warmups: 0, reps: 1 } },
    metricsCost: { tasks: 8, methods: [] },
    reference: { tasks: 8, repeats: { warmups: 0, reps: 1 }, acceptance: false },
    torch: { device: 'cpu', repeats: { warmups: 1, reps: 3 } },
    opcm: [],
    evaluation: null,
  },
  smoke: {
    name: 'smoke',
    budgetMs: 3 * MINUTE,
    probes: {
      copyBytes: 4 * 2 ** 20,
      transferBytes: 2 ** 20,
      matmulN: 128,
      settings: { minBatchMs: 5, reps: 1 },
      matmulSettings: { minBatchMs: 0, reps: 1 },
    },
    warmupSize: scaledVit(64, 1),
    acceptance: { size: scaledVit(64, 1), tasks: 3, repeats: { warmups: 0, reps: 1 }, breakdownRepeats: { warmups: 0, reps: 1 } },
    matrix: { size: scaledVit(64, 1), tasks: [2, 3], dtypes: ['F32', 'BF16'], repeats: { warmups: 0, reps: 1 } },
    metricsCost: { tasks: 3, methods: ['task_arithmetic'] },
    reference: { tasks: 3, repeats: { warmups: 0, reps: 1 }, acceptance: true },
    torch: { device: 'cpu', repeats: { warmups: 0, reps: 1 } },
    opcm: [{ size: scaledVit(64, 1), repeats: { warmups: 0, reps: 1 }, twin: true }],
    evaluation: { batch: 2, repeats: { warmups: 0, reps: 1 }, demoSamples: 2, demoTwinImages: 2, vit: scaledVit(12, 1), vitImages: 2, vitTwinImages: 1 },
  },
};

// `full-size-opcm`: one OPCM step at full ViT-B/32 size on a CPU-emulated adapter, its 72 SVDs on the host (the GPU's
// Jacobi would take hours there: 134 s for one 768 x 768), against PyTorch on the CPU, one timed run each; the acceptance
// merges once at the default profile's size, as a check of the machine. About 16 minutes on the 2-core machine (the step
// 7, PyTorch's 8).
PROFILES['full-size-opcm'] = {
  ...PROFILES['full-size']!,
  name: 'full-size-opcm',
  budgetMs: 20 * MINUTE,
  acceptance: { ...PROFILES.swiftshader!.acceptance, repeats: { warmups: 1, reps: 1 }, breakdownRepeats: null },
  torch: { device: 'cpu', repeats: { warmups: 0, reps: 1 } },
  opcm: [{ size: VIT_B32, repeats: { warmups: 0, reps: 1 }, twin: false, otherSvd: false }],
};

// `gpu-merges`: the gpu profile's merges alone (probes, acceptance, method matrix, PyTorch, the Task Arithmetic twin),
// without the OPCM step and evaluation, for a second device call when the first one's merge baselines failed.
PROFILES['gpu-merges'] = { ...PROFILES.gpu!, name: 'gpu-merges', budgetMs: 4 * MINUTE, opcm: [], evaluation: null };

// `gpu-matrix`: the matrix workloads the gpu profile reaches last (2 and 20 models, f32 and bf16), for a device call of
// their own. On an H100 (2026-11-27) the gpu profile needed 5 minutes to reach the 8 x f32 matrix, which took 70 s and
// PyTorch 95 s more; 20 models cost about 2.5 times as much, hence one timed run each there.
PROFILES['gpu-matrix'] = {
  ...PROFILES.gpu!,
  name: 'gpu-matrix',
  budgetMs: 7 * MINUTE,
  acceptance: { ...PROFILES.gpu!.acceptance, repeats: { warmups: 1, reps: 1 }, breakdownRepeats: null },
  matrix: { ...PROFILES.gpu!.matrix, tasks: [2, 20], repeatsAt: { 20: { warmups: 0, reps: 1 } } },
  metricsCost: { tasks: 8, methods: [] },
  torch: { device: 'auto', repeats: { warmups: 1, reps: 1 } },
  opcm: [],
  evaluation: null,
};

// `gpu-opcm`: the full-size OPCM step alone (batched SVDs, then one SVD at a time, then PyTorch), for a short device call
// after `gpu-matrix`. The acceptance merges run once each, as a check that the machine matches the other calls.
PROFILES['gpu-opcm'] = {
  ...PROFILES.gpu!,
  name: 'gpu-opcm',
  budgetMs: 2 * MINUTE,
  acceptance: { ...PROFILES.gpu!.acceptance, repeats: { warmups: 1, reps: 1 }, breakdownRepeats: null },
  matrix: { ...PROFILES.gpu!.matrix, tasks: [], dtypes: [] },
  metricsCost: { tasks: 8, methods: [] },
  torch: { device: 'auto', repeats: { warmups: 1, reps: 1 } },
  opcm: [{ size: VIT_B32, repeats: { warmups: 0, reps: 1 }, twin: false }],
  evaluation: null,
};

// `gpu-stack`: a call after changes to the task-vector stack's path: evaluation throughput, then the method matrix on
// 2 and 20 f32 models (with PyTorch) and, on 2 models, Task Arithmetic and TIES with the interference metrics on (the
// playground's merges: they always take the stack path). The acceptance merges run once each, as a machine check.
PROFILES['gpu-stack'] = {
  ...PROFILES.gpu!,
  name: 'gpu-stack',
  budgetMs: 7 * MINUTE,
  acceptance: { ...PROFILES.gpu!.acceptance, repeats: { warmups: 1, reps: 1 }, breakdownRepeats: null },
  matrix: { ...PROFILES.gpu!.matrix, tasks: [2, 20], dtypes: ['F32'], repeatsAt: { 20: { warmups: 0, reps: 1 } } },
  metricsCost: { tasks: 2, methods: ['task_arithmetic', 'ties'] },
  torch: { device: 'auto', repeats: { warmups: 1, reps: 1 } },
  opcm: [],
};

/** The repetitions of the matrix merges of `tasks` models. */
export function matrixRepeats(p: Profile, tasks: number): Repeats {
  return p.matrix.repeatsAt?.[tasks] ?? p.matrix.repeats;
}

/** The profile named `name`, or an error listing the names there are. */
export function profileNamed(name: string): Profile {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown profile ${JSON.stringify(name)} (profiles: ${Object.keys(PROFILES).join(', ')})`);
  return p;
}
