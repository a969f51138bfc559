/**
 * mergekit YAML: golden exports, export/import round trips for every method both tools have, imports of configs
 * written the way mergekit users write them, refusals that name the field, and YAML alias bombs.
 */
import { describe, expect, it } from 'vitest';
import { defaultExperiment, validateExperiment, type Experiment } from '../../src/app/experiment';
import { exportMergekitYaml, importMergekitYaml, MAX_YAML_BYTES } from '../../src/app/mergekit';
import { METHODS } from '../../src/engine/methods/registry';
import { expectConfigError, prototypeSnapshot } from '../helpers/fuzz';
import { reliabilityCase } from '../helpers/reliability';

const DEMO = ['demo:fashion-noise', 'demo:digits-dim', 'demo:tops-lowres'];
const exp = (raw: Record<string, unknown>) => validateExperiment({ models: DEMO, ...raw });
const back = (e: Experiment) => importMergekitYaml(exportMergekitYaml(e).yaml);

describe('mergekit YAML export', () => {
  it('golden: TIES with a filtered per-layer lambda, pinned Hub revision and bfloat16 output', () => {
    const e = validateExperiment({
      method: 'ties',
      params: { k: 0.5, merge: 'mean', scope: 'tensor', lambda: [{ filter: 'mlp', value: [0.2, 0.6, 1] }, { filter: 'self_attn', value: 0.4 }] },
      models: ['demo:fashion-noise', 'org/vit-finetune@0123456789abcdef0123456789abcdef01234567'],
      outputDtype: 'BF16',
    });
    const { yaml, warnings } = exportMergekitYaml(e);
    expect(warnings).toEqual([]);
    expect(yaml).toBe(`# Merge Playground experiment (ties) for mergekit.
# Demo models are single .safetensors files: merge them with mergekit-pytorch, or replace the paths.

merge_method: ties
base_model: public/demo/base/model.safetensors
models:
  - model: public/demo/models/fashion-noise.safetensors
    parameters:
      weight: 1
      density: 0.5
  - model: org/vit-finetune@0123456789abcdef0123456789abcdef01234567
    parameters:
      weight: 1
      density: 0.5
parameters:
  normalize: true
  lambda:
    - filter: mlp
      value: [ 0.2, 0.6, 1 ]
    - filter: self_attn
      value: 0.4
    - value: 0.3
dtype: float32
out_dtype: bfloat16
`);
  });

  it("golden: SLERP with mergekit's gradient example (per-filter t across layers)", () => {
    const t = [{ filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] }, { filter: 'mlp', value: [1, 0.5, 0.7, 0.3, 0] }, { value: 0.5 }];
    const e = validateExperiment({ method: 'slerp', params: { t }, models: ['org/model-a', 'org/model-b@v2'] });
    expect(exportMergekitYaml(e)).toEqual({
      warnings: [],
      yaml: `# Merge Playground experiment (slerp) for mergekit.

merge_method: slerp
base_model: org/model-a
models:
  - model: org/model-a
  - model: org/model-b@v2
parameters:
  t:
    - filter: self_attn
      value: [ 0, 0.5, 0.3, 0.7, 1 ]
    - filter: mlp
      value: [ 1, 0.5, 0.7, 0.3, 0 ]
    - value: 0.5
dtype: float32
`,
    });
  });

  it('uses the demo models when the experiment lists none, and leaves toggled-out models out', () => {
    const yaml = exportMergekitYaml(defaultExperiment(), [{ kind: 'demo', id: 'a' }, { kind: 'demo', id: 'b' }]).yaml;
    expect(yaml).toContain('  - model: public/demo/models/a.safetensors\n    parameters:\n      weight: 1\n  - model: public/demo/models/b.safetensors');
    const off = exportMergekitYaml(validateExperiment({ models: ['demo:a', { source: 'demo:b', enabled: false }] }));
    expect(off.yaml).not.toContain('b.safetensors');
    expect(off.warnings).toEqual(['1 model(s) toggled out of the merge are left out of the YAML']);
    expect(off.yaml).toContain('# Note: 1 model(s) toggled out of the merge are left out of the YAML.');
    expect(expectConfigError(() => exportMergekitYaml(defaultExperiment())).field).toBe('models');
  });

  it('warns where mergekit computes something else, and says how to match', () => {
    expect(exportMergekitYaml(exp({ method: 'ties' })).warnings.join(' ')).toMatch(/scope "global".*set scope to tensor/);
    expect(exportMergekitYaml(exp({ method: 'breadcrumbs' })).warnings.join(' ')).toMatch(/scope "row".*set scope to tensor/);
    const dare = exportMergekitYaml(exp({ method: 'dare', params: { then: 'ties', linear_only: true } })).warnings.join(' ');
    expect(dare).toMatch(/random-seed/);
    expect(dare).toMatch(/k = 0.2 is not exported/);
    expect(dare).toMatch(/linear_only is not exported/);
    expect(exportMergekitYaml(exp({ method: 'model_stock', params: { angle: 'angle' } })).warnings.join(' ')).toMatch(/averages the angles/);
  });

  it('refuses methods and settings mergekit has no form of, naming the field', () => {
    const without = METHODS.filter((m) => !['simple_average', 'task_arithmetic', 'ties', 'dare', 'breadcrumbs', 'model_stock', 'slerp'].includes(m.id));
    expect(without.map((m) => m.id).sort()).toEqual(['consensus', 'continual_average', 'continual_magmax', 'continual_task_arithmetic', 'continual_ties', 'lines', 'magmax', 'opcm', 'tall_masks']);
    for (const m of without) expect(expectConfigError(() => exportMergekitYaml(exp({ method: m.id }))).message).toMatch(new RegExp(`^method: mergekit has no .* \\(${m.id}\\)`));
    expect(expectConfigError(() => exportMergekitYaml(exp({ params: { lambda: { table: { 'a.weight': [1, 2, 3] } } } }))).message).toMatch(/^params\.lambda: a coefficient table/);
    expect(expectConfigError(() => exportMergekitYaml(exp({ method: 'ties', params: { merge: 'max' } }))).field).toBe('params.merge');
    expect(expectConfigError(() => exportMergekitYaml(exp({ method: 'ties', params: { merge: 'mean', lambda: { per_task: [0.1, 0.2, 0.3] } } }))).field).toBe('params.lambda');
    expect(expectConfigError(() => exportMergekitYaml(exp({ method: 'slerp' }))).message).toBe('models: slerp needs exactly 2 models, got 3');
  });
});

