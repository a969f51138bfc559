/**
 * The readable float64 CPU reference ("twin") of every batch merging method: validated parameters in, merged model
 * out. The GPU path is tested against it. Each method's algorithm lives in reference/methods/<method>.ts; this file
 * only validates (parameters, model count, tensor alignment), maps parameters to settings and dispatches.
 */
import { AlignmentError, ConfigError } from '../errors';
import { breadcrumbs } from '../methods/breadcrumbs';
import { consensus } from '../methods/consensus';
import { dare } from '../methods/dare';
import { lines } from '../methods/lines';
import { magmax } from '../methods/magmax';
import { modelStock } from '../methods/modelStock';
import { resolveParams, type MethodSpec, type ParamValues } from '../methods/params';
import { checkModelCount } from '../methods/registry';
import type { CoefficientSetting } from '../methods/scaling';
import { simpleAverage } from '../methods/simpleAverage';
import { slerp } from '../methods/slerp';
import { tallMasks } from '../methods/tallMasks';
import { taskArithmetic } from '../methods/taskArithmetic';
import { ties } from '../methods/ties';
import { refTaskVectors, type RefModel } from './refModel';
import { breadcrumbsMask } from './methods/breadcrumbs';
import { consensusContributions } from './methods/consensus';
import { applyContributions, coefficientFn, type CoefficientFn } from './methods/contributions';
import { dareDrop } from './methods/dare';
import { linesRef } from './methods/lines';
import { magmaxContributions } from './methods/magmax';
import { modelStockRef, type ModelStockAngle } from './methods/modelStock';
import { simpleAverageRef } from './methods/simpleAverage';
import { slerpRef } from './methods/slerp';
import { tallMaskModelsRef } from './methods/tallMasks';
import { taskArithmeticRef } from './methods/taskArithmetic';
import { thenContributions, type ThenMethod } from './methods/then';
import { tiesContributions, type TiesSettings } from './methods/ties';
import type { DisjointMerge } from './methods/signElect';

/** Everything a method's reference needs: its spec (for coefficient fallbacks), validated values, base, task vectors. */
interface RunContext {
  spec: MethodSpec;
  p: ParamValues;
  base: RefModel;
  models: RefModel[];
  taus: () => RefModel[];
}

type Runner = (c: RunContext) => RefModel;

/** theta0 + lambda * contributions, the ending shared by the task-vector methods. */
const scaled = (c: RunContext, parts: RefModel[]) => applyContributions(c.base, parts, coef(c, 'lambda'));

const RUNNERS: ReadonlyMap<string, { spec: MethodSpec; run: Runner }> = new Map([
  [taskArithmetic.id, { spec: taskArithmetic, run: (c) => taskArithmeticRef(c.base, c.models, setting(c.p, 'lambda'), defaultOf(taskArithmetic, 'lambda')) }],
  [simpleAverage.id, { spec: simpleAverage, run: (c) => simpleAverageRef(c.base, c.models) }],
  [ties.id, { spec: ties, run: (c) => scaled(c, tiesContributions(c.taus(), tiesSettings(c.p, 'k'))) }],
  [dare.id, {
    spec: dare,
    run: (c) => {
      const settings = { p: num(c.p, 'p'), rescale: bool(c.p, 'rescale'), seed: num(c.p, 'seed'), linearOnly: bool(c.p, 'linear_only') };
      const dropped = c.taus().map((tau, t) => dareDrop(tau, t, settings));
      return scaled(c, thenContributions(str(c.p, 'then') as ThenMethod, dropped, tiesSettings(c.p, 'k')));
    },
  }],
  [breadcrumbs.id, {
    spec: breadcrumbs,
    run: (c) => {
      const settings = { density: num(c.p, 'density'), gamma: num(c.p, 'gamma'), scope: str(c.p, 'scope') as 'row' | 'tensor' };
      return scaled(c, c.taus().map((tau) => breadcrumbsMask(tau, settings)));
    },
  }],
  [consensus.id, {
    spec: consensus,
    run: (c) => scaled(c, consensusContributions(c.base, c.taus(), {
      k: num(c.p, 'k'),
      maskLambda: coef(c, 'mask_lambda'),
      then: str(c.p, 'then') as ThenMethod,
      ties: tiesSettings(c.p, 'ties_k'),
    })),
  }],
  [lines.id, {
    spec: lines,
    run: (c) => {
      const alpha = c.p.alpha === 'auto' ? 'auto' : setting(c.p, 'alpha');
      return linesRef(c.base, c.taus(), {
        alpha,
        beta: setting(c.p, 'beta'),
        then: str(c.p, 'then') as 'task_arithmetic' | 'ties' | 'consensus',
        ties: tiesSettings(c.p, 'k'),
        consensusK: num(c.p, 'consensus_k'),
        maskLambda: coef(c, 'mask_lambda'),
      }, defaultOf(lines, 'beta'));
    },
  }],
  [magmax.id, { spec: magmax, run: (c) => scaled(c, magmaxContributions(c.taus())) }],
  [slerp.id, { spec: slerp, run: (c) => slerpRef(c.base, c.models, coef(c, 't')) }],
  [modelStock.id, { spec: modelStock, run: (c) => modelStockRef(c.base, c.models, str(c.p, 'angle') as ModelStockAngle) }],
]);

