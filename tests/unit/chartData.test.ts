import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { InterferenceReport } from '../../src/engine/merge/metrics';
import { runContinualReference } from '../../src/engine/reference/continual';
import { cosineMatrix, cosineMatrixByLayer, keptFractions, normReport, signConflicts, usageHistogram } from '../../src/engine/reference/metrics';
import { tiesContributions } from '../../src/engine/reference/methods/ties';
import type { RefModel } from '../../src/engine/reference/refModel';
import {
  cosineChoices,
  formatPct,
  hasMaskData,
  keptRows,
  layerLabel,
  layerNormRows,
  logDomain,
  maxOffDiagonal,
  niceCeil,
  signConflictRows,
  slantedLabelMargin,
  usageClasses,
  usageRows,
} from '../../src/ui/charts/chartData';
import { ChartTabs } from '../../src/ui/charts/ChartTabs';
import { divergingColour, NEGATIVE_HUE, POSITIVE_HUE, sequentialColour, textColourOn, tint } from '../../src/ui/charts/colourScale';
import { continualRows, continualSpread, opcmGrid, perTaskRows, seenAverages, spreadOf, stepRows, sweepRows, bestPoint, weightLabel } from '../../src/ui/charts/continualData';
import { CosineHeatmap } from '../../src/ui/charts/CosineHeatmap';
import { MaskOverlapChart } from '../../src/ui/charts/MaskOverlapChart';
import { OpcmInternalsChart } from '../../src/ui/charts/OpcmInternalsChart';
import { SweepChart } from '../../src/ui/charts/SweepChart';
import { gridModels } from '../helpers/gridModels';

/** A model from {name: values} (1-D tensors). */
function vec(tensors: Record<string, number[]>): RefModel {
  return new Map(Object.entries(tensors).map(([name, v]) => [name, { shape: [v.length], data: Float64Array.from(v) }]));
}

/** An InterferenceReport assembled from the float64 reference metrics, in the shape the GPU accumulator returns. */
function interferenceOf(taus: RefModel[], merged: RefModel, opts: { contributions?: RefModel[]; masks?: RefModel[] } = {}): InterferenceReport {
  const norms = normReport([...taus, merged]);
  const after = opts.contributions ? signConflicts(opts.contributions) : null;
  const kept = opts.contributions ? keptFractions(opts.contributions) : null;
  return {
    cosine: { total: cosineMatrix(taus), layers: cosineMatrixByLayer(taus) },
    norms: { total: norms.total, layers: norms.layers },
    signs: { taskVectors: signConflicts(taus), contributions: after },
    kept,
    usage: opts.masks ? usageHistogram(opts.masks) : null,
    topk: null,
    nonFinite: [],
  };
}

const E = 'vision_model.embeddings.x';
const A = 'vision_model.encoder.layers.0.w';
const B = 'vision_model.encoder.layers.1.w';

// Three task vectors over 3 layer groups, chosen so that every per-layer number is known by hand.
const taus = [vec({ [E]: [1, 0], [A]: [1, 1, 1, 1], [B]: [2, 0] }), vec({ [E]: [-1, 0], [A]: [1, -1, 1, 1], [B]: [0, 3] }), vec({ [E]: [1, 0], [A]: [1, 1, -1, 0], [B]: [1, 1] })];
const mergedTau = vec({ [E]: [0.3, 0], [A]: [0.9, 0.3, 0.3, 0.6], [B]: [0.9, 1.2] });

