/**
 * The continual protocol's pure parts: backward transfer, row averages, mean and sample standard deviation, the
 * seeded orders, and per-task coefficients following their model when the models are passed in merge order.
 */
import { describe, expect, it } from 'vitest';
import { averageOver, backwardTransfer, meanStd, permuteTaskParams, seededOrders, type AccRow } from '../../src/engine/eval/continualEval';
import { continualTable } from '../../src/cli/evalCommand';
import { ConfigError } from '../../src/engine/errors';
import { resolveConfig } from '../../src/engine/merge/config';
import { resolveOrder, shuffledOrder } from '../../src/engine/methods/order';
import { coefficientAt, type CoefficientSetting } from '../../src/engine/methods/scaling';

describe('backward transfer', () => {
  it('is the mean of acc_{T,i} - acc_{i,i} over the T-1 tasks merged before the last, in merge order', () => {
    // Suite tasks 0..2 merged in the order 2, 0, 1; columns are suite tasks, null = not yet seen.
    const order = [2, 0, 1];
    const acc: AccRow[] = [
      [null, null, 90],
      [80, null, 70],
      [60, 75, 50],
    ];
    // Task 2 (merged first): 50 - 90 = -40; task 0 (second): 60 - 80 = -20; the last task adds nothing.
    expect(backwardTransfer(acc, order)).toBeCloseTo(-30, 12);
  });

  it('equals the textbook form on a full matrix in the given order, and is positive when old tasks improve', () => {
    const acc: AccRow[] = [
      [50, 10, 20, 30],
      [55, 60, 25, 35],
      [57, 62, 70, 40],
      [52, 66, 71, 80],
    ];
    const T = 4;
    let want = 0;
    for (let i = 0; i < T - 1; i++) want += acc[T - 1]![i]! - acc[i]![i]!;
    want /= T - 1;
    expect(backwardTransfer(acc, [0, 1, 2, 3])).toBeCloseTo(want, 12);
    expect(want).toBeCloseTo(((52 - 50) + (66 - 60) + (71 - 70)) / 3, 12);
    expect(want).toBeGreaterThan(0);
  });

  it('is null for one task and rejects a matrix that does not fit the order', () => {
    expect(backwardTransfer([[42]], [0])).toBeNull();
    expect(() => backwardTransfer([[1, null]], [0, 1])).toThrow(ConfigError);
    // acc_{i,i} missing: task 1 was merged first but not scored after that step.
    expect(() => backwardTransfer([[10, null], [20, 30]], [1, 0])).toThrow(/task 1 after step 1/);
  });
});

