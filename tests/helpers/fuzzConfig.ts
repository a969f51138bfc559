/**
 * Fuzz inputs for the merge config resolver, from a grammar over the method registry: every part of a config (format,
 * method, each parameter by its kind, coefficient settings in all their forms, options, stray keys such as
 * "__proto__") is written valid or wrong, and the input lists the fields it made wrong, so a ConfigError must name one
 * of them and a config with none must resolve. Configs reach the resolver as JSON text parsed by JSON.parse, as files and
 * links do. Plus the checks a resolved config must pass.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { configToJson, CONFIG_FORMAT, DEFAULT_OPTIONS, resolveConfig, type ResolvedConfig } from '../../src/engine/merge/config';
import type { ParamSpec } from '../../src/engine/methods/params';
import { METHODS } from '../../src/engine/methods/registry';
import { coefficientAt, type CoefficientSetting } from '../../src/engine/methods/scaling';
import { checkPlainTree, HOSTILE_KEYS, hostileJson, Obj, Raw, toJson, type J } from './fuzz';

/** A config as JSON text's parsed value, and the fields the grammar made wrong (empty: valid; null: unknown). */
export interface ConfigInput {
  raw: unknown;
  wrong: string[] | null;
}

/** A generated part: its JSON, and the fields it got wrong relative to where it is placed. */
interface Part {
  json: J;
  wrong: string[];
}

/** Mostly the valid choice: several wrong parts in one config would mostly hide each other. */
const either = (valid: fc.Arbitrary<Part>, wrong: fc.Arbitrary<Part>) => fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: wrong });
/** A stray key: present in about one config in ten. */
const rarely = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
const ok = (json: J): Part => ({ json, wrong: [] });
const bad = (json: J, wrong = ''): Part => ({ json, wrong: [wrong] });
const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true });
const NOT_NUMBERS: J[] = ['0.5', null, true, [1], new Obj([]), new Raw('1e400'), new Raw('-1e400')];

/** A per-layer gradient: a number or a non-empty list of numbers. */
const gradient: fc.Arbitrary<J> = fc.oneof(finite, fc.array(finite, { minLength: 1, maxLength: 4 }));
const name = fc.oneof(fc.constantFrom('mlp', 'layers.1.', '*', '', ...HOSTILE_KEYS), fc.string({ maxLength: 6 }));

/** Coefficient settings; `depth` counts the per_task levels above. */
function coefficient(depth: number, allowAuto: boolean): fc.Arbitrary<Part> {
  const rule = fc.record({ filter: fc.option(name, { nil: undefined }), value: gradient }).map(({ filter, value }) => new Obj(filter === undefined ? [['value', value]] : [['filter', filter], ['value', value]]));
  const table = fc.array(fc.tuple(name, fc.array(finite, { maxLength: 3 })), { maxLength: 4 }).map((rows) => {
    const seen = new Set<string>();
    return rows.filter(([k]) => !seen.has(k) && !!seen.add(k));
  });
  const valid: fc.Arbitrary<Part>[] = [
    gradient.map(ok),
    fc.array(rule, { minLength: 1, maxLength: 3 }).map(ok),
  ];
  // Objects (tables, per_task) are accepted down to two levels: {"per_task": [{"per_task": [...]}]}.
  if (depth < 2) {
    valid.push(fc.tuple(table, fc.option(finite, { nil: undefined })).map(([rows, d]) => ok(new Obj([['table', new Obj(rows)], ...(d === undefined ? [] : [['default', d] as [string, J]])]))));
    valid.push(fc.array(coefficient(depth + 1, false).filter((p) => p.wrong.length === 0), { minLength: 1, maxLength: 3 }).map((xs) => ok(new Obj([['per_task', xs.map((x) => x.json)]]))));
  }
  if (allowAuto) valid.push(fc.constant(ok('auto')));
  const invalid = fc.constantFrom<Part>(
    bad([]),
    bad('auto'),
    bad('0.3'),
    bad(null),
    bad(true),
    bad([1, 'x']),
    bad(new Raw('1e400')),
    bad([new Raw('1e400')]),
    bad([new Obj([['value', 1], ['extra', 2]])]),
    bad([new Obj([['filter', 5], ['value', 1]])]),
    bad([new Obj([['filter', 'x']])]),
    bad([1, new Obj([['value', 1]])]),
    bad(new Obj([['per_task', []]])),
    bad(new Obj([['per_task', 5]])),
    bad(new Obj([['table', []]])),
    bad(new Obj([['table', new Obj([['a', ['x']]])]])),
    bad(new Obj([['table', new Obj([])], ['default', 'x']])),
    bad(new Obj([])),
    bad(new Obj([['per_task', [new Obj([['per_task', [new Obj([['per_task', [1]]])]]])]]])),
  );
  return either(fc.oneof(...valid), allowAuto ? invalid.filter((p) => p.json !== 'auto') : invalid);
}

