/**
 * Share links: exact round trips (every method's defaults and non-default values, random experiments), the readable
 * format itself, and hostile links as named reliability cases: a 1 MB link, HTML in names, prototype keys, injected
 * tokens and endpoints, unknown versions, truncated links and malformed percent-encoding; links of FusionBench
 * presets (their commits pinned, the preset told apart from others with the same base by the models).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultExperiment, validateExperiment, type Experiment } from '../../src/app/experiment';
import { decodeShareLink, encodeShareLink, MAX_LINK, RESERVED_KEYS } from '../../src/app/shareLink';
import { arrange } from '../../src/app/actions';
import { pinsOf, presetOf, readLink } from '../../src/app/urlSync';
import { HUB_PRESETS, type HubPreset } from '../../src/engine/eval/fusionbench/presets';
import { ConfigError } from '../../src/engine/errors';
import { METHODS } from '../../src/engine/methods/registry';
import type { ParamSpec } from '../../src/engine/methods/params';
import { experimentArb } from '../helpers/experimentArbitrary';
import { expectConfigError, FUZZ_SEED, guardPrototypes, HOSTILE_NAMES } from '../helpers/fuzz';
import { reliabilityCase } from '../helpers/reliability';

const roundTrip = (e: Experiment) => decodeShareLink(encodeShareLink(e)).experiment;

/** A value other than the default for each parameter kind. */
function otherValue(p: ParamSpec): unknown {
  switch (p.kind) {
    case 'number':
    case 'integer':
      return [p.min + (p.max - p.min) / 3, p.min + (p.max - p.min) * 0.7, Math.min(p.max, p.min + 3)].map((v) => (p.kind === 'integer' ? Math.round(v) : v)).find((v) => v !== p.default);
    case 'coefficient':
      return [0.1, 0.35, 0.7];
    case 'boolean':
      return !p.default;
    case 'enum':
      return p.values.find((v) => v !== p.default)!;
    case 'order':
      return 'shuffle';
  }
}

guardPrototypes();

