/**
 * Fuzzing the decoders of untrusted experiments (seeded, bounded): share links built from a grammar of real and hostile
 * keys and values, mutated valid links, mergekit YAML (mutated exports and random structures) and experiment/CLI JSON
 * files. Every input is either accepted, and then re-validates and re-encodes to itself, or rejected with a ConfigError
 * naming a field; never another exception, a slow input, or a polluted prototype.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect } from 'vitest';
import { importConfigObject } from '../../src/app/configFile';
import { validateExperiment, type Experiment } from '../../src/app/experiment';
import { exportMergekitYaml, importMergekitYaml } from '../../src/app/mergekit';
import { decodeShareLink, encodeShareLink, RESERVED_KEYS, type DecodedLink } from '../../src/app/shareLink';
import { METHODS, getMethod } from '../../src/engine/methods/registry';
import { experimentArb, doubleArb, nameArb, paramArb, sourceArb } from '../helpers/experimentArbitrary';
import { checkPlainTree, configErrorNaming, fuzzCase, HOSTILE_KEYS, HOSTILE_NAMES, hostileJson, guardPrototypes } from '../helpers/fuzz';
import { grammarConfig, type ConfigInput } from '../helpers/fuzzConfig';

guardPrototypes();

/** What every accepted experiment must satisfy: plain objects only, a fixed point of validation, and (when it fits in a link) an exact link round trip. */
function checkDecoded({ experiment, warnings }: DecodedLink): void {
  checkPlainTree(experiment, 'experiment');
  expect(warnings.every((w) => typeof w === 'string')).toBe(true);
  expect(validateExperiment(experiment)).toEqual(experiment);
  expect(decodeShareLink(encodeShareLink(experiment)).experiment).toEqual(experiment);
}

const PARAM_NAMES = [...new Set(METHODS.flatMap((m) => m.params.map((p) => p.name)))];
const KEYS = [...RESERVED_KEYS, ...PARAM_NAMES, 'view.tab', 'view.normalized', 'view.sweep', 'view.zoom', 'view.__proto__', ...HOSTILE_KEYS, 'token', 'hf_token', 'endpoint', 'v2', '', 'a=b', '%7E'];
const VALUES = [
  ...['1', '0', '-0', '1e400', '-1e-400', '0.5,0.7', '[0.1]', '{"per_task":[1,[0.2,0.4]]}', '{"table":{"__proto__":[1]}}', 'auto', 'given', 'shuffle', '2,0,1'],
  ...['true', 'false', 'all', 'ties', 'slerp', 'opcm', 'demo:a', '!demo:a,local:%3Cb%3E', 'org/x@main', 'org/x@0123456789abcdef0123456789abcdef01234567', 'F16'],
  ...['https://evil.example', '%', '%ZZ', '%E0%A4', '%ED%A0%80', 'hf_AAAAAAAAAAAAAAAAAAAAAAAA', 'Bearer x', `${'['.repeat(20)}`, '{"__proto__":{"polluted":1}}', ',,', '!', 'local:'],
];
const encodeAny = (s: string) => encodeURIComponent(s);

/** Links from a grammar of real and hostile keys and values (raw or percent-encoded), with or without a version. */
const grammarLink: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('#', ''),
    fc.oneof({ weight: 8, arbitrary: fc.constant('v=1') }, { weight: 1, arbitrary: fc.constantFrom('v=2', 'v=', 'v=1.0', '') }),
    fc.array(
      fc.tuple(
        fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }),
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...VALUES) },
          { weight: 2, arbitrary: doubleArb.map(String) },
          { weight: 2, arbitrary: nameArb.map(encodeAny) },
          { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_NAMES) },
          { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
        ),
      ),
      { maxLength: 6 },
    ),
  )
  .map(([hash, v, pairs]) => `${hash}${[v, ...pairs.map(([k, x]) => `${k}=${x}`)].filter(Boolean).join('&')}`);

/** Text edits: insertions of separators, escapes and brackets, deletions, truncations, replacements. */
const SPECIALS = ['%', '&', '=', ',', '!', '#', '[', ']', '{', '}', '"', '\\', '%2', '%00', '&v=1', '&&', 'é', '\uD800', ': ', '- ', '&a ', '*a', '!!str ', '<<: ', '---\n', '\n', '  ', '\t', '{', 'null'];
type Edit = { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number; count: number } | { kind: 'truncate'; at: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...SPECIALS), fc.string({ maxLength: 3 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
);
function applyEdits(text: string, edits: readonly Edit[]): string {
  let s = text;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    if (e.kind === 'insert') s = s.slice(0, at) + e.text + s.slice(at);
    else if (e.kind === 'delete') s = s.slice(0, at) + s.slice(at + e.count);
    else s = s.slice(0, at);
  }
  return s;
}
const edited = (valid: fc.Arbitrary<string>) => fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([t, es]) => applyEdits(t, es));