/** A value for parameter `p`, valid or wrong. */
function paramValue(p: ParamSpec): fc.Arbitrary<Part> {
  switch (p.kind) {
    case 'number':
    case 'integer': {
      const lo = p.minExclusive ? p.min + (p.kind === 'integer' ? 1 : 1e-9) : p.min;
      const hi = p.maxExclusive ? p.max - (p.kind === 'integer' ? 1 : 1e-9) : p.max;
      const inRange = p.kind === 'integer' ? fc.integer({ min: lo, max: hi }) : fc.double({ min: lo, max: hi, noNaN: true });
      const wrong: J[] = [...NOT_NUMBERS, p.min - 1, p.max + 1, ...(p.minExclusive ? [p.min] : []), ...(p.maxExclusive ? [p.max] : []), ...(p.kind === 'integer' ? [p.min + 0.5] : [])];
      return either(inRange.map(ok), fc.constantFrom(...wrong).map((j) => bad(j)));
    }
    case 'coefficient':
      return coefficient(0, !!p.allowAuto);
    case 'boolean':
      return either(fc.boolean().map(ok), fc.constantFrom<J>(0, 'true', null).map((j) => bad(j)));
    case 'enum':
      return either(fc.constantFrom(...p.values).map(ok), fc.constantFrom<J>('x', p.values[0]!.toUpperCase() + '!', 1, null, [p.values[0]!]).map((j) => bad(j)));
    case 'order':
      return either(fc.constantFrom('given', 'shuffle').map(ok), fc.constantFrom<J>('random', 5, null, new Obj([]), [-1], [0.5]).map((j) => bad(j)));
  }
}

/** The params object of a method: some of its parameters, maybe stray keys; or not an object at all. */
function params(specs: readonly ParamSpec[]): fc.Arbitrary<Part> {
  const entries = fc.tuple(...specs.map((p) => fc.option(paramValue(p), { nil: undefined }).map((v) => [p.name, v] as const)));
  const stray = rarely(fc.constantFrom(...HOSTILE_KEYS, 'lambda2', 'K'));
  const object = fc.tuple(entries, stray).map(([es, extra]) => {
    const pairs: [string, J][] = [];
    const wrong: string[] = [];
    for (const [k, v] of es) {
      if (!v) continue;
      pairs.push([k, v.json]);
      wrong.push(...v.wrong.map(() => `params.${k}`));
    }
    if (extra !== undefined && !specs.some((p) => p.name === extra)) {
      pairs.push([extra, 1]);
      wrong.push(`params.${extra}`);
    }
    return { json: new Obj(pairs), wrong };
  });
  return fc.oneof({ weight: 6, arbitrary: object }, { weight: 1, arbitrary: fc.constantFrom<J>([], 'x', 1, null).map((j) => bad(j, 'params')) });
}

/** The options object: each option valid or wrong, maybe a stray key; or not an object. */
const options: fc.Arbitrary<Part> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record(
        {
          outputDtype: either(fc.constantFrom('base', 'F32', 'F16', 'BF16').map(ok), fc.constantFrom<J>('F64', 'f32', 1, null).map((j) => bad(j, 'options.outputDtype'))),
          extraBaseTensors: either(fc.constantFrom('passthrough', 'ignore').map(ok), fc.constantFrom<J>('copy', true).map((j) => bad(j, 'options.extraBaseTensors'))),
          mixedDtypes: either(fc.boolean().map(ok), fc.constantFrom<J>('yes', 1).map((j) => bad(j, 'options.mixedDtypes'))),
          chunkElements: either(fc.integer({ min: 1, max: 4096 }).map((k) => ok(k * 1024)), fc.constantFrom<J>(1000, 0, -1024, 1024.5, '4096', new Raw('1e400')).map((j) => bad(j, 'options.chunkElements'))),
          stray: rarely(fc.constantFrom(...HOSTILE_KEYS, 'dtype').map((k) => bad(1, `options.${k}`))),
        },
        { requiredKeys: ['stray'] },
      )
      .map((all) => {
        const o = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<string, Part>;
        const pairs = Object.entries(o).map(([k, v]) => [k === 'stray' ? v.wrong[0]!.slice('options.'.length) : k, v.json] as [string, J]);
        return { json: new Obj(pairs), wrong: Object.entries(o).flatMap(([k, v]) => v.wrong.map((w) => w || `options.${k}`)) };
      }),
  },
  { weight: 1, arbitrary: fc.constantFrom<J>([], 'fast', null).map((j) => bad(j, 'options')) },
);