describe('share link format', () => {
  it('the default experiment is "#v=1" and an empty hash is the default experiment', () => {
    expect(encodeShareLink(defaultExperiment())).toBe('#v=1');
    expect(decodeShareLink('')).toEqual({ experiment: defaultExperiment(), warnings: [] });
    expect(decodeShareLink('#')).toEqual({ experiment: defaultExperiment(), warnings: [] });
  });

  it('writes a readable hash: method, non-default parameters, models with toggles, settings', () => {
    const e = validateExperiment({
      method: 'ties',
      params: { k: 0.1, lambda: [0.2, 0.6], merge: 'mean' },
      models: ['demo:fashion-noise', { source: 'demo:digits-dim', enabled: false }, 'org/vit-b32@0123456789abcdef0123456789abcdef01234567', 'local:my model, v2.safetensors'],
      outputDtype: 'F16',
      evaluation: { liveSamples: 64, settledSamples: 500, seed: 7 },
      view: { tab: 'sweep', normalized: true },
    });
    expect(encodeShareLink(e)).toBe(
      '#v=1&method=ties&k=0.1&merge=mean&lambda=0.2%2C0.6' +
        '&models=demo:fashion-noise,!demo:digits-dim,org/vit-b32@0123456789abcdef0123456789abcdef01234567,local:my%20model%2C%20v2.safetensors' +
        '&dtype=F16&live=64&settled=500&eval_seed=7&view.tab=sweep&view.normalized=true',
    );
    expect(roundTrip(e)).toEqual(e);
  });

  it('no method parameter is named like a reserved link key or a view key', () => {
    for (const m of METHODS) for (const p of m.params) expect(RESERVED_KEYS as readonly string[], `${m.id}.${p.name}`).not.toContain(p.name);
    for (const m of METHODS) for (const p of m.params) expect(p.name.startsWith('view.')).toBe(false);
  });

  it('round-trips every method at its defaults', () => {
    for (const m of METHODS) {
      const e = validateExperiment({ method: m.id });
      const hash = encodeShareLink(e);
      expect(hash, m.id).toBe(m.id === 'task_arithmetic' ? '#v=1' : `#v=1&method=${m.id}`);
      expect(roundTrip(e), m.id).toEqual(e);
    }
  });

  it('round-trips a non-default value of every parameter of every method', () => {
    let n = 0;
    for (const m of METHODS) {
      for (const p of m.params) {
        const e = validateExperiment({ method: m.id, params: { [p.name]: otherValue(p) } });
        expect(Object.keys(e.params), `${m.id}.${p.name}`).toEqual([p.name]);
        expect(roundTrip(e), `${m.id}.${p.name}`).toEqual(e);
        n++;
      }
    }
    expect(n).toBeGreaterThan(40);
  });

  it('numbers come back as the same double (shortest decimal; -0, subnormals, extremes)', () => {
    for (const lambda of [0.1, 1 / 3, -0, 5e-324, 1.7976931348623157e308, 1e21, 1e-7, -123.456e-300]) {
      const e = validateExperiment({ params: { lambda } });
      const hash = encodeShareLink(e);
      expect(Object.is(decodeShareLink(hash).experiment.params.lambda, lambda), `${lambda} via ${hash}`).toBe(true);
    }
    expect(encodeShareLink(validateExperiment({ params: { lambda: 1 / 3 } }))).toBe('#v=1&lambda=0.3333333333333333');
    // '+' in an exponent is escaped, so tools that read '+' as a space cannot change the number.
    expect(encodeShareLink(validateExperiment({ params: { lambda: 1e21 } }))).toBe('#v=1&lambda=1e%2B21');
  });

  it('round-trips random valid experiments exactly', () => {
    fc.assert(
      fc.property(experimentArb, (e) => {
        const hash = encodeShareLink(e);
        expect(hash.length).toBeLessThanOrEqual(MAX_LINK);
        expect(roundTrip(e)).toEqual(e);
      }),
      { seed: FUZZ_SEED, numRuns: 400 },
    );
  });

  it('refuses to write a link longer than the cap, and says to export a file', () => {
    const table = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`visual.transformer.resblocks.${i}.mlp.c_fc.weight`, [0.3, 0.4]]));
    const e = validateExperiment({ params: { lambda: { table } } });
    expect(expectConfigError(() => encodeShareLink(e)).message).toMatch(/^link: would be \d+ characters long .*JSON file/);
  });

  it('reports local files and unknown view settings as warnings, not errors', () => {
    const { experiment, warnings } = decodeShareLink('#v=1&models=local:a.safetensors,demo:x&view.zoom=3');
    expect(experiment.models[0]!.source).toEqual({ kind: 'local', name: 'a.safetensors' });
    expect(warnings.join('\n')).toMatch(/local file "a.safetensors" must be opened again/);
    expect(warnings.join('\n')).toMatch(/view setting "zoom" is unknown/);
  });

  it('names the field at fault for bad values', () => {
    expect(expectConfigError(() => decodeShareLink('#v=1&lambda=abc')).message).toMatch(/^params\.lambda: expected a number/);
    expect(expectConfigError(() => decodeShareLink('#v=1&method=ties&k=2')).message).toBe('params.k: 2 is outside the allowed range (0, 1]');
    expect(expectConfigError(() => decodeShareLink('#v=1&method=nope')).field).toBe('method');
    expect(expectConfigError(() => decodeShareLink('#v=1&bogus=1')).message).toMatch(/^params\.bogus: unknown parameter for method 'task_arithmetic'/);
    expect(expectConfigError(() => decodeShareLink('#v=1&dtype=F64')).field).toBe('outputDtype');
    expect(expectConfigError(() => decodeShareLink('#v=1&live=-3')).field).toBe('evaluation.liveSamples');
    expect(expectConfigError(() => decodeShareLink('#v=1&view.tab=<b>')).message).toBe('view.tab: expected one of accuracy, sweep, interference, continual, opcm, got "<b>"');
    expect(expectConfigError(() => decodeShareLink('#v=1&lambda=1&lambda=2')).message).toBe('lambda: appears twice in the link');
    expect(expectConfigError(() => decodeShareLink('#v=1&method=opcm&order=2,0,1&models=demo:a,demo:b')).field).toBe('params.order');
    // Test-set pins: dataset repos, each with the revision it was read at.
    expect(expectConfigError(() => decodeShareLink('#v=1&data=datasets/org/a@abc,org/b@abc')).message).toMatch(/^data\[1\]: .*datasets\/org\/name@commit/);
    expect(expectConfigError(() => decodeShareLink('#v=1&data=datasets/org/a')).field).toBe('data[0]');
  });
});