describe('interference rows', () => {
  const report = interferenceOf(taus, mergedTau);

  it('labels layer groups: the tensors outside the blocks first, then blocks by index', () => {
    expect(report.norms.layers.map((l) => layerLabel(l.layer))).toEqual(['other', '0', '1']);
  });

  it('gives sign-conflict rates in % per layer, with no "after" for a method without contributions', () => {
    // other: coordinate 0 has +,-,+ (conflict), coordinate 1 all zero -> 50 %. Block 0: coordinates 1 and 2 conflict -> 50 %.
    // Block 1: (2, 0, 1) and (0, 3, 1) never mix signs -> 0 %.
    expect(signConflictRows(report)).toEqual([
      { label: 'other', layer: null, before: 50 },
      { label: '0', layer: 0, before: 50 },
      { label: '1', layer: 1, before: 0 },
    ]);
  });

  it('adds the conflicts left among the contributions after TIES', () => {
    const contributions = tiesContributions(taus, { k: 0.5, merge: 'sum', scope: 'global' });
    const r = interferenceOf(taus, mergedTau, { contributions });
    const rows = signConflictRows(r);
    const expected = signConflicts(contributions).layers.map((l) => 100 * l.conflictRate);
    expect(rows.map((x) => x.after)).toEqual(expected);
    // TIES elects one sign per coordinate: nothing conflicts afterwards.
    expect(expected.every((v) => v === 0)).toBe(true);
    // The agreement measure: the reference's mean sign agreement ratio in %, 100 after the election.
    const agreement = signConflictRows(r, 'agreement');
    expect(agreement.map((x) => x.before)).toEqual(signConflicts(taus).layers.map((l) => 100 * l.agreement));
    expect(agreement.map((x) => x.after)).toEqual(signConflicts(contributions).layers.map(() => 100));
    expect(agreement.some((x) => x.before < 100)).toBe(true);
    expect(hasMaskData(r)).toBe(true);
    const kept = keptRows(r)!;
    expect(kept.map((row) => row.m0)).toEqual(keptFractions(contributions).layers.map((l) => 100 * l.kept[0]!));
  });

  it('reports no mask data when the contributions are the task vectors themselves or absent', () => {
    const dense = [vec({ [A]: [1, 2] }), vec({ [A]: [-1, 3] })];
    expect(hasMaskData(interferenceOf(dense, dense[0]!, { contributions: dense }))).toBe(false);
    expect(hasMaskData(interferenceOf(dense, dense[0]!))).toBe(false);
    expect(keptRows(interferenceOf(dense, dense[0]!))).toBeNull();
    expect(usageRows(interferenceOf(dense, dense[0]!))).toBeNull();
  });

  it('splits TALL usage counts into catastrophic / selfish / general shares of each layer', () => {
    const masks = [vec({ [E]: [1, 0], [A]: [1, 1, 0, 0], [B]: [1, 1] }), vec({ [E]: [0, 0], [A]: [1, 0, 0, 1], [B]: [1, 1] }), vec({ [E]: [1, 0], [A]: [1, 0, 0, 0], [B]: [0, 1] })];
    const r = interferenceOf(taus, mergedTau, { masks });
    expect(hasMaskData(r)).toBe(true);
    const rows = usageRows(r)!;
    // other: coordinate 0 used by 2 masks, coordinate 1 by none. Block 0: counts 3, 1, 0, 1. Block 1: 2 and 3.
    expect(rows[0]).toEqual({ label: 'other', layer: null, catastrophic: 50, selfish: 0, general: 50 });
    expect(rows[1]).toEqual({ label: '0', layer: 0, catastrophic: 25, selfish: 50, general: 25 });
    expect(rows[2]).toEqual({ label: '1', layer: 1, catastrophic: 0, selfish: 0, general: 100 });
    expect(usageClasses([0, 0, 0])).toEqual({ catastrophic: 0, selfish: 0, general: 0 });
  });

  it('puts each task vector norm under m<t> and the merged norm under "merged"', () => {
    const rows = layerNormRows(report);
    const want = normReport([...taus, mergedTau]).layers;
    rows.forEach((row, g) => {
      expect([row.m0, row.m1, row.m2, row.merged]).toEqual(want[g]!.norms);
    });
    expect(rows[1]!.m0).toBeCloseTo(2, 15); // ||(1, 1, 1, 1)||
  });

  it('offers the whole-model cosine matrix first, then each layer group', () => {
    const choices = cosineChoices(report);
    expect(choices.map((c) => c.key)).toEqual(['total', 'other', '0', '1']);
    expect(choices[0]!.cos).toEqual(cosineMatrix(taus));
    // Block 1: cos((2,0), (0,3)) = 0; cos((2,0), (1,1)) = 1/sqrt(2).
    expect(choices[3]!.cos[0]![1]).toBe(0);
    expect(choices[3]!.cos[0]![2]).toBeCloseTo(Math.SQRT1_2, 15);
    expect(maxOffDiagonal(choices[3]!.cos)).toBeCloseTo(Math.SQRT1_2, 15);
    expect(maxOffDiagonal([[1]])).toBe(0);
  });
});

