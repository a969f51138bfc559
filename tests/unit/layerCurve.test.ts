import fc from 'fast-check';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { coefficientAt, countLayers, layerIndexOf, validateCoefficient } from '../../src/engine/methods/scaling';
import {
  compressGradient,
  curveOf,
  curvesFromSetting,
  filtersFor,
  presetCurve,
  settingFromCurves,
  withCurve,
  withoutFilter,
  withPoint,
  type LayerCurves,
} from '../../src/ui/charts/layerCurve';
import { LayerCurveEditor } from '../../src/ui/panels/LayerCurveEditor';

/** Tensor names of a CLIP vision tower with L blocks (HF naming). */
function clipTensors(L: number): string[] {
  const names = ['vision_model.embeddings.class_embedding', 'vision_model.embeddings.patch_embedding.weight', 'vision_model.pre_layrnorm.weight', 'vision_model.post_layernorm.bias'];
  for (let l = 0; l < L; l++) {
    for (const m of ['self_attn.q_proj.weight', 'self_attn.out_proj.bias', 'mlp.fc1.weight', 'mlp.fc2.bias', 'layer_norm1.weight']) names.push(`vision_model.encoder.layers.${l}.${m}`);
  }
  return names;
}

const FALLBACK = -7; // what the engine gives tensors that no rule matches: distinct from every curve value

/** The value a set of curves means for one tensor: the first filter it contains, else the all-tensor curve. */
function intended(c: LayerCurves, tensor: string): number {
  const l = layerIndexOf(tensor) ?? 0;
  const curve = c.filters.find((f) => tensor.includes(f.filter))?.values ?? c.all;
  return curve ? curve[l]! : FALLBACK;
}

/** What the engine does with the editor's output: validate it as an untrusted setting, then evaluate it at a tensor. */
function engineValue(setting: unknown, tensor: string, L: number, task = 0): number {
  const checked = validateCoefficient('lambda', JSON.parse(JSON.stringify(setting)));
  return coefficientAt(checked, { tensor, task, layers: L }, FALLBACK);
}

const value = fc.double({ min: -2, max: 3, noNaN: true });
const curvesArb = fc.integer({ min: 1, max: 12 }).chain((L) =>
  fc.record({
    L: fc.constant(L),
    all: fc.option(fc.array(value, { minLength: L, maxLength: L }), { nil: null }),
    filters: fc.uniqueArray(fc.constantFrom('self_attn', 'mlp', 'layer_norm'), { maxLength: 3 }).chain((names) =>
      fc.tuple(...names.map((filter) => fc.array(value, { minLength: L, maxLength: L }).map((values) => ({ filter, values })))),
    ),
  }).filter((c) => c.all !== null || c.filters.length > 0),
);