describe('hostile share links', () => {
  reliabilityCase('hostile-link', 'share link: a 1 MB link is refused at once', () => {
    const hash = `#v=1&models=${'demo:a,'.repeat(150_000)}`;
    expect(hash.length).toBeGreaterThan(1_000_000);
    const t = performance.now();
    const e = expectConfigError(() => decodeShareLink(hash));
    expect(performance.now() - t).toBeLessThan(50);
    expect(e.message).toBe(`link: is ${hash.length} characters long (at most ${MAX_LINK})`);
  });

  reliabilityCase('hostile-text', 'share link: HTML and script in model names stay plain text', () => {
    for (const name of HOSTILE_NAMES) {
      const e = validateExperiment({ models: [`local:${name}`], base: `local:${name}` });
      const hash = encodeShareLink(e);
      expect(hash).not.toMatch(/[<>"]/);
      const back = decodeShareLink(hash).experiment;
      expect(back.models[0]!.source).toEqual({ kind: 'local', name });
      expect(back.base).toEqual({ kind: 'local', name });
    }
    // Hand-written, unescaped: still text.
    const raw = decodeShareLink('#v=1&models=local:<script>alert(1)</script>').experiment;
    expect(raw.models[0]!.source).toEqual({ kind: 'local', name: '<script>alert(1)</script>' });
    return HOSTILE_NAMES.length + 1;
  });

  reliabilityCase('hostile-link', 'share link: "__proto__" and "constructor" keys pollute nothing', () => {
    const links = ['#v=1&__proto__=1', '#v=1&constructor=1', '#v=1&method=ties&__proto__=%7B%22polluted%22%3A1%7D', '#v=1&prototype=x'];
    for (const l of links) expect(expectConfigError(() => decodeShareLink(l)).field).toMatch(/^params\.(__proto__|constructor|prototype)$/);
    const view = decodeShareLink('#v=1&view.__proto__=%7B%7D&view.constructor=1');
    expect(Object.getPrototypeOf(view.experiment.view)).toBe(Object.prototype);
    expect(view.warnings).toHaveLength(2);
    const table = decodeShareLink(`#v=1&lambda=${encodeURIComponent('{"table":{"__proto__":[0.5],"constructor":[1]}}')}`).experiment.params.lambda as { table: Record<string, number[]> };
    expect(Object.getOwnPropertyNames(table.table).sort()).toEqual(['__proto__', 'constructor']);
    expect(table.table['__proto__']).toEqual([0.5]);
    return links.length + 2;
  });

  reliabilityCase('hostile-link', 'share link: tokens and endpoints are refused without echoing them', () => {
    const token = 'hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345';
    const links = [
      `#v=1&token=${token}`,
      `#v=1&hf_token=${token}`,
      `#v=1&HF_TOKEN=x`,
      `#v=1&endpoint=https://evil.example`,
      `#v=1&hub_url=https://evil.example`,
      `#v=1&models=local:${token}`,
      `#v=1&base=local:${token}`,
      `#v=1&lambda=${token}`,
      `#v=1&method=${token}`,
      `#v=1&${token}=1`,
      `#v=1&view.tab=Bearer%20${token}`,
      `#v=1&models=demo:a,local:${encodeURIComponent(token)}`,
    ];
    for (const l of links) {
      const e = expectConfigError(() => decodeShareLink(l));
      expect(e.message, l).not.toContain(token);
      expect(e.message, l).not.toContain('evil.example');
      expect(e.message, l).toMatch(/token|endpoint/i);
    }
    // Endpoints disguised as model sources.
    for (const src of ['https://evil.example/org/model', '//evil.example/org/model', 'http:evil.example']) {
      expect(expectConfigError(() => decodeShareLink(`#v=1&models=${encodeURIComponent(src)}`)).message).toMatch(/^models\[0\]\.source: .*(URLs and endpoints are not accepted|not a Hub repo id)/);
    }
    return links.length + 3;
  });

  reliabilityCase('hostile-link', 'share link: unknown or missing version', () => {
    expect(expectConfigError(() => decodeShareLink('#v=2&method=ties')).message).toBe('v: link version "2" is not one this page reads (it reads v=1)');
    expect(expectConfigError(() => decodeShareLink('#method=ties')).message).toMatch(/^v: is missing/);
    expect(expectConfigError(() => decodeShareLink('#/some/route')).field).toBe('link');
    return 3;
  });

  reliabilityCase('hostile-link', 'share link: every truncation of a link decodes or names its fault', () => {
    const e = validateExperiment({
      method: 'ties',
      params: { k: 0.25, lambda: [{ filter: 'mlp', value: [0.1, 0.5] }, { value: 0.3 }] },
      models: ['demo:fashion-noise', 'local:ü &, model', { source: 'demo:digits-dim', enabled: false }],
      view: { tab: 'interference' },
    });
    const hash = encodeShareLink(e);
    let accepted = 0;
    for (let n = 0; n < hash.length; n++) {
      try {
        decodeShareLink(hash.slice(0, n));
        accepted++;
      } catch (err) {
        expect(err, hash.slice(0, n)).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).message.startsWith(`${(err as ConfigError).field}: `)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(hash.length);
    return hash.length;
  });

  reliabilityCase('hostile-link', 'share link: malformed percent-encoding and broken UTF-8', () => {
    const links = ['#v=1&models=local:%', '#v=1&models=local:%ZZ', '#v=1&models=local:%E0%A4%A', '#v=1&models=local:%ED%A0%80', '#v=1&view.tab=%C0%AF', '#v=1&%=1', '#v%2=1'];
    for (const l of links) expect(expectConfigError(() => decodeShareLink(l)).message, l).toMatch(/malformed percent-encoding/);
    // Decoded fine, but a lone surrogate or control character is no name.
    expect(expectConfigError(() => decodeShareLink('#v=1&models=local:a%00b')).message).toMatch(/control characters/);
    return links.length + 1;
  });

  reliabilityCase('hostile-link', 'share link: deeply nested JSON in a coefficient is refused before parsing', () => {
    const deep = `${'['.repeat(3000)}${']'.repeat(3000)}`;
    expect(expectConfigError(() => decodeShareLink(`#v=1&lambda=${deep}`)).message).toBe('params.lambda: nested more than 12 levels deep');
    expect(expectConfigError(() => decodeShareLink('#v=1&lambda=%7B%22per_task%22%3A')).message).toMatch(/^params\.lambda: is not valid JSON/);
    return 2;
  });
});

describe('preset links', () => {
  /** A 40-hex commit, different for every repo. */
  const commit = (repo: string) => Array.from({ length: 40 }, (_, i) => '0123456789abcdef'[(repo.charCodeAt(i % repo.length) * (i + 7)) % 16]).join('');
  const modelRepos = (p: HubPreset) => p.tasks.map((t) => `${p.modelPrefix}${t.id}`);
  /** The experiment the page shows for a preset: its base, models and test sets pinned to commits, one model off. */
  const presetExperiment = (p: HubPreset, repos = modelRepos(p)): Experiment =>
    validateExperiment({
      base: `${p.base.repo}@${commit(p.base.repo)}`,
      models: repos.map((r, i) => ({ source: `${r}@${commit(r)}`, enabled: i !== 1 })),
      method: 'ties',
      data: p.tasks.map((t) => `${t.dataset.repo}@${commit(t.dataset.repo)}`),
    });
  const dataRepos = (p: HubPreset) => p.tasks.map((t) => t.dataset.repo);

  it('pins every repo of a preset experiment to its commit, and reads back its preset, commits and layout', () => {
    for (const p of HUB_PRESETS) {
      const hash = encodeShareLink(presetExperiment(p));
      // Short: the method, the base, one `org/name@commit` per model and one `datasets/org/name@commit` per task.
      const repoBytes = [p.base.repo, ...modelRepos(p), ...dataRepos(p)].reduce((a, r) => a + r.length + 42, 0);
      expect(hash.length).toBeLessThan(120 + repoBytes);
      const back = decodeShareLink(hash).experiment;
      expect(back.data).toEqual(dataRepos(p).map((r) => `${r}@${commit(r)}`));
      expect(presetOf(back)).toBe(p.id);
      expect(pinsOf(back)).toEqual(Object.fromEntries([p.base.repo, ...modelRepos(p), ...dataRepos(p)].map((r) => [r, commit(r)])));
      const start = readLink(hash);
      expect(start.presetId).toBe(p.id);
      expect(start.layout?.pins).toEqual(pinsOf(back));
      expect(start.layout?.ids).toEqual(modelRepos(p).map((r) => `${r}@${commit(r)}`));
      expect(start.layout?.disabled).toEqual([`${modelRepos(p)[1]}@${commit(modelRepos(p)[1]!)}`]);
    }
  });

  it('tells presets that share a base apart by their models', () => {
    const ta8 = HUB_PRESETS[0]!;
    const extra = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => ({ ...ta8.tasks[0]!, id: `extra-${id}` }));
    const tall14: HubPreset = { ...ta8, id: 'tall14', tasks: [...ta8.tasks, ...extra] };
    const tall20: HubPreset = { ...ta8, id: 'tall20', tasks: [...tall14.tasks, ...extra.map((t) => ({ ...t, id: `${t.id}2` }))] };
    // Listed largest first: the choice must not depend on the order.
    const presets = [tall20, tall14, ta8];
    for (const p of [ta8, tall14, tall20]) expect(presetOf(presetExperiment(p), presets)).toBe(p.id);
    // Models removed from a preset: the smallest preset that holds them all.
    expect(presetOf(presetExperiment(tall14, modelRepos(tall14).slice(0, 12)), presets)).toBe('tall14');
    expect(presetOf(presetExperiment(ta8, modelRepos(ta8).slice(2)), presets)).toBe(ta8.id);
    // A link with the base alone: the smallest preset with that base.
    expect(presetOf(presetExperiment(ta8, []), presets)).toBe(ta8.id);
    // A model of no preset, a local file, or another base: no preset.
    expect(presetOf(presetExperiment(ta8, [...modelRepos(ta8), 'someone/other-model']), presets)).toBeNull();
    expect(presetOf(validateExperiment({ base: `${ta8.base.repo}@main`, models: [{ source: 'local:x.safetensors', enabled: true }] }), presets)).toBeNull();
    expect(presetOf(validateExperiment({ base: 'someone/clip@main', models: modelRepos(ta8).map((r) => ({ source: `${r}@main`, enabled: true })) }), presets)).toBeNull();
    expect(presetOf(defaultExperiment(), presets)).toBeNull();
  });

  it('a link that names branches pins them as named; models read at commits keep its order and switches', () => {
    const ta8 = HUB_PRESETS[0]!;
    const repos = modelRepos(ta8);
    const linked = [repos[2]!, repos[0]!, repos[1]!];
    const start = readLink(`#v=1&base=${ta8.base.repo}@main&models=${linked.map((r, i) => `${i === 1 ? '!' : ''}${r}@main`).join(',')}`);
    expect(start.presetId).toBe(ta8.id);
    expect(Object.values(start.layout!.pins!)).toEqual(Array(4).fill('main'));
    // The page read each repo's main at some commit: the layout still applies, matched by repo.
    const entry = (repo: string, i: number) => ({ id: `hub:${i}`, name: repo, bytes: 1, tensors: 1, enabled: true, source: `${repo}@${commit(repo)}` });
    const arranged = arrange(repos.slice(0, 3).map(entry), start.layout!);
    expect(arranged.map((m) => [m.name, m.enabled])).toEqual([[repos[2], true], [repos[0], false], [repos[1], true]]);
    // An exact source wins over a repo match; a demo or local source is never matched by a prefix.
    const twice = arrange([entry('org/x', 0), { ...entry('org/x', 1), source: 'org/x@v2' }], { ids: ['org/x@v2', 'org/x@main'], disabled: ['org/x@main'] });
    expect(twice.map((m) => [m.source, m.enabled])).toEqual([['org/x@v2', true], [`org/x@${commit('org/x')}`, false]]);
    const local = arrange([{ ...entry('a', 0), source: 'local:a@b.safetensors' }, { ...entry('c', 1), source: 'local:a@c.safetensors' }], { ids: ['local:a@c.safetensors'], disabled: ['local:a@c.safetensors'] });
    expect(local.map((m) => [m.source, m.enabled])).toEqual([['local:a@c.safetensors', false], ['local:a@b.safetensors', true]]);
  });
});