describe('axis and colour helpers', () => {
  it('rounds scale limits up to 1, 2, 2.5 or 5 times a power of ten', () => {
    expect([0.07, 0.2, 0.21, 0.26, 0.6, 1, 3, 0].map(niceCeil)).toEqual([0.1, 0.2, 0.25, 0.5, 1, 1, 5, 1]);
  });

  it('bounds a log axis outward to quarter decades, ignoring zeros', () => {
    const [lo, hi] = logDomain([0, 0.003, 2, 0.5])!;
    expect(lo).toBeLessThanOrEqual(0.003);
    expect(lo).toBeGreaterThan(0.003 / Math.pow(10, 0.25) - 1e-15);
    expect(hi).toBeGreaterThanOrEqual(2);
    expect(hi).toBeLessThan(2 * Math.pow(10, 0.25));
    expect(logDomain([0, -1, NaN])).toBeNull();
    const [a, b] = logDomain([1])!;
    expect(b).toBeGreaterThan(a);
  });

  it('maps signed values to blue - white - orange and magnitudes to white - hue', () => {
    expect(divergingColour(0, 0.2)).toBe('#ffffff');
    expect(divergingColour(-0.2, 0.2)).toBe(NEGATIVE_HUE.toLowerCase());
    expect(divergingColour(0.5, 0.2)).toBe(POSITIVE_HUE.toLowerCase()); // clamped
    expect(divergingColour(NaN, 1)).not.toBe('#ffffff');
    expect(tint('#000000', 0.5)).toBe('#808080');
    expect(sequentialColour(5, 0, 10, '#000000')).toBe('#808080');
    expect(textColourOn('#ffffff')).toBe('#000000');
    expect(textColourOn(NEGATIVE_HUE)).toBe('#ffffff');
    expect(formatPct(12.345)).toBe('12.3 %');
    expect(formatPct(0.123)).toBe('0.12 %');
  });
});

