/**
 * Sequential driver of the continual merging methods in float64 (methods.md 1-2): OPCM, continual Task Arithmetic,
 * continual TIES, continual weight average and MagMax. Models are folded in one at a time, in the resolved order;
 * between steps the driver holds only the base, the merged state (one model) and a few scalars (the running sum of
 * task-vector norms, OPCM's prev_lambda), never an earlier task vector. Each step builds a new merged model instead
 * of editing the old one, so what onStep receives may be kept.
 *
 * Order: `order` is "given", "shuffle" or a permutation of model indices. "shuffle" is a Fisher-Yates shuffle whose
 * swap partner at position i (from the end down to 1) is rngU32(rngKey(seed, 0, stringId('order')), i) mod (i + 1)
 * (shuffledOrder), so a seed names the same order on every platform.
 */
import { AlignmentError, ConfigError } from '../errors';
import { continualAverage } from '../methods/continualAverage';
import { continualMagmax } from '../methods/continualMagmax';
import { continualTaskArithmetic } from '../methods/continualTaskArithmetic';
import { continualTies } from '../methods/continualTies';
import { opcm } from '../methods/opcm';
import { resolveParams, type MethodSpec, type ParamValues } from '../methods/params';
import { checkModelCount } from '../methods/registry';
import type { CoefficientSetting } from '../methods/scaling';
import { resolveOrder } from '../methods/order';
import { opcmStep, type LayerDiagnostics, type OpcmOptions } from './opcm';
import { coefficientFn, sumContributions, type CoefficientFn } from './methods/contributions';
import type { DisjointMerge } from './methods/signElect';
import { tiesContributions } from './methods/ties';
import { mapModel, refTaskVectors, sortedNames, type RefModel } from './refModel';

/** What one step measured (norms are global L2 over all tensors). */
export interface StepDiagnostics {
  /** 0-based position in the merge order (t = step + 1 models merged so far). */
  step: number;
  /** Index of the incoming model in the input list. */
  modelIndex: number;
  /** ||theta_t - theta0|| of the incoming model. */
  taskVectorNorm: number;
  /** N-bar: mean task-vector norm of the models merged so far, this one included. */
  meanNorm: number;
  /** ||M - theta0|| after the step (equals meanNorm for OPCM). */
  mergedNorm: number;
  /** OPCM's lambda_t = ||R_t|| / N-bar (1 at the first step); null for the baselines. */
  lambda: number | null;
  /** OPCM's ||R_t||, the merged task vector's norm before the rescale; null for the baselines. */
  unscaledNorm: number | null;
  /** sqrt(t): lambda_t for mutually orthogonal, equal-norm task vectors. */
  sqrtT: number;
  /** OPCM: one entry per projected Linear weight (empty at the first step, which projects nothing). */
  layers: LayerDiagnostics[];
}

/** What onStep receives after each step. */
export interface ContinualStep {
  index: number;
  modelIndex: number;
  merged: RefModel;
  diagnostics: StepDiagnostics;
}

/** The final merged model, every step's diagnostics and the order that was used. */
export interface ContinualResult {
  merged: RefModel;
  steps: StepDiagnostics[];
  order: number[];
}

const CONTINUAL_METHODS: readonly MethodSpec[] = [opcm, continualTaskArithmetic, continualTies, continualAverage, continualMagmax];

/** Runs a continual method over `models` (all aligned with `base`) and returns the final model and per-step diagnostics. */
export function runContinualReference(
  methodId: string,
  params: Record<string, unknown>,
  base: RefModel,
  models: RefModel[],
  onStep?: (step: ContinualStep) => void,
): ContinualResult {
  const spec = CONTINUAL_METHODS.find((m) => m.id === methodId);
  if (!spec) throw new ConfigError('method', `not a continual method: ${JSON.stringify(methodId)} (allowed: ${CONTINUAL_METHODS.map((m) => m.id).join(', ')})`);
  const values = resolveParams(spec, params);
  checkModelCount(spec, models.length);
  models.forEach((m, i) => checkAligned(base, m, i));
  const order = resolveOrder(values.order ?? 'given', (values.seed as number | undefined) ?? 0, models.length);
  const merger = makeMerger(spec, values, base);
  const steps: StepDiagnostics[] = [];
  let normSum = 0;
  let merged = base;
  order.forEach((modelIndex, step) => {
    const model = models[modelIndex]!;
    const taskVectorNorm = distance(model, base);
    normSum += taskVectorNorm;
    const meanNorm = normSum / (step + 1);
    const { lambda, unscaledNorm, layers } = merger.add(model, modelIndex, step, meanNorm);
    merged = merger.merged();
    const diagnostics = { step, modelIndex, taskVectorNorm, meanNorm, mergedNorm: distance(merged, base), lambda, unscaledNorm, sqrtT: Math.sqrt(step + 1), layers };
    steps.push(diagnostics);
    onStep?.({ index: step, modelIndex, merged, diagnostics });
  });
  return { merged, steps, order };
}

/** One continual method's state: `add` folds one model in, `merged` is the current merged model. */
interface Merger {
  add(model: RefModel, modelIndex: number, step: number, meanNorm: number): Pick<StepDiagnostics, 'lambda' | 'unscaledNorm' | 'layers'>;
  merged(): RefModel;
}

const baseline = () => ({ lambda: null, unscaledNorm: null, layers: [] });