describe('mergekit YAML round trips', () => {
  // Experiments mergekit expresses exactly: importing the export gives them back, with no warning on export.
  const exact: Record<string, unknown>[] = [
    { method: 'simple_average' },
    { method: 'task_arithmetic', params: { lambda: [0.1, 0.4, 0.9] } },
    { method: 'task_arithmetic', params: { lambda: { per_task: [0.2, [0.1, 0.5], [{ filter: 'mlp', value: 0.7 }, { value: 0.3 }]] } } },
    { method: 'ties', params: { k: 0.35, scope: 'tensor', lambda: 1 } },
    { method: 'ties', params: { k: 0.1, scope: 'tensor', merge: 'mean', lambda: [{ filter: 'attn', value: [0.5, 1] }, { value: 0.8 }] } },
    { method: 'breadcrumbs', params: { density: 0.9, gamma: 0.01, scope: 'tensor', lambda: 0.5 } },
    { method: 'model_stock' },
    { method: 'slerp', params: { t: [0, 0.3, 1] }, models: ['demo:a', 'org/b@main'] },
    { method: 'task_arithmetic', outputDtype: 'F16', models: ['org/x@0123456789abcdef0123456789abcdef01234567', 'local:my-finetune.safetensors'] },
  ];
  for (const raw of exact) {
    it(`${raw.method as string} ${JSON.stringify(raw.params ?? {})}`, () => {
      const e = exp(raw);
      expect(exportMergekitYaml(e).warnings).toEqual([]);
      expect(back(e).experiment).toEqual(e);
    });
  }

  it('DARE (dare_linear, dare_ties) round-trips, with the random-mask caveat', () => {
    for (const raw of [
      { method: 'dare', params: { p: 0.33, rescale: false, lambda: 0.7 } },
      { method: 'dare', params: { p: 0.9, then: 'ties', k: 1, scope: 'tensor' } },
      { method: 'dare', params: { p: 0.1, then: 'ties', k: 1, scope: 'tensor', merge: 'mean', lambda: 0.5 } },
    ]) {
      const e = exp(raw);
      const r = back(e);
      expect(r.experiment).toEqual(e);
      expect(r.warnings.join(' ')).toMatch(/agree in expectation only/);
    }
  });
});

