/** The Sweep tab's parameter: which parameters it can vary, which one it varies, its points, and the link's view.sweep. */
import { expect, it } from 'vitest';
import { SWEEPABLE_PARAMS } from '../../src/app/experiment';
import { decodeShareLink, encodeShareLink } from '../../src/app/shareLink';
import { initialState } from '../../src/app/store';
import { sweepableParams, sweepKey, sweepValues, sweptParam, SWEEP_POINTS } from '../../src/app/sweepActions';
import { validateParam } from '../../src/engine/methods/params';
import { METHODS } from '../../src/engine/methods/registry';

it('offers the real-valued parameters of the method, not integers, seeds or switches', () => {
  expect(sweepableParams('ties').map((p) => p.name)).toEqual(['k', 'lambda']);
  expect(sweepableParams('dare').map((p) => p.name)).toEqual(['p', 'lambda', 'k']);
  // Consensus's k counts tasks (an integer): not swept; its TIES k is.
  expect(sweepableParams('consensus').map((p) => p.name)).toEqual(['mask_lambda', 'lambda', 'ties_k']);
  expect(sweepableParams('simple_average')).toEqual([]);
  expect(sweepableParams('model_stock')).toEqual([]);
  // The link's enum holds every method's sweepable names.
  for (const m of METHODS) for (const p of sweepableParams(m.id)) expect(SWEEPABLE_PARAMS, `${m.id}.${p.name}`).toContain(p.name);
});

it("varies the view's choice where the method has it, else the main coefficient", () => {
  expect(sweptParam('ties', 'main')?.name).toBe('lambda');
  expect(sweptParam('ties', 'k')?.name).toBe('k');
  expect(sweptParam('breadcrumbs', 'density')?.name).toBe('density');
  // A choice made for another method falls back (switching methods keeps the view setting).
  expect(sweptParam('task_arithmetic', 'k')?.name).toBe('lambda');
  expect(sweptParam('slerp', 'main')?.name).toBe('t');
  expect(sweptParam('simple_average', 'main')).toBeNull();
});

it('spreads the points over the range, half a step inside an open end, each a valid value', () => {
  const k = sweptParam('ties', 'k')!; // (0, 1]
  const kv = sweepValues(k);
  expect(kv).toHaveLength(SWEEP_POINTS);
  expect(kv[0]).toBeGreaterThan(0);
  expect(kv[0]).toBeCloseTo(1 / 16, 4);
  expect(kv.at(-1)).toBe(1);
  const p = sweptParam('dare', 'p')!; // [0, 1)
  const pv = sweepValues(p);
  expect(pv[0]).toBe(0);
  expect(pv.at(-1)).toBeLessThan(1);
  const lambda = sweptParam('task_arithmetic', 'main')!;
  expect([lambda.min, lambda.max]).toEqual([0, 1.5]);
  expect(sweepValues(lambda)).toEqual([0, 0.1875, 0.375, 0.5625, 0.75, 0.9375, 1.125, 1.3125, 1.5]);
  // Every point of every sweepable parameter of every method is a value the engine accepts.
  for (const m of METHODS) {
    for (const param of sweepableParams(m.id)) {
      const values = sweepValues(param);
      expect(new Set(values).size, `${m.id}.${param.name}`).toBe(SWEEP_POINTS);
      for (const v of values) expect(() => validateParam(param, v), `${m.id}.${param.name} = ${v}`).not.toThrow();
    }
  }
});

it('carries the choice in the link as view.sweep, and refuses a name no method sweeps', () => {
  const { experiment } = decodeShareLink('#v=1&method=ties&view.tab=sweep&view.sweep=k');
  expect(experiment.view.sweep).toBe('k');
  const link = encodeShareLink(experiment);
  expect(link).toContain('view.sweep=k');
  expect(decodeShareLink(link).experiment.view).toEqual(experiment.view);
  // The default (the main coefficient) is not written.
  expect(encodeShareLink(decodeShareLink('#v=1&method=ties').experiment)).not.toContain('view.sweep');
  expect(() => decodeShareLink('#v=1&view.sweep=seed')).toThrow(/view\.sweep: expected one of main, /);
});

it("keys a sweep by the parameter it varies and everything but that parameter's value", () => {
  const s = { ...initialState, method: 'ties', params: {} };
  // Another parameter is another sweep, even where both stand at their defaults.
  expect(sweepKey(s, 'k')).not.toBe(sweepKey(s, 'lambda'));
  // Moving the swept parameter keeps the sweep; moving another one makes it stale.
  expect(sweepKey({ ...s, params: { lambda: 0.7 } }, 'lambda')).toBe(sweepKey(s, 'lambda'));
  expect(sweepKey({ ...s, params: { k: 0.4 } }, 'lambda')).not.toBe(sweepKey(s, 'lambda'));
  expect(sweepKey({ ...s, evaluation: { ...s.evaluation, liveSamples: 8 } }, 'lambda')).not.toBe(sweepKey(s, 'lambda'));
});
