/**
 * The methods whose GPU plan is one kernel or one per-tensor statistic away from Task Arithmetic:
 * MagMax (elementwise max-magnitude selection), SLERP (per-tensor angle between the two raw weight vectors) and
 * Model Stock (per-tensor mean pairwise cosine of the task vectors). References: reference/methods/{magmax,slerp,modelStock}.ts.
 */
import { combine } from '../../gpu/kernels';
import { LinearMergeKernel } from '../../gpu/linearMerge';
import { magmaxSelect } from '../../gpu/mergeKernels';
import { modelStockRatioFromGram, type ModelStockAngle } from '../../reference/methods/modelStock';
import { slerpCoefficients } from '../../reference/methods/slerp';
import { RawChunkCache } from '../stream';
import { memoized, type GpuPlan, type PlanContext } from './plan';
import { tensorGrams } from './tensorGrams';
import { copyFloats } from './util';

/**
 * MagMax: without interference metrics one fused kernel per chunk (magmax_output); a tensor whose coefficients are not
 * all finite goes through the stack, where the losers' products coeff * 0 are NaN as combine makes them.
 */
export function magmaxPlan(): GpuPlan {
  return {
    granularity: 'element',
    outputs: () => 1,
    scaleParams: ['lambda'],
    fused: (p) => ({
      kernel: new LinearMergeKernel(p.ctx, 'magmax_output'),
      coeffs: (t) => {
        const c = p.coeffs('lambda', t.name);
        return c.every(Number.isFinite) ? c : null;
      },
    }),
    async emit(p, c, out) {
      magmaxSelect(p.ctx, c.stack, p.tasks, c.count);
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
  };
}

/**
 * SLERP coefficients of one tensor from the Gram matrix of [tau_a, tau_b, theta0]: the result s0 a + s1 b is written
 * as theta0 + s0 tau_a + s1 tau_b + (s0 + s1 - 1) theta0.
 */
export function slerpRowCoefficients(g: Float64Array, t: number): Float32Array {
  const at = (i: number, j: number) => g[i * 3 + j]!;
  const aa = at(0, 0) + 2 * at(0, 2) + at(2, 2);
  const bb = at(1, 1) + 2 * at(1, 2) + at(2, 2);
  const ab = at(0, 1) + at(0, 2) + at(1, 2) + at(2, 2);
  const [s0, s1] = slerpCoefficients(Math.sqrt(Math.max(aa, 0)), Math.sqrt(Math.max(bb, 0)), ab, t);
  return Float32Array.from([s0, s1, s0 + s1 - 1]);
}

/** The memo keys (PlanContext.memo) of the Gram matrices SLERP and Model Stock take from their models alone. */
const SLERP_GRAMS = 'slerp: Gram of tau_a, tau_b, theta0 per tensor';
const MODEL_STOCK_GRAMS = 'model stock: Gram of the task vectors per tensor';
const gramBytes = (grams: Map<string, Float64Array>) => [...grams].reduce((n, [name, g]) => n + 2 * name.length + g.byteLength, 0);

/**
 * Where the Gram pass leaves its raw chunks for the fused output pass (as many as the stream's cache allows, as global
 * TIES's scan does), or null when the stack path follows.
 */
const keptChunks = (p: PlanContext) => (p.fusedOutput ? new RawChunkCache(p.ctx, p.stream.options.cacheBytes) : null);

export function slerpPlan(): GpuPlan {
  let grams = new Map<string, Float64Array>();
  let coeffs: Float32Array = new Float32Array(3);
  let kept: RawChunkCache | null = null;
  return {
    granularity: 'element',
    outputs: () => 1,
    fusedWithKnownMetrics: true,
    stackFaster: (memo) => !memo?.has(SLERP_GRAMS),
    async prepare(p) {
      grams = await memoized(p, SLERP_GRAMS, () => {
        p.phase('SLERP angles');
        // With the fused output the Gram pass is the stack's last: its chunks need not stay cached, and its raw
        // chunks stay on the GPU for the output pass.
        kept = keptChunks(p);
        return tensorGrams(
          p,
          3,
          p.fusedOutput,
          (c) => {
            // A batch of small tensors may be longer than the stream's chunks.
            const rows = p.scratch('slerp rows', 3 * Math.max(c.count, p.stream.maxChunk));
            copyFloats(p.ctx, c.stack, rows, 2 * c.count);
            copyFloats(p.ctx, c.base, rows, c.count, 2 * c.count);
            return rows;
          },
          true,
          kept,
        );
      }, gramBytes);
    },
    async beginTensor(p, t) {
      coeffs = slerpRowCoefficients(grams.get(t.name)!, p.coeffs('t', t.name)[0]!);
    },
    // theta0 + s0 tau_a + s1 tau_b + (s0 + s1 - 1) theta0 is linear_merge with theta0's coefficient (BASE_TERM), the
    // bytes of combine over the 3-row buffer. Non-finite coefficients (non-finite models) stay on the stack path.
    fused: (p) => ({ kernel: new LinearMergeKernel(p.ctx), coeffs: () => (coeffs.every(Number.isFinite) ? coeffs : null), ...(kept ? { cache: kept } : {}) }),
    async emit(p, c, out) {
      const rows = p.scratch('slerp rows', 3 * p.stream.maxChunk);
      copyFloats(p.ctx, c.stack, rows, 2 * c.count);
      copyFloats(p.ctx, c.base, rows, c.count, 2 * c.count);
      combine(p.ctx, rows, 3, c.count, coeffs, out[0]!);
    },
    destroy: () => kept?.destroy(),
  };
}

/**
 * Model Stock: the ratio from a Gram pass over the tensor's task vectors, then the output theta0 + (ratio / N) sum
 * tau_i, which is Task Arithmetic's: without interference metrics linear_merge writes it from the raw inputs (the same
 * bytes as combine over the stack), so the stack is streamed once, for the Gram only.
 */
export function modelStockPlan(): GpuPlan {
  let grams = new Map<string, Float64Array>();
  let ratio = 0;
  let kept: RawChunkCache | null = null;
  const lambdas = (tasks: number) => new Float32Array(tasks).fill(ratio / tasks);
  return {
    granularity: 'element',
    outputs: () => 1,
    fusedWithKnownMetrics: true,
    stackFaster: (memo) => !memo?.has(MODEL_STOCK_GRAMS),
    async prepare(p) {
      grams = await memoized(p, MODEL_STOCK_GRAMS, () => {
        p.phase('Model Stock angles');
        // With the fused output the Gram pass is the stack's last: its chunks need not stay cached, and its raw
        // chunks stay on the GPU for the output pass.
        kept = keptChunks(p);
        return tensorGrams(p, p.tasks, p.fusedOutput, (c) => c.stack, false, kept);
      }, gramBytes);
    },
    async beginTensor(p, t) {
      ratio = modelStockRatioFromGram(grams.get(t.name)!, p.tasks, p.params.angle as ModelStockAngle);
    },
    fused: (p) => ({ kernel: new LinearMergeKernel(p.ctx), coeffs: () => (Number.isFinite(ratio) ? lambdas(p.tasks) : null), ...(kept ? { cache: kept } : {}) }),
    async emit(p, c, out) {
      // theta = t * mean(theta_i) + (1 - t) * theta0 = theta0 + (t / N) * sum tau_i.
      combine(p.ctx, c.stack, p.tasks, c.count, lambdas(p.tasks), out[0]!);
    },
    destroy: () => kept?.destroy(),
  };
}
