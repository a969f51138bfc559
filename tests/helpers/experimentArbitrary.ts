/**
 * Random valid Experiments for the share-link, config-file and mergekit tests: every method, every parameter kind with
 * values across its range (boundaries, -0, subnormals, the largest doubles), coefficient settings in every form
 * (per-layer lists, filter rules, per_task, tables keyed by hostile names), model sources of every kind with names
 * full of separators, HTML and non-ASCII text, and every view and evaluation setting.
 */
import fc from 'fast-check';
import { validateExperiment, VIEW_FIELDS, type Experiment, type ModelSource } from '../../src/app/experiment';
import type { ParamSpec } from '../../src/engine/methods/params';
import { METHODS } from '../../src/engine/methods/registry';
import { HOSTILE_KEYS, HOSTILE_NAMES } from './fuzz';

/** Characters that a link must escape, and text a page must never interpret. */
const TRICKY = ['a,b', 'a&b=c', '100%', '!x', '#frag', 'a+b c', 'ünïcødé', '模型', '🙂', "it's (1)*", 'x?y=z', '%41'];

/** A display name: hostile, tricky, at the length limit, or random (printable, 1..40 characters). */
export const nameArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_NAMES, ...TRICKY),
  fc.integer({ min: 250, max: 255 }).map((n) => `${'long-name.'.repeat(26).slice(0, n - 12)}.safetensors`),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && !/\bhf_[A-Za-z0-9]{20,}/.test(s)),
);

const hex40 = fc.array(fc.constantFrom(...'0123456789abcdef'), { minLength: 40, maxLength: 40 }).map((a) => a.join(''));
const part = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_]{0,11}$/);

export const sourceArb: fc.Arbitrary<ModelSource> = fc.oneof(
  fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/).map((id) => ({ kind: 'demo' as const, id })),
  fc.record({ org: part, name: part, revision: fc.oneof(hex40, fc.constantFrom('main', 'v1.0', 'refs/pr/3')) }).map(({ org, name, revision }) => ({ kind: 'hub' as const, repo: `${org}/${name}`, revision })),
  nameArb.map((name) => ({ kind: 'local' as const, name })),
);

/** Any finite double, with the edge cases weighted in. */
export const doubleArb: fc.Arbitrary<number> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 5e-324, -5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 1e21, 1e-7, 123456789.123),
);

const gradientArb = fc.oneof(doubleArb, fc.array(doubleArb, { minLength: 1, maxLength: 4 }));
const filterArb = fc.oneof(fc.constantFrom('mlp', 'attn', 'layers.1.', '*', ...HOSTILE_KEYS), nameArb);
const ruleArb = fc.record({ filter: fc.option(filterArb, { nil: undefined }), value: gradientArb }).map(({ filter, value }) => (filter === undefined ? { value } : { filter, value }));
const rulesArb = fc.array(ruleArb, { minLength: 1, maxLength: 3 });
const tableArb = fc
  .tuple(fc.uniqueArray(fc.oneof(fc.constantFrom(...HOSTILE_KEYS, 'vision.layers.0.mlp.fc1.weight'), nameArb), { maxLength: 3 }), fc.option(doubleArb, { nil: undefined }))
  .chain(([names, d]) =>
    fc.tuple(...names.map(() => fc.array(doubleArb, { maxLength: 3 }))).map((rows) => {
      // As JSON.parse builds it: "__proto__" an own key, not the prototype.
      const table: Record<string, number[]> = {};
      names.forEach((n, i) => Object.defineProperty(table, n, { value: rows[i], enumerable: true, writable: true, configurable: true }));
      return d === undefined ? { table } : { table, default: d };
    }),
  );

/** Coefficient settings in every form; `tables` off for targets that cannot hold them (mergekit). */
export function coefficientArb(allowAuto: boolean, tables = true): fc.Arbitrary<unknown> {
  const flat = fc.oneof(gradientArb, rulesArb);
  const forms: fc.Arbitrary<unknown>[] = [gradientArb, gradientArb, rulesArb, fc.array(flat, { minLength: 1, maxLength: 3 }).map((per_task) => ({ per_task }))];
  if (tables) forms.push(tableArb);
  if (allowAuto) forms.push(fc.constant('auto'));
  return fc.oneof(...forms);
}

/** A valid value of one parameter (`count`: enabled models, for explicit merge orders). */
export function paramArb(p: ParamSpec, count: number): fc.Arbitrary<unknown> {
  switch (p.kind) {
    case 'number':
    case 'integer': {
      const lo = p.minExclusive ? (p.kind === 'integer' ? p.min + 1 : p.min + Number.EPSILON) : p.min;
      const hi = p.maxExclusive ? (p.kind === 'integer' ? p.max - 1 : p.max - Number.EPSILON) : p.max;
      return p.kind === 'integer' ? fc.integer({ min: lo, max: hi }) : fc.oneof(fc.double({ min: lo, max: hi, noNaN: true }), fc.constantFrom(lo, hi));
    }
    case 'coefficient':
      return coefficientArb(!!p.allowAuto);
    case 'boolean':
      return fc.boolean();
    case 'enum':
      return fc.constantFrom(...p.values);
    case 'order': {
      const words = fc.constantFrom('given', 'shuffle');
      return count > 0 ? fc.oneof(words, fc.shuffledSubarray([...Array(count).keys()], { minLength: count, maxLength: count })) : words;
    }
  }
}

const viewArb = fc.record(
  Object.fromEntries(
    Object.entries(VIEW_FIELDS).map(([k, f]) => [k, f.kind === 'enum' ? fc.constantFrom(...f.values) : f.kind === 'boolean' ? fc.boolean() : fc.integer({ min: f.min, max: f.max })]),
  ) as Record<string, fc.Arbitrary<string | boolean | number>>,
);

/** Valid experiments, as validateExperiment returns them. */
export const experimentArb: fc.Arbitrary<Experiment> = fc
  .record({
    method: fc.constantFrom(...METHODS),
    models: fc.array(fc.record({ source: sourceArb, enabled: fc.boolean() }), { maxLength: 5 }),
    base: fc.oneof(fc.constant<ModelSource>({ kind: 'demo', id: 'base' }), sourceArb),
    outputDtype: fc.constantFrom('base', 'F32', 'F16', 'BF16'),
    evaluation: fc.record({ liveSamples: fc.integer({ min: 1, max: 100_000 }), settledSamples: fc.oneof(fc.constant('all'), fc.integer({ min: 1, max: 1_000_000 })), seed: fc.integer({ min: 0, max: 4294967295 }) }),
    view: viewArb,
    data: fc.array(
      fc.record({ org: part, name: part, revision: fc.oneof(hex40, fc.constantFrom('main', 'refs/convert/parquet')) }).map(({ org, name, revision }) => `datasets/${org}/${name}@${revision}`),
      { maxLength: 4 },
    ),
  })
  .chain((r) => {
    const count = r.models.filter((m) => m.enabled).length;
    const entries = r.method.params.map((p) => fc.option(paramArb(p, r.models.length ? count : 0), { nil: undefined }).map((v) => [p.name, v] as const));
    return fc.tuple(...entries).map((es) => {
      const params = Object.fromEntries(es.filter(([, v]) => v !== undefined));
      return validateExperiment({ ...r, method: r.method.id, params });
    });
  });
