/**
 * Fuzzing the merge config resolver and coefficient settings (seeded, bounded): grammar-built configs resolve exactly
 * when flawless, and a rejection is a ConfigError naming one of the fields the grammar made wrong; random JSON (with
 * "__proto__", "constructor" and other prototype keys) either resolves to a config that passes every check or is a
 * ConfigError naming a field. Never another exception, never a polluted or replaced prototype.
 */
import { describe } from 'vitest';
import { resolveConfig } from '../../src/engine/merge/config';
import { validateCoefficient } from '../../src/engine/methods/scaling';
import { configErrorNaming, fuzzCase, guardPrototypes, hostileJson } from '../helpers/fuzz';
import { checkCoefficient, checkResolved, grammarConfig, randomConfig, type ConfigInput } from '../helpers/fuzzConfig';

guardPrototypes();

const rejects = configErrorNaming<ConfigInput>((c) => c.wrong);

describe('fuzz: merge config', () => {
  fuzzCase({
    category: 'fuzz-config',
    name: 'grammar configs: flawless ones resolve, a flawed one names a wrong field',
    input: grammarConfig,
    parse: (c) => resolveConfig(c.raw),
    rejects,
    valid: (c) => c.wrong!.length === 0,
    accepted: (r, c) => checkResolved(r, c.raw),
    numRuns: 3000,
    minShare: 0.15,
  });

  fuzzCase({
    category: 'fuzz-config',
    name: 'random JSON as a config, a parameter or an option',
    input: randomConfig,
    parse: (c) => resolveConfig(c.raw),
    rejects,
    accepted: (r, c) => checkResolved(r, c.raw),
    numRuns: 3000,
  });

  fuzzCase({
    category: 'fuzz-config',
    name: 'random JSON as a coefficient setting',
    input: hostileJson(),
    parse: (v) => validateCoefficient('params.lambda', v),
    rejects: configErrorNaming(() => ['params.lambda']),
    accepted: (setting, v) => checkCoefficient(v, setting),
    numRuns: 3000,
  });
});