describe('averages', () => {
  it('averageOver averages the given tasks (the seen ones), which must have been evaluated', () => {
    expect(averageOver([null, 40, null, 80], [3, 1])).toBe(60);
    expect(averageOver([10, 20, 30, 70], [0, 1, 2])).toBe(20);
    expect(() => averageOver([10, null], [0, 1])).toThrow(/task 1 was not evaluated/);
    expect(() => averageOver([10], [])).toThrow(ConfigError);
  });

  it('meanStd uses the sample standard deviation (n - 1)', () => {
    const r = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(r.mean).toBe(5);
    // Population std of this set is 2; the sample std is sqrt(32 / 7).
    expect(r.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(r.n).toBe(8);
    expect(meanStd([3.5])).toEqual({ mean: 3.5, std: null, n: 1 });
    expect(meanStd([1, 1, 1]).std).toBe(0);
    expect(() => meanStd([])).toThrow(ConfigError);
  });
});

describe('seeded orders', () => {
  it('order k is the shuffle of seed + k, the same as the merge order "shuffle" with that seed', () => {
    const orders = seededOrders(8, 5, 3);
    expect(orders).toHaveLength(5);
    orders.forEach((o, k) => {
      expect(o).toEqual(shuffledOrder(8, 3 + k));
      expect(o).toEqual(resolveOrder('shuffle', 3 + k, 8));
      expect([...o].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });
  });

  it('is reproducible, and different seeds give different orders', () => {
    expect(seededOrders(8, 4, 11)).toEqual(seededOrders(8, 4, 11));
    const distinct = new Set(seededOrders(8, 10, 0).map((o) => o.join(',')));
    expect(distinct.size).toBe(10);
    expect(seededOrders(8, 3, 0)).not.toEqual(seededOrders(8, 3, 100));
  });

  it('rejects a bad count or seed, naming the field', () => {
    expect(() => seededOrders(3, 0, 0)).toThrow(/^orders:/);
    expect(() => seededOrders(3, 1.5, 0)).toThrow(/^orders:/);
    expect(() => seededOrders(3, 2, -1)).toThrow(/^seed:/);
  });
});

describe('per-task coefficients follow their model', () => {
  const order = [2, 0, 3, 1];
  const site = (task: number, tensor = 'vision_model.encoder.layers.1.mlp.fc1.weight') => ({ tensor, task, layers: 4 });

  it('per_task lists and table rows are reordered; scalars, gradients and rules are untouched', () => {
    const settings: CoefficientSetting[] = [
      { per_task: [0.1, 0.2, [0.3, 0.9], 0.4] },
      { table: { 'vision_model.encoder.layers.1.mlp.fc1.weight': [1, 2, 3, 4] }, default: 0.7 },
    ];
    for (const lambda of settings) {
      const config = resolveConfig({ method: 'continual_task_arithmetic', params: { lambda } });
      const permuted = permuteTaskParams(config, order).lambda as CoefficientSetting;
      for (let k = 0; k < order.length; k++) {
        expect(coefficientAt(permuted, site(k), -1)).toBe(coefficientAt(lambda, site(order[k]!), -1));
      }
      // Tensors without a row keep the table's default.
      expect(coefficientAt(permuted, site(0, 'other.weight'), -1)).toBe(coefficientAt(lambda, site(order[0]!, 'other.weight'), -1));
    }
    for (const lambda of [0.25, [0.1, 0.5], [{ filter: 'fc1', value: 0.2 }]]) {
      const config = resolveConfig({ method: 'continual_task_arithmetic', params: { lambda } });
      expect(permuteTaskParams(config, order).lambda).toEqual(config.params.lambda);
    }
  });

  it('a short per_task list keeps falling back for the models it does not cover', () => {
    const config = resolveConfig({ method: 'continual_ties', params: { lambda: { per_task: [0.5, 0.6] } } });
    const permuted = permuteTaskParams(config, order).lambda as CoefficientSetting;
    // Position 0 holds model 2 and position 2 model 3: neither has an entry, so both fall back.
    expect(coefficientAt(permuted, site(0), -1)).toBe(-1);
    expect(coefficientAt(permuted, site(1), -1)).toBe(0.5);
    expect(coefficientAt(permuted, site(2), -1)).toBe(-1);
    expect(coefficientAt(permuted, site(3), -1)).toBe(0.6);
    // Parameters that are not coefficients are copied as they are.
    expect(permuteTaskParams(config, order).k).toBe(config.params.k);
  });
});

describe('the CLI table', () => {
  it('prints each step (task added, average on the seen tasks, lambda_t, sqrt(t)), each order and mean ± std', () => {
    const step = (i: number, lambda: number | null) => ({ step: i, modelIndex: 0, taskVectorNorm: 1, meanNorm: 1, mergedNorm: 1, lambda, unscaledNorm: null, sqrtT: Math.sqrt(i + 1), layers: [] });
    const text = continualTable({
      method: 'opcm',
      params: {},
      tasks: ['alpha', 'beta'],
      evaluate: 'seen',
      samples: 8,
      sampleSeed: 0,
      runs: [
        { order: [1, 0], seed: 0, acc: [[null, 90], [70, 80]], seenAverage: [90, 75], finalAverage: 75, bwt: -10, steps: [step(0, 1), step(1, 1.25)], elapsedMs: 1 },
        { order: [0, 1], seed: 1, acc: [[60, null], [50, 90]], seenAverage: [60, 70], finalAverage: 70, bwt: -10, steps: [step(0, null), step(1, null)], elapsedMs: 1 },
      ],
      finalAverage: meanStd([75, 70]),
      bwt: meanStd([-10, -10]),
      std: 'sample',
    });
    const lines = text.split('\n');
    expect(lines[0]).toBe('order 1 (seed 0): beta, alpha');
    expect(lines[1]).toMatch(/^step\s+task added\s+avg seen\s+lambda_t\s+sqrt\(t\)$/);
    expect(lines[2]!.trim().split(/\s+/)).toEqual(['1', 'beta', '90.0', '1.000', '1.000']);
    expect(lines[3]!.trim().split(/\s+/)).toEqual(['2', 'alpha', '75.0', '1.250', '1.414']);
    expect(lines[4]).toBe('BWT -10.0, final average 75.0');
    expect(text).toContain('order 2 (seed 1): alpha, beta');
    expect(text).toMatch(/\n\s+1\s+alpha\s+60\.0\s+-\s+1\.000\n/);
    expect(lines[lines.length - 1]).toBe(`opcm over 2 order(s): final average 72.5 ± ${(5 / Math.SQRT2).toFixed(1)}, BWT -10.0 ± 0.0 (mean ± sample std)`);
  });
});