describe('curves -> coefficient setting', () => {
  it('emits what the engine accepts unchanged and evaluates, at every tensor, to the drawn value', () => {
    fc.assert(
      fc.property(curvesArb, ({ L, all, filters }) => {
        const curves: LayerCurves = { all, filters };
        const setting = settingFromCurves(curves);
        expect(validateCoefficient('lambda', setting)).toEqual(setting);
        for (const tensor of clipTensors(L)) {
          expect(engineValue(setting, tensor, L)).toBeCloseTo(intended(curves, tensor), 12);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('writes a constant as a number, a straight line as [first, last] (LiNeS) and anything else as one value per layer', () => {
    expect(compressGradient([0.3, 0.3, 0.3])).toBe(0.3);
    expect(compressGradient([0.1, 0.2, 0.3, 0.4])).toEqual([0.1, 0.4]);
    expect(compressGradient([0.1, 0.5, 0.2])).toEqual([0.1, 0.5, 0.2]);
    expect(compressGradient([0.7])).toBe(0.7);
    const lines = presetCurve({ kind: 'lines', alpha: 0.125, beta: 0.5 }, 12);
    expect(lines[1]).toBeCloseTo(0.170455, 6); // methods.md 14's ramp for T = 8, L = 12
    expect(settingFromCurves({ all: lines, filters: [] })).toEqual([0.125, 0.625]);
    expect(settingFromCurves({ all: presetCurve({ kind: 'lines', alpha: 0.125, beta: 0.5 }, 4), filters: [] })).toEqual([0.125, 0.625]);
    expect(settingFromCurves({ all: presetCurve({ kind: 'linear', from: 0.9, to: 0.1 }, 7), filters: [] })).toEqual([0.9, 0.1]);
    expect(withPoint([1 / 3, 2 / 3], 0, 0.5)).toEqual([0.5, 0.6667]);
    expect(settingFromCurves({ all: [0.2, 0.2], filters: [{ filter: 'mlp', values: [0, 1] }] })).toEqual([{ filter: 'mlp', value: [0, 1] }, { value: 0.2 }]);
  });

  it('keeps a rule list without a catch-all: unmatched tensors keep the parameter default', () => {
    const setting = settingFromCurves({ all: null, filters: [{ filter: 'mlp', values: [1, 2, 3] }] });
    expect(setting).toEqual([{ filter: 'mlp', value: [1, 3] }]);
    expect(engineValue(setting, 'vision_model.encoder.layers.1.self_attn.q_proj.weight', 3)).toBe(FALLBACK);
    expect(engineValue(setting, 'vision_model.encoder.layers.1.mlp.fc1.weight', 3)).toBe(2);
  });
});

describe('coefficient setting -> curves -> setting', () => {
  const gradient = fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 6 }));
  const rule = fc.record({ filter: fc.option(fc.constantFrom('self_attn', 'mlp', 'layer_norm', 'attn', '*'), { nil: undefined }), value: gradient }).map((r) => (r.filter === undefined ? { value: r.value } : r));
  const setting = fc.oneof(gradient, fc.array(rule, { minLength: 1, maxLength: 5 }));

  it('reads every number, gradient and rule list (repeats and rules after a catch-all included) without changing its meaning', () => {
    fc.assert(
      fc.property(setting, fc.integer({ min: 1, max: 12 }), (s, L) => {
        const curves = curvesFromSetting(s, L)!;
        expect(curves).not.toBeNull();
        const back = settingFromCurves(curves);
        for (const tensor of clipTensors(L)) {
          expect(engineValue(back, tensor, L)).toBeCloseTo(engineValue(s, tensor, L), 12);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what a curve cannot show: per-task settings, tables, malformed values', () => {
    expect(curvesFromSetting({ per_task: [0.3, 0.4] }, 4)).toBeNull();
    expect(curvesFromSetting({ table: { x: [1] } }, 4)).toBeNull();
    expect(curvesFromSetting('auto', 4)).toBeNull();
    expect(curvesFromSetting([], 4)).toBeNull();
    expect(curvesFromSetting([{ filter: 3, value: 1 }], 4)).toBeNull();
    expect(curvesFromSetting([{ filter: 'mlp', value: 'x' }], 4)).toBeNull();
  });
});

describe('editing operations', () => {
  const start = curvesFromSetting([{ filter: 'self_attn', value: 0.5 }, { value: [0.1, 0.4] }], 4)!;

  it('moves one point, adds and removes a filter curve, and each result is a valid setting', () => {
    const moved = withCurve(start, null, withPoint(curveOf(start, null)!, 2, 0.77777));
    expect(curveOf(moved, null)!.map((v) => Number(v.toFixed(10)))).toEqual([0.1, 0.2, 0.7778, 0.4]);
    const withMlp = withCurve(moved, 'mlp', presetCurve({ kind: 'constant', value: 0 }, 4));
    const s = settingFromCurves(withMlp) as { filter?: string; value: unknown }[];
    expect(s.map((r) => r.filter)).toEqual(['self_attn', 'mlp', undefined]);
    expect(validateCoefficient('lambda', s)).toEqual(s);
    expect(engineValue(s, 'vision_model.encoder.layers.3.mlp.fc1.weight', 4)).toBe(0);
    const removed = withoutFilter(withMlp, 'mlp');
    expect(curveOf(removed, 'mlp')).toEqual(curveOf(removed, null)); // mlp tensors follow the all-tensor curve again
    expect(engineValue(settingFromCurves(removed), 'vision_model.encoder.layers.3.mlp.fc1.weight', 4)).toBeCloseTo(0.4, 12);
  });

  it('finds the usual filters among a model\'s tensor names, without duplicates that match the same tensors', () => {
    const names = clipTensors(2);
    expect(filtersFor(names)).toEqual(['self_attn', 'mlp', 'layer_norm', 'norm']);
    expect(filtersFor(['h.0.attn.c_attn.weight', 'h.0.mlp.c_fc.weight'])).toEqual(['attn', 'mlp']);
    expect(countLayers(names)).toBe(2);
  });
});

describe('the editor', () => {
  const render = (props: Partial<Parameters<typeof LayerCurveEditor>[0]>) =>
    renderToStaticMarkup(createElement(LayerCurveEditor, { layers: 4, value: [0.1, 0.4], onChange: () => {}, filters: ['self_attn', 'mlp'], ...props }));

  it('draws one keyboard-reachable slider point per layer at the setting\'s values', () => {
    const out = render({});
    const now = [...out.matchAll(/role="slider"[^>]*aria-valuenow="([^"]+)"/g)].map((m) => Number(m[1]));
    expect(now.map((v) => Number(v.toFixed(10)))).toEqual([0.1, 0.2, 0.3, 0.4]);
    expect(out.match(/tabindex="0"/g)).toHaveLength(1); // one tab stop; arrows move between points
    expect(out).toContain('attention (self_attn)');
    expect(out).toContain('LiNeS');
    expect(out).toContain('[0.1,0.4]');
  });

  it('offers to replace settings it cannot draw, and explains a model without layers', () => {
    expect(render({ value: { per_task: [0.3, 0.4] } })).toContain('Replace with a per-layer curve');
    expect(render({ layers: 0 })).toContain('no numbered layers');
  });
});