/**
 * Merges `models` (fine-tuned, aligned with `base`) with method `methodId` in float64 on the CPU. `params` are
 * validated against the method's spec (unknown keys and bad values raise ConfigError; missing ones take defaults).
 * `tall_masks` yields one model per task: use tallMaskModels.
 */
export function mergeReference(methodId: string, params: ParamValues, base: RefModel, models: RefModel[]): RefModel {
  if (methodId === tallMasks.id) {
    throw new ConfigError('method', `'${tallMasks.id}' produces one model per task, not one merged model: use tallMaskModels()`);
  }
  const entry = RUNNERS.get(methodId);
  if (!entry) {
    throw new ConfigError('method', `no reference for method ${JSON.stringify(methodId)} (allowed: ${[...RUNNERS.keys(), tallMasks.id].join(', ')})`);
  }
  const c = context(entry.spec, params, base, models);
  return entry.run(c);
}

/** TALL-mask compression: one model per task, theta0 + m_t * tau_MTL (see reference/methods/tallMasks.ts). */
export function tallMaskModels(params: ParamValues, base: RefModel, models: RefModel[]): RefModel[] {
  const c = context(tallMasks, params, base, models);
  return tallMaskModelsRef(c.base, c.models, coef(c, 'mask_lambda'));
}

function context(spec: MethodSpec, params: ParamValues, base: RefModel, models: RefModel[]): RunContext {
  const p = resolveParams(spec, params);
  checkModelCount(spec, models.length);
  checkAligned(base, models);
  let taus: RefModel[] | undefined;
  return { spec, p, base, models, taus: () => (taus ??= refTaskVectors(base, models)) };
}

/** Every fine-tuned model must hold every base tensor with the base's shape. */
function checkAligned(base: RefModel, models: RefModel[]): void {
  models.forEach((m, i) => {
    for (const [name, b] of base) {
      const t = m.get(name);
      if (!t) throw new AlignmentError(name, `${name}: missing from fine-tuned model ${i + 1}`);
      if (t.shape.join(',') !== b.shape.join(',')) {
        throw new AlignmentError(name, `${name}: shape [${t.shape.join(', ')}] in fine-tuned model ${i + 1} differs from the base's [${b.shape.join(', ')}]`);
      }
    }
  });
}

function tiesSettings(p: ParamValues, kName: string): TiesSettings {
  return { k: num(p, kName), merge: str(p, 'merge') as DisjointMerge, scope: str(p, 'scope') as TiesSettings['scope'] };
}

function coef(c: RunContext, name: string): CoefficientFn {
  return coefficientFn(setting(c.p, name), c.base, defaultOf(c.spec, name));
}

/** The numeric default of a parameter (the fallback where coefficient rules match nothing). */
function defaultOf(spec: MethodSpec, name: string): number {
  const d = spec.params.find((x) => x.name === name)?.default;
  return typeof d === 'number' ? d : 0;
}

function setting(p: ParamValues, key: string): CoefficientSetting {
  const v = p[key];
  if (v === undefined || typeof v === 'string' || typeof v === 'boolean') throw new ConfigError(`params.${key}`, `expected a coefficient, got ${JSON.stringify(v)}`);
  return v;
}

function num(p: ParamValues, key: string): number {
  const v = p[key];
  if (typeof v !== 'number') throw new ConfigError(`params.${key}`, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function str(p: ParamValues, key: string): string {
  const v = p[key];
  if (typeof v !== 'string') throw new ConfigError(`params.${key}`, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function bool(p: ParamValues, key: string): boolean {
  const v = p[key];
  if (typeof v !== 'boolean') throw new ConfigError(`params.${key}`, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}