/** Whole configs from the grammar; about a third are valid. */
export const grammarConfig: fc.Arbitrary<ConfigInput> = fc
  .tuple(fc.constantFrom(...METHODS), fc.nat())
  .chain(([m, pick]) =>
    fc.record(
      {
        format: either(fc.constant(ok(CONFIG_FORMAT)), fc.constantFrom<J>('merge-playground/merge@2', 1, null).map((j) => bad(j, 'format'))),
        method: fc.oneof({ weight: 8, arbitrary: fc.constant(ok(m.id)) }, { weight: 1, arbitrary: fc.constantFrom<J>('Task_Arithmetic', '', 5, null, ...HOSTILE_KEYS).map((j) => bad(j, 'method')) }),
        params: params(m.params),
        options,
        stray: rarely(fc.constantFrom(...HOSTILE_KEYS, 'methods').map((k) => bad(1, k))),
      },
      { requiredKeys: pick % 8 === 0 ? ['stray'] : ['method', 'stray'] },
    ),
  )
  .map((all) => {
    const parts = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<string, Part>;
    const pairs: [string, J][] = [];
    const wrong: string[] = [];
    for (const [k, part] of Object.entries(parts)) {
      pairs.push([k === 'stray' ? part.wrong[0]! : k, part.json]);
      wrong.push(...part.wrong.map((w) => w || k));
    }
    if (!('method' in parts)) wrong.push('method');
    return { raw: JSON.parse(toJson(new Obj(pairs))) as unknown, wrong };
  });

/** Random JSON: as a whole config, or in the place of one parameter or option of a valid config. */
export const randomConfig: fc.Arbitrary<ConfigInput> = fc.oneof(
  hostileJson().map((raw) => ({ raw, wrong: null })),
  fc
    .constantFrom(...METHODS.filter((m) => m.params.length))
    .chain((m) => fc.tuple(fc.constant(m), fc.constantFrom(...m.params), hostileJson()))
    .map(([m, p, v]) => ({ raw: JSON.parse(`{"method":${JSON.stringify(m.id)},"params":{${JSON.stringify(p.name)}:${JSON.stringify(v)}}}`) as unknown, wrong: [`params.${p.name}`] })),
  fc
    .tuple(fc.constantFrom(...Object.keys(DEFAULT_OPTIONS)), hostileJson())
    .map(([k, v]) => ({ raw: JSON.parse(`{"method":"task_arithmetic","options":{${JSON.stringify(k)}:${JSON.stringify(v)}}}`) as unknown, wrong: [`options.${k}`] })),
);

/** Sites at which coefficient settings are evaluated: ordinary, layered and prototype-named tensors. */
const SITES = ['model.layers.3.mlp.fc1.weight', 'embeddings.weight', ...HOSTILE_KEYS, 'length', '0'];

/** Every own row of a coefficient table is the value at its tensor; every evaluation is a finite number. */
export function checkCoefficient(input: unknown, setting: CoefficientSetting): void {
  checkPlainTree(setting, 'setting');
  for (const tensor of SITES) for (let task = 0; task < 3; task++) expect(Number.isFinite(coefficientAt(setting, { tensor, task, layers: 8 }, 0.5))).toBe(true);
  if (typeof input === 'object' && input !== null && !Array.isArray(input) && 'table' in input) {
    const table = (input as { table: Record<string, number[]> }).table;
    for (const [tensor, row] of Object.entries(table)) row.forEach((v, task) => expect(coefficientAt(setting, { tensor, task, layers: 8 }, 0.5), `table row "${tensor}"`).toBe(v));
  }
}

/**
 * What every resolved config must satisfy: the named method, exactly its parameters (given values kept, the rest
 * defaulted), complete options, no replaced prototypes, and a JSON round trip through configToJson to the same config.
 */
export function checkResolved(r: ResolvedConfig, raw: unknown): void {
  const input = raw as { method: string; params?: Record<string, unknown>; options?: Record<string, unknown> };
  expect(r.method.id).toBe(input.method);
  expect(Object.keys(r.params).sort()).toEqual(r.method.params.map((p) => p.name).sort());
  for (const p of r.method.params) {
    const given = input.params?.[p.name];
    expect(r.params[p.name], p.name).toEqual(given === undefined ? p.default : given);
    if (p.kind === 'coefficient' && r.params[p.name] !== 'auto') checkCoefficient(given, r.params[p.name] as CoefficientSetting);
  }
  expect(r.options).toEqual({ ...DEFAULT_OPTIONS, ...input.options });
  checkPlainTree(r.params, 'params');
  checkPlainTree(r.options, 'options');
  const again = resolveConfig(JSON.parse(JSON.stringify(configToJson(r))));
  expect(again.method).toBe(r.method);
  expect(again.params).toEqual(r.params);
  expect(again.options).toEqual(r.options);
}