function makeMerger(spec: MethodSpec, values: ParamValues, base: RefModel): Merger {
  let merged: RefModel = base; // never edited in place: every step builds a new model
  switch (spec.id) {
    case 'opcm': {
      const opts: OpcmOptions = { alpha: values.alpha as number, zeroDiagonal: values.zero_diagonal as boolean, classEmbedding: values.class_embedding as OpcmOptions['classEmbedding'] };
      let prevLambda = 1;
      return {
        add(model, _index, step, meanNorm) {
          if (step === 0) {
            merged = mapModel(model, (_, x) => x.slice()); // M starts as the first model itself, not theta0
            return { lambda: 1, unscaledNorm: meanNorm, layers: [] };
          }
          const r = opcmStep(base, merged, model, prevLambda, meanNorm, opts);
          merged = r.merged;
          prevLambda = r.lambda;
          return { lambda: r.lambda, unscaledNorm: r.unscaledNorm, layers: r.layers };
        },
        merged: () => merged,
      };
    }
    case 'continual_task_arithmetic': {
      const lambdaAt = lambdaOf(spec, values, base);
      return {
        add(model, index) {
          merged = mapModel(merged, (name, m) => {
            const [b, t, lambda] = [base.get(name)!.data, model.get(name)!.data, lambdaAt(name, index)];
            return m.map((x, i) => x + lambda * (t[i]! - b[i]!));
          });
          return baseline();
        },
        merged: () => merged,
      };
    }
    case 'continual_ties': {
      const lambdaAt = lambdaOf(spec, values, base);
      return {
        add(model, index, step) {
          const tau = refTaskVectors(base, [model])[0]!;
          // The first model is added untrimmed; later ones are TIES-merged (global trim) with the merged task vector
          // Delta, and the result is added on top of M, which already holds Delta, as the official code does.
          const ties = { k: values.k as number, merge: values.merge as DisjointMerge, scope: 'global' as const };
          const delta = () => mapModel(merged, (name, m) => m.map((x, i) => x - base.get(name)!.data[i]!));
          const update = step === 0 ? tau : sumContributions(base, tiesContributions([delta(), tau], ties));
          merged = mapModel(merged, (name, m) => {
            const [u, lambda] = [update.get(name)!.data, lambdaAt(name, index)];
            return m.map((x, i) => x + lambda * u[i]!);
          });
          return baseline();
        },
        merged: () => merged,
      };
    }
    case 'continual_average':
      return {
        add(model, _index, step) {
          // M_0 = the first model; then M <- (k M + theta_k) / (k + 1) at 0-based step k.
          merged = mapModel(merged, (name, m) => {
            const t = model.get(name)!.data;
            return step === 0 ? t.slice() : m.map((x, i) => (step * x + t[i]!) / (step + 1));
          });
          return baseline();
        },
        merged: () => merged,
      };
    case 'continual_magmax': {
      // The carried state is tau_max (one model's worth) rather than M = theta0 + lambda tau_max, so lambda = 0 loses nothing.
      let tauMax: RefModel = mapModel(base, (_, b) => new Float64Array(b.length));
      const lambda = values.lambda as number;
      return {
        add(model) {
          tauMax = mapModel(tauMax, (name, cur) => {
            const [b, t] = [base.get(name)!.data, model.get(name)!.data];
            return cur.map((x, i) => {
              const tau = t[i]! - b[i]!;
              return Math.abs(tau) >= Math.abs(x) ? tau : x; // ">=": ties go to the newer model
            });
          });
          return baseline();
        },
        // Built on demand, so between steps only tau_max is held.
        merged: () => mapModel(base, (name, b) => {
          const d = tauMax.get(name)!.data;
          return b.map((x, i) => x + lambda * d[i]!);
        }),
      };
    }
    default:
      throw new ConfigError('method', `no continual reference for ${spec.id}`);
  }
}

/** lambda(tensor, task index) of a coefficient parameter; rules that match nothing fall back to the parameter's default. */
function lambdaOf(spec: MethodSpec, values: ParamValues, base: RefModel): CoefficientFn {
  const fallback = spec.params.find((p) => p.name === 'lambda')?.default;
  return coefficientFn(values.lambda as CoefficientSetting, base, fallback as number);
}

/** ||a - b|| over all tensors, summed in sorted-name order. */
function distance(a: RefModel, b: RefModel): number {
  let sq = 0;
  for (const name of sortedNames(b)) {
    const [x, y] = [a.get(name)!.data, b.get(name)!.data];
    for (let i = 0; i < y.length; i++) sq += (x[i]! - y[i]!) ** 2;
  }
  return Math.sqrt(sq);
}

/** Throws AlignmentError naming the tensor when model `index` does not have exactly the base's tensors and shapes. */
function checkAligned(base: RefModel, model: RefModel, index: number): void {
  for (const [name, b] of base) {
    const t = model.get(name);
    if (!t) throw new AlignmentError(name, `model ${index} has no tensor ${name}`);
    if (t.shape.join(',') !== b.shape.join(',') || t.data.length !== b.data.length) {
      throw new AlignmentError(name, `model ${index}: tensor ${name} has shape [${t.shape}], the base has [${b.shape}]`);
    }
  }
  for (const name of model.keys()) if (!base.has(name)) throw new AlignmentError(name, `model ${index} has tensor ${name}, which the base model lacks`);
}