/** Experiments mergekit can express (supported method, no tables, a compatible merge), as YAML. */
const MERGEKIT_METHODS = ['simple_average', 'task_arithmetic', 'ties', 'dare', 'breadcrumbs', 'model_stock', 'slerp'].map(getMethod);
const mergekitYaml: fc.Arbitrary<string> = fc
  .constantFrom(...MERGEKIT_METHODS)
  .chain((m) =>
    fc.tuple(
      fc.constant(m),
      fc.array(sourceArb, { minLength: m.id === 'slerp' ? 2 : 1, maxLength: m.id === 'slerp' ? 2 : 4 }),
      fc.tuple(...m.params.map((p) => fc.option(p.kind === 'coefficient' ? paramArb(p, 0).filter((v) => !(typeof v === 'object' && v !== null && 'table' in v)) : paramArb(p, 0), { nil: undefined }))),
    ),
  )
  .map(([m, models, values]) => {
    const params = Object.fromEntries(m.params.map((p, i) => [p.name, values[i]]).filter(([, v]) => v !== undefined));
    try {
      return exportMergekitYaml(validateExperiment({ method: m.id, models: models.map((source) => ({ source, enabled: true })), params })).yaml;
    } catch {
      return null;
    }
  })
  .filter((y): y is string => y !== null);

/** Mostly a plausible value, sometimes a hostile one. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) => fc.oneof({ weight: 5, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: bad });
const settingArb = fc.oneof(fc.double({ min: 0.01, max: 1, noNaN: true }), fc.array(fc.double({ min: 0.01, max: 1, noNaN: true }), { minLength: 2, maxLength: 3 }));

/** Random mergekit-shaped documents: plausible keys and values, with hostile keys and values mixed in. */
const randomMergekit: fc.Arbitrary<string> = fc
  .record(
    {
      merge_method: mostly(fc.constantFrom('linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'model_stock', 'slerp'), fc.oneof(fc.constantFrom('breadcrumbs_ties', 'della'), hostileJson())),
      base_model: mostly(fc.constantFrom('org/base', 'public/demo/base/model.safetensors'), hostileJson()),
      models: fc.array(
        fc.record(
          {
            model: mostly(fc.constantFrom('org/a', 'org/b@v1', 'org/base', 'public/demo/models/x.safetensors', './local/model'), fc.oneof(fc.constant('a+b'), hostileJson())),
            parameters: fc.oneof(
              { weight: 4, arbitrary: fc.record({ weight: fc.constantFrom(1, 0.5), density: fc.constant(0.5) }, { requiredKeys: ['weight'] }) },
              { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('weight', 'density', 'gamma', 't', ...HOSTILE_KEYS), mostly(settingArb, hostileJson()), { maxKeys: 3 }) },
            ),
          },
          { requiredKeys: ['model'] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      parameters: fc.oneof(
        { weight: 4, arbitrary: fc.record({ normalize: fc.boolean(), lambda: settingArb, int8_mask: fc.boolean() }, { requiredKeys: [] }) },
        { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('rescale', 't', 'filter_wise', ...HOSTILE_KEYS), mostly(fc.oneof(fc.boolean(), settingArb), hostileJson()), { maxKeys: 3 }) },
      ),
      dtype: mostly(fc.constantFrom('float32', 'bfloat16'), fc.constant('int4')),
      out_dtype: mostly(fc.constantFrom('float16', 'bfloat16'), fc.constant('fp8')),
    },
    { requiredKeys: ['merge_method', 'models'] },
  )
  .map((doc) => stringify(doc));

/** YAML imports are checked like links; their exports (when mergekit can express them) read back to the same experiment. */
function checkYaml(r: DecodedLink): void {
  checkDecoded(r);
  let yaml: string | null = null;
  try {
    yaml = exportMergekitYaml(r.experiment).yaml;
  } catch {
    return; // e.g. per-task lambdas with merge "mean": mergekit has no form of them
  }
  expect(importMergekitYaml(yaml, r.experiment).experiment).toEqual(r.experiment);
}

/** Any rejection must be a ConfigError naming a field. */
const rejects = configErrorNaming<string>();

describe('fuzz: share links, experiment files and mergekit YAML', () => {
  fuzzCase({ category: 'fuzz-share-link', name: 'share link decoder: links from a grammar of real and hostile keys and values', input: grammarLink, parse: decodeShareLink, rejects, accepted: checkDecoded, numRuns: 500, minShare: 0.05 });

  fuzzCase({
    category: 'fuzz-share-link',
    name: 'share link decoder: valid links after random edits',
    input: edited(experimentArb.map((e: Experiment) => encodeShareLink(e))),
    parse: decodeShareLink,
    rejects,
    accepted: checkDecoded,
    numRuns: 500,
    minShare: 0.05,
  });

  fuzzCase({ category: 'fuzz-share-link', name: 'mergekit YAML import: exported configs after random edits', input: edited(mergekitYaml), parse: (y) => importMergekitYaml(y), rejects, accepted: checkYaml, numRuns: 500, minShare: 0.05 });

  fuzzCase({ category: 'fuzz-share-link', name: 'mergekit YAML import: random mergekit-shaped documents', input: randomMergekit, parse: (y) => importMergekitYaml(y), rejects, accepted: checkYaml, numRuns: 500, minShare: 0.05 });

  fuzzCase({
    category: 'fuzz-share-link',
    name: 'config file import: CLI configs from the config grammar, and random JSON',
    input: fc.oneof(grammarConfig, hostileJson().map((raw): ConfigInput => ({ raw, wrong: null }))),
    parse: (c) => importConfigObject(c.raw),
    rejects: configErrorNaming<ConfigInput>(),
    valid: (c) => (c.wrong === null ? undefined : c.wrong.length === 0) as boolean,
    accepted: (r) => checkDecoded(r),
    numRuns: 500,
  });
});
