import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/errors';
import { parseParamText, rangeText, resolveParams, validateParam, type MethodSpec, type ParamSpec } from '../../src/engine/methods/params';
import {
  coefficientAt,
  countLayers,
  depthOf,
  gradientAt,
  isUniform,
  layerIndexOf,
  validateCoefficient,
  type CoefficientSetting,
} from '../../src/engine/methods/scaling';
import { taskArithmetic } from '../../src/engine/methods/taskArithmetic';

describe('layer index from tensor names', () => {
  it.each([
    ['vision_model.encoder.layers.11.mlp.fc1.weight', 11], // HF CLIP
    ['encoder.layers.0.self_attn.q_proj.bias', 0],
    ['model.visual.transformer.resblocks.7.attn.in_proj_weight', 7], // open_clip
    ['transformer.h.5.attn.c_attn.weight', 5], // GPT-2 (HF)
    ['h.3.mlp.c_fc.bias', 3], // GPT-2 without prefix
    ['bert.encoder.layer.2.attention.self.query.weight', 2], // BERT
    ['model.blocks.4.attn.qkv.weight', 4],
    ['layers.9.feed_forward.w1.weight', 9],
  ])('%s -> %s', (name, layer) => {
    expect(layerIndexOf(name)).toBe(layer);
  });

  it.each([
    'vision_model.embeddings.position_embedding.weight',
    'vision_model.post_layernorm.weight',
    'model.visual.proj',
    'transformer.wte.weight',
    'transformer.ln_f.bias',
  ])('%s is outside the blocks', (name) => {
    expect(layerIndexOf(name)).toBeNull();
  });

  it('counts layers and places tensors along the depth', () => {
    const names = ['embeddings.x', 'encoder.layers.0.w', 'encoder.layers.11.w', 'encoder.layers.5.w'];
    expect(countLayers(names)).toBe(12);
    expect(countLayers(['embeddings.x'])).toBe(0);
    expect(depthOf('encoder.layers.0.w', 12)).toBe(0);
    expect(depthOf('encoder.layers.11.w', 12)).toBe(1);
    expect(depthOf('encoder.layers.5.w', 12)).toBeCloseTo(5 / 11, 15);
    expect(depthOf('embeddings.x', 12)).toBe(0);
    expect(depthOf('encoder.layers.0.w', 1)).toBe(0);
  });
});

describe('gradients', () => {
  it('interpolates piecewise-linearly over t in [0, 1]', () => {
    expect(gradientAt(0.3, 0.7)).toBe(0.3);
    expect(gradientAt([0.4], 0.7)).toBe(0.4);
    expect(gradientAt([0, 1], 0.25)).toBeCloseTo(0.25, 15);
    expect(gradientAt([0, 1, 0], 0.25)).toBeCloseTo(0.5, 15);
    expect(gradientAt([0, 1, 0], 0.75)).toBeCloseTo(0.5, 15);
    expect(gradientAt([1, 2, 4], 1)).toBe(4);
    expect(gradientAt([1, 2, 4], 0)).toBe(1);
  });

  it('gives the LiNeS ramp for [alpha, alpha + beta]', () => {
    const ramp = Array.from({ length: 12 }, (_, l) => coefficientAt([0.125, 0.625], { tensor: `encoder.layers.${l}.w`, task: 0, layers: 12 }, 0));
    expect(ramp[1]).toBeCloseTo(0.170455, 6);
    expect(ramp[11]).toBeCloseTo(0.625, 15);
    expect(coefficientAt([0.125, 0.625], { tensor: 'embeddings.x', task: 0, layers: 12 }, 0)).toBe(0.125);
  });
});