describe('continual and sweep summaries', () => {
  // Two orders of 3 tasks; null / NaN where a task was not scored yet.
  const runs = [
    { order: [0, 1, 2], acc: [[80, null, null], [70, 90, null], [60, 80, 70]] },
    { order: [2, 0, 1], acc: [[NaN, NaN, 90], [76, NaN, 84], [64, 86, 72]] },
  ];
  const method = { id: 'opcm', label: 'OPCM', orders: runs };

  it('averages the accuracy on the tasks merged so far', () => {
    expect(seenAverages(runs[0]!)).toEqual([80, 80, 70]);
    expect(seenAverages(runs[1]!)).toEqual([90, 80, 74]);
    expect(seenAverages({ order: [1, 0], acc: [[50, null], [60, 70]] })).toEqual([null, 65]);
  });

  it('summarises the orders per step: mean, min, max and the sample standard deviation', () => {
    expect(spreadOf([70, 74])).toEqual({ mean: 72, min: 70, max: 74, std: Math.sqrt(8), n: 2 });
    expect(spreadOf([5])!.std).toBeNull();
    expect(spreadOf([])).toBeNull();
    expect(continualSpread(method).map((s) => [s.t, s.mean, s.min, s.max])).toEqual([
      [1, 85, 80, 90],
      [2, 80, 80, 80],
      [3, 72, 70, 74],
    ]);
  });

  it('builds one row per step with each method mean and, for several orders, its min-max band', () => {
    const single = { id: 'continual_task_arithmetic', label: 'C. TA', orders: [runs[0]!] };
    const rows = continualRows([method, single]);
    expect(rows[2]).toEqual({ t: 3, opcm: 72, opcm_band: [70, 74], continual_task_arithmetic: 70 });
  });

  it('averages each task over the orders in which it was already merged', () => {
    const rows = perTaskRows(method, 3);
    expect(rows[0]).toEqual({ t: 1, task0: 80, task2: 90 });
    expect(rows[1]).toEqual({ t: 2, task0: 73, task1: 90, task2: 84 });
    expect(rows[2]).toEqual({ t: 3, task0: 62, task1: 83, task2: 71 });
  });

  it('sorts sweep points by value and finds the best average', () => {
    const points = [
      { value: 0.5, average: 60, perTask: { a: 70, b: 50 } },
      { value: 0.1, average: 55 },
      { value: 0.3, average: 64, perTask: { a: 66, b: 62 } },
    ];
    expect(sweepRows(points)).toEqual([
      { value: 0.1, average: 55 },
      { value: 0.3, average: 64, 'task:a': 66, 'task:b': 62 },
      { value: 0.5, average: 60, 'task:a': 70, 'task:b': 50 },
    ]);
    expect(bestPoint(points)!.value).toBe(0.3);
    expect(bestPoint([])).toBeNull();
  });
});

describe('OPCM internals grid', () => {
  const shapes = { 'vision_model.embeddings.x': [5], 'vision_model.encoder.layers.0.mlp.fc1.weight': [6, 4], 'vision_model.encoder.layers.0.self_attn.q_proj.weight': [4, 4], 'vision_model.encoder.layers.1.mlp.fc2.weight': [4, 6] };
  const g = gridModels(11, 3, shapes);
  const { steps } = runContinualReference('opcm', { alpha: 0.5 }, g.base, g.models);

  it('has one column per projecting step and one row per Linear weight', () => {
    const grid = opcmGrid(steps, 'weight');
    expect(grid.steps).toEqual([2, 3]);
    expect(grid.rows.map((r) => r.label)).toEqual(steps[1]!.layers.map((d) => weightLabel(d.tensor)));
    expect(grid.rows[0]!.title).toBe(steps[1]!.layers[0]!.tensor);
    grid.rank.forEach((row, i) => row.forEach((r, j) => expect(r).toBe(steps[j + 1]!.layers[i]!.protectedRank)));
    grid.removed.forEach((row, i) => row.forEach((r, j) => expect(r).toBe(steps[j + 1]!.layers[i]!.removedEnergy)));
  });

  it('pools a block: mean rank, removed energy over the energy of all its weights', () => {
    const grid = opcmGrid(steps, 'block');
    expect(grid.rows.map((r) => r.label)).toEqual(['block 0', 'block 1']);
    const ds = steps[2]!.layers.filter((d) => d.tensor.includes('layers.0.'));
    expect(ds).toHaveLength(2);
    const energy = ds.reduce((a, d) => a + d.tauNorm ** 2, 0);
    expect(grid.removed[0]![1]).toBeCloseTo(ds.reduce((a, d) => a + d.removedEnergy * d.tauNorm ** 2, 0) / energy, 12);
    expect(grid.rank[0]![1]).toBe((ds[0]!.protectedRank + ds[1]!.protectedRank) / 2);
    expect(grid.removed[0]![1]).toBeGreaterThan(0); // with alpha = 0.5 some direction is protected, so something is removed
  });

  it('labels weights by block and module, and gives lambda_t next to sqrt(t)', () => {
    expect(weightLabel('vision_model.encoder.layers.3.mlp.fc1.weight')).toBe('3.mlp.fc1');
    expect(weightLabel('model.visual.transformer.resblocks.7.attn.out_proj.weight')).toBe('7.attn.out_proj');
    const rows = stepRows(steps);
    expect(rows.map((r) => r.sqrtT)).toEqual([1, Math.SQRT2, Math.sqrt(3)]);
    expect(rows.map((r) => r.lambda)).toEqual(steps.map((s) => s.lambda));
  });
});