describe('mergekit YAML import', () => {
  it('reads a TIES config as mergekit users write it (base listed among the models)', () => {
    const { experiment, warnings } = importMergekitYaml(`models:
  - model: org/base-model
    # no parameters necessary for base model
  - model: org/math-model
    parameters:
      density: 0.5
      weight: 0.5
  - model: org/chat-model
    parameters:
      density: 0.5
      weight: 0.5
merge_method: ties
base_model: org/base-model
parameters:
  normalize: true
  int8_mask: true
dtype: float16
tokenizer_source: union
`);
    expect(experiment.base).toEqual({ kind: 'hub', repo: 'org/base-model', revision: 'main' });
    expect(experiment.models.map((m) => m.source)).toEqual([
      { kind: 'hub', repo: 'org/math-model', revision: 'main' },
      { kind: 'hub', repo: 'org/chat-model', revision: 'main' },
    ]);
    // Equal weights cancel under normalize; mergekit's lambda defaults to 1.
    expect(experiment.params).toEqual({ k: 0.5, merge: 'mean', scope: 'tensor', lambda: 1 });
    expect(warnings).toEqual(['tokenizer_source is ignored (the playground merges weights only)', 'dtype float16 is ignored: the playground computes in float32']);
  });

  it('folds per-model filtered weights into a per-task lambda (normalize: false)', () => {
    const { experiment } = importMergekitYaml(`merge_method: ties
base_model: org/base
models:
  - model: org/a
    parameters: {density: 0.66, weight: 1.0}
  - model: org/b
    parameters:
      density: 0.66
      weight:
        - filter: mlp
          value: [0, 0.3, 0.6, 0.1]
        - filter: self_attn
          value: [0, 0, 0.2, 0.1]
        - value: 0.1
parameters:
  normalize: false
  lambda: 2
dtype: float32
out_dtype: bfloat16
`);
    expect(experiment.params).toEqual({
      k: 0.66,
      scope: 'tensor',
      lambda: { per_task: [2, [{ filter: 'mlp', value: [0, 0.6, 1.2, 0.2] }, { filter: 'self_attn', value: [0, 0, 0.4, 0.2] }, { value: 0.2 }]] },
    });
    expect(experiment.outputDtype).toBe('BF16');
  });

  it('reads a weighted linear merge as the equal Task Arithmetic, and keeps the current base', () => {
    const current = validateExperiment({ base: 'org/pretrained@v1', view: { tab: 'sweep' } });
    const r = importMergekitYaml('merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {weight: 3}\n  - model: org/b\n    parameters: {weight: 1}\n', current);
    expect(r.experiment).toMatchObject({ base: current.base, method: 'task_arithmetic', params: { lambda: { per_task: [0.75, 0.25] } }, view: { tab: 'sweep' } });
    expect(r.warnings.join(' ')).toMatch(/base cancels out.*current base is kept/);
  });

  it('accepts aliases in moderation', () => {
    const r = importMergekitYaml('merge_method: ties\nbase_model: org/base\nmodels:\n  - model: org/a\n    parameters: {weight: 1, density: &d 0.4}\n  - model: org/b\n    parameters: {weight: 1, density: *d}\n');
    expect(r.experiment.params.k).toBe(0.4);
  });

  it('refuses what it cannot map, naming the YAML field', () => {
    const cases: [string, RegExp][] = [
      ['merge_method: della\nmodels: [{model: a/b}]', /^merge_method: "della" is not one the playground has/],
      ['merge_method: breadcrumbs_ties\nmodels: [{model: a/b}]', /^merge_method: .*no Breadcrumbs with sign consensus/],
      ['models: [{model: a/b}]', /^merge_method: is required/],
      ['merge_method: ties\nslices: []', /^slices: layer slices and modules are not supported/],
      ['merge_method: ties\ncolour: red', /^colour: unknown mergekit field/],
      ['merge_method: ties\nbase_model: a/base\nmodels:\n  - model: a/b\n    parameters: {weight: 1, epsilon: 0.1}', /^models\[0\]\.parameters\.epsilon: unknown per-model parameter for mergekit's ties/],
      ['merge_method: ties\nbase_model: a/base\nmodels:\n  - model: a/b\n    parameters: {density: 0.5}', /^models\[0\]\.parameters\.weight: is required/],
      ['merge_method: ties\nbase_model: a/base\nmodels:\n  - model: a/b\n    parameters: {weight: 1, density: 0.5}\n  - model: a/c\n    parameters: {weight: 1, density: 0.6}', /^models\[0\]\.parameters\.density: differs between models/],
      ['merge_method: ties\nbase_model: a/base\nmodels:\n  - model: a/b\n    parameters: {weight: 0.5, density: 0.5}\n  - model: a/c\n    parameters: {weight: 0.3, density: 0.5}', /^parameters\.normalize: normalize: true with unequal weights/],
      ['merge_method: ties\nbase_model: a/base\nmodels:\n  - model: a/b\n    parameters: {weight: 1, density: [0.1, 0.5]}', /^models\[0\]\.parameters\.density: expected a number in \[0, 1\]/],
      ['merge_method: task_arithmetic\nmodels:\n  - model: a/b\n    parameters: {weight: 1}', /^base_model: is required/],
      ['merge_method: task_arithmetic\nbase_model: a/base\nmodels:\n  - model: a/b+lora/x\n    parameters: {weight: 1}', /^models\[0\]\.model: LoRA references/],
      ['merge_method: task_arithmetic\nbase_model: https://evil.example/m\nmodels: [{model: a/b, parameters: {weight: 1}}]', /^base_model: URLs are not model references/],
      ['merge_method: slerp\nbase_model: a/x\nmodels: [{model: a/b}, {model: a/c}]\nparameters: {t: 0.5}', /^base_model: must be one of the two models/],
      ['merge_method: task_arithmetic\nbase_model: a/base\nmodels: [{model: a/b, parameters: {weight: .nan}}]', /^models\[0\]\.parameters\.weight: expected a number/],
      ['merge_method: ties\nmerge_method: linear', /^mergekit YAML: Map keys must be unique/],
      ['merge_method: linear\n---\nmerge_method: ties\n', /^mergekit YAML: holds 2 documents/],
      ['merge_method: !!js/function "x"\n', /^mergekit YAML: /],
      ['- 1\n- 2\n', /^mergekit YAML: must be a mapping/],
      ['', /^mergekit YAML: /],
      [`merge_method: ties\nx: "${'a'.repeat(MAX_YAML_BYTES)}"`, /^mergekit YAML: is \d+ characters long/],
    ];
    for (const [yaml, message] of cases) expect(expectConfigError(() => importMergekitYaml(yaml)).message, yaml.slice(0, 80)).toMatch(message);
  });
});

describe('hostile mergekit YAML', () => {
  reliabilityCase('hostile-link', 'mergekit YAML: an alias bomb ("billion laughs") is refused quickly', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const bomb = `merge_method: ties\nbase_model: a/b\nparameters:\n  ${levels.join('\n  ')}\nmodels: [{model: a/c, parameters: {weight: 1, density: *i}}]\n`;
    const t = performance.now();
    expect(expectConfigError(() => importMergekitYaml(bomb)).message).toMatch(/^mergekit YAML: expands too many aliases/);
    expect(performance.now() - t).toBeLessThan(1000);
    return 1;
  });

  reliabilityCase('hostile-link', 'mergekit YAML: prototype keys, tokens and endpoints', () => {
    const before = prototypeSnapshot();
    const token = 'hf_QwErTyUiOpAsDfGhJkLzXcVbNm123456';
    const inputs = [
      'merge_method: ties\n__proto__: {polluted: 1}\n',
      'merge_method: ties\nbase_model: a/base\nparameters: {__proto__: {polluted: 1}}\nmodels: [{model: a/b, parameters: {weight: 1}}]\n',
      'merge_method: ties\nbase_model: a/base\nmodels: [{model: a/b, parameters: {constructor: 1}}]\n',
      `merge_method: ties\nhf_token: ${token}\n`,
      `merge_method: ties\nendpoint: https://evil.example\n`,
      `merge_method: ties\nbase_model: a/base\nmodels: [{model: ${token}, parameters: {weight: 1}}]\n`,
      `merge_method: ties\nbase_model: a/base\nparameters: {lambda: "Bearer ${token}"}\nmodels: [{model: a/b, parameters: {weight: 1}}]\n`,
    ];
    for (const y of inputs) {
      const e = expectConfigError(() => importMergekitYaml(y));
      expect(e.message).not.toContain(token);
      expect(e.message).not.toContain('evil.example');
    }
    expect(prototypeSnapshot()).toBe(before);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    return inputs.length;
  });

  reliabilityCase('hostile-text', 'mergekit YAML: HTML in model paths stays plain text both ways', () => {
    const name = '<img src=x onerror="alert(1)">.safetensors';
    const e = validateExperiment({ models: [`local:${name}`, 'demo:a'] });
    const r = back(e);
    expect(r.experiment.models[0]!.source).toEqual({ kind: 'local', name });
    return 1;
  });
});