describe('coefficientAt', () => {
  const at = (s: CoefficientSetting, tensor: string, task = 0) => coefficientAt(s, { tensor, task, layers: 5 }, -1);

  it('filter rules: the first rule whose filter is a substring wins; "*" and no filter match all; else fallback', () => {
    const rules: CoefficientSetting = [
      { filter: 'self_attn', value: [0, 1] },
      { filter: 'mlp', value: 0.5 },
      { filter: '*', value: 0.1 },
    ];
    expect(at(rules, 'encoder.layers.2.self_attn.q_proj.weight')).toBeCloseTo(0.5, 15);
    expect(at(rules, 'encoder.layers.4.mlp.fc1.weight')).toBe(0.5);
    expect(at(rules, 'encoder.layers.4.layer_norm1.weight')).toBe(0.1);
    expect(at([{ filter: 'mlp', value: 0.5 }], 'embeddings.x')).toBe(-1);
    expect(at([{ value: 0.2 }], 'embeddings.x')).toBe(0.2);
  });

  it('per_task: one setting per model, fallback for missing tasks', () => {
    const s: CoefficientSetting = { per_task: [0.3, [0, 1]] };
    expect(at(s, 'encoder.layers.4.w', 0)).toBe(0.3);
    expect(at(s, 'encoder.layers.4.w', 1)).toBe(1);
    expect(at(s, 'encoder.layers.4.w', 2)).toBe(-1);
  });

  it('table: per tensor x task, then the table default, then the fallback', () => {
    const s: CoefficientSetting = { table: { a: [0.1, 0.2] }, default: 0.9 };
    expect(at(s, 'a', 1)).toBe(0.2);
    expect(at(s, 'a', 2)).toBe(0.9);
    expect(at(s, 'b', 0)).toBe(0.9);
    expect(at({ table: { a: [0.1] } }, 'b', 0)).toBe(-1);
  });

  it('isUniform is true only for a plain number', () => {
    expect(isUniform(0.3)).toBe(true);
    expect(isUniform([0.3])).toBe(false);
    expect(isUniform({ per_task: [0.3] })).toBe(false);
  });
});