describe('chart components render their data', () => {
  const html = (el: ReturnType<typeof createElement>) => renderToStaticMarkup(el);

  it('the cosine heatmap draws a T x T grid with task names, values and a legend', () => {
    const report = interferenceOf(taus, mergedTau);
    const out = html(createElement(CosineHeatmap, { interference: report, tasks: ['cars', 'digits', 'sun'] }));
    expect(out).toContain('data-testid="cosine-heatmap"');
    expect(out.match(/<rect[^>]*stroke="#ffffff"/g)).toHaveLength(9);
    expect(out).toContain('digits');
    expect(out).toContain('cosine similarity (unitless)');
    const c01 = cosineMatrix(taus)[0]![1]!;
    expect(out).toContain(`cars × digits: ${c01.toFixed(2)}`);
  });

  it('the mask chart says so when the method does not mask', () => {
    const dense = [vec({ [A]: [1, 2] }), vec({ [A]: [-1, 3] })];
    const out = html(createElement(MaskOverlapChart, { interference: interferenceOf(dense, dense[0]!), tasks: ['a', 'b'], method: 'Task Arithmetic' }));
    expect(out).toContain('data-testid="no-mask-note"');
    expect(out).toContain('Task Arithmetic does not mask');
  });

  it('the OPCM internals show both heatmaps; a baseline gets an explanation instead', () => {
    const shapes = { 'encoder.layers.0.mlp.fc1.weight': [4, 3] };
    const g = gridModels(3, 2, shapes);
    const report = (method: string) => ({ steps: runContinualReference(method, {}, g.base, g.models).steps }) as Parameters<typeof OpcmInternalsChart>[0]['report'];
    const out = html(createElement(OpcmInternalsChart, { report: report('opcm') }));
    expect(out).toContain('Protected rank per layer and step');
    expect(out).toContain('removed energy (% of ‖τ‖²)');
    expect(html(createElement(OpcmInternalsChart, { report: report('continual_task_arithmetic') }))).toContain('data-testid="opcm-internals-empty"');
  });

  it('the sweep chart says it is computing until every point is in', () => {
    const props = { param: 'lambda', points: [{ value: 0.1, average: 50 }], current: 0.3, tasks: [], values: [0.1, 0.5, 0.9] };
    expect(html(createElement(SweepChart, props))).toContain('computing… 1 of 3 values');
    expect(html(createElement(SweepChart, { ...props, values: [0.1] }))).not.toContain('computing');
  });

  it('the tabs follow the ARIA tabs pattern with one tab stop', () => {
    const out = html(createElement(ChartTabs, { panels: { accuracy: 'A', sweep: 'S' } }));
    expect(out.match(/role="tab"/g)).toHaveLength(5);
    expect(out.match(/tabindex="0"/g)).toHaveLength(2); // the selected tab and its panel
    expect(out).toContain('aria-selected="true"');
    expect(out).toMatch(/role="tabpanel"[^>]*aria-labelledby="[^"]*tab-accuracy"/);
  });
});

describe('slantedLabelMargin', () => {
  it('leaves room for a long first label beyond the y axis, and keeps the minimum for short ones', () => {
    // 26 characters at 30 degrees: 26 * 8 * cos(30) = 180.1 px wide, less the 60 px y axis, plus 8.
    expect(slantedLabelMargin('embeddings.class_embedding', 30, 64)).toBe(129);
    expect(slantedLabelMargin('fc1.w', 30, 64)).toBe(64);
    // Steeper labels take less width.
    expect(slantedLabelMargin('Fashion, heavy noise', 20, 8)).toBeGreaterThan(slantedLabelMargin('Fashion, heavy noise', 60, 8));
    expect(slantedLabelMargin('', 20, 8)).toBe(8);
  });
});