describe('validateCoefficient', () => {
  it('accepts every documented form', () => {
    expect(validateCoefficient('f', 0.3)).toBe(0.3);
    expect(validateCoefficient('f', [0.1, 0.5])).toEqual([0.1, 0.5]);
    expect(validateCoefficient('f', [{ filter: 'mlp', value: 0.5 }, { value: [0, 1] }])).toEqual([{ filter: 'mlp', value: 0.5 }, { value: [0, 1] }]);
    expect(validateCoefficient('f', { per_task: [0.1, [0, 1]] })).toEqual({ per_task: [0.1, [0, 1]] });
    expect(validateCoefficient('f', { table: { a: [1, 2] }, default: 0 })).toEqual({ table: { a: [1, 2] }, default: 0 });
  });

  it.each([
    ['a string', 'high', /^f: expected a number/],
    ['NaN', Number.NaN, /^f: /],
    ['an empty list', [], /^f: an empty list/],
    ['a rule that is not an object', [{ value: 1 }, 3], /^f\[1\]: expected \{"filter"/],
    ['a rule with an unknown key', [{ value: 1, weight: 2 }], /^f\[0\]\.weight: unknown key/],
    ['a non-string filter', [{ filter: 3, value: 1 }], /^f\[0\]\.filter: must be a string/],
    ['a rule without a numeric value', [{ filter: 'mlp', value: 'x' }], /^f\[0\]\.value: /],
    ['an empty per_task', { per_task: [] }, /^f\.per_task: must be a non-empty list/],
    ['a bad per_task entry', { per_task: [0.1, 'x'] }, /^f\.per_task\[1\]: /],
    ['a table that is a list', { table: [1] }, /^f\.table: must map/],
    ['a table row with strings', { table: { a: ['x'] } }, /^f\.table\["a"\]: must be a list of numbers/],
    ['a non-numeric table default', { table: {}, default: 'x' }, /^f\.default: must be a number/],
    ['per_task nested too deep', { per_task: [{ per_task: [{ per_task: [1] }] }] }, /^f\.per_task\[0\]\.per_task\[0\]: /],
  ])('rejects %s with a ConfigError naming the field', (_, v, pattern) => {
    expect(() => validateCoefficient('f', v)).toThrow(ConfigError);
    expect(() => validateCoefficient('f', v)).toThrow(pattern);
  });
});

describe('params', () => {
  const spec: MethodSpec = {
    id: 'demo',
    label: 'Demo',
    summary: 'test spec',
    source: 'tests',
    family: 'batch',
    models: { min: 1 },
    params: [
      { name: 'p', kind: 'number', default: 0.5, min: 0, max: 1, maxExclusive: true, description: 'rate' },
      { name: 'k', kind: 'number', default: 0.2, min: 0, max: 1, minExclusive: true, description: 'fraction' },
      { name: 'n', kind: 'integer', default: 2, min: 0, max: 10, description: 'count' },
      { name: 'on', kind: 'boolean', default: true, description: 'flag' },
      { name: 'mode', kind: 'enum', default: 'a', values: ['a', 'b'], description: 'mode' },
      { name: 'order', kind: 'order', default: 'given', description: 'order' },
      { name: 'alpha', kind: 'coefficient', default: 0.1, min: 0, max: 1, allowAuto: true, description: 'alpha' },
      { name: 'lambda', kind: 'coefficient', default: 0.3, min: 0, max: 1, description: 'lambda' },
    ],
  };
  const param = (name: string) => spec.params.find((p) => p.name === name) as ParamSpec;

  it('fills defaults and keeps valid values', () => {
    expect(resolveParams(spec)).toEqual({ p: 0.5, k: 0.2, n: 2, on: true, mode: 'a', order: 'given', alpha: 0.1, lambda: 0.3 });
    expect(resolveParams(spec, { p: 0, k: 1, n: 10, on: false, mode: 'b', order: [1, 0], alpha: 'auto', lambda: [0, 1] })).toEqual({
      p: 0, k: 1, n: 10, on: false, mode: 'b', order: [1, 0], alpha: 'auto', lambda: [0, 1],
    });
    expect(resolveParams(taskArithmetic, { lambda: { per_task: [0.1, 0.2] } }).lambda).toEqual({ per_task: [0.1, 0.2] });
  });

  it.each([
    [{ p: 1 }, /^params\.p: 1 is outside the allowed range \[0, 1\)/],
    [{ k: 0 }, /^params\.k: 0 is outside the allowed range \(0, 1\]/],
    [{ n: 1.5 }, /^params\.n: expected an integer in \[0, 10\]/],
    [{ n: '3' }, /^params\.n: expected a number/],
    [{ on: 'yes' }, /^params\.on: expected true or false/],
    [{ mode: 'c' }, /^params\.mode: expected one of a, b/],
    [{ order: [0, -1] }, /^params\.order: expected "given", "shuffle" or a list/],
    [{ lambda: 'auto' }, /^params\.lambda: /],
    [{ beta: 1 }, /^params\.beta: unknown parameter for method 'demo' \(allowed: p, k, n, on, mode, order, alpha, lambda\)/],
  ])('rejects %j', (raw, pattern) => {
    expect(() => resolveParams(spec, raw)).toThrow(ConfigError);
    expect(() => resolveParams(spec, raw)).toThrow(pattern);
  });

  it('shows ranges as intervals', () => {
    expect(rangeText(param('p') as Parameters<typeof rangeText>[0])).toBe('[0, 1)');
    expect(rangeText(param('k') as Parameters<typeof rangeText>[0])).toBe('(0, 1]');
    expect(validateParam(param('order'), 'shuffle')).toBe('shuffle');
  });

  it('parses --set texts: numbers, booleans, enum words, lists, JSON rules, "auto", orders', () => {
    expect(parseParamText(param('p'), ' 0.25 ')).toBe(0.25);
    expect(parseParamText(param('on'), 'false')).toBe(false);
    expect(parseParamText(param('mode'), 'b')).toBe('b');
    expect(parseParamText(param('lambda'), '0.1,0.5,1e-1')).toEqual([0.1, 0.5, 0.1]);
    expect(parseParamText(param('lambda'), '[{"filter":"mlp","value":0.5}]')).toEqual([{ filter: 'mlp', value: 0.5 }]);
    expect(parseParamText(param('alpha'), 'auto')).toBe('auto');
    expect(parseParamText(param('order'), '2,0,1')).toEqual([2, 0, 1]);
    expect(parseParamText(param('order'), 'shuffle')).toBe('shuffle');
    expect(() => parseParamText(param('lambda'), '{oops')).toThrow(/^params\.lambda: cannot read/);
  });
});
