/**
 * Experiment files and CLI configs: export/import round trips, the CLI reading what the page saves, and rejection of
 * bad files (wrong format, too large, too deep, credentials, unknown fields) with the field named.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXPERIMENT_FORMAT, exportExperimentJson, exportMergeConfigJson, importConfigJson, importConfigObject, MAX_CONFIG_BYTES } from '../../src/app/configFile';
import { defaultExperiment, validateExperiment, type Experiment } from '../../src/app/experiment';
import { buildConfig, parseMergeArgs } from '../../src/cli/args';
import { CONFIG_FORMAT, resolveConfig } from '../../src/engine/merge/config';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { experimentArb } from '../helpers/experimentArbitrary';
import { expectConfigError, FUZZ_SEED } from '../helpers/fuzz';

/** JSON writes -0 as 0: compare experiments as JSON would keep them. */
const asJson = (e: Experiment) => JSON.parse(JSON.stringify(e)) as unknown;

describe('experiment files', () => {
  it('exports pretty JSON tagged with its format, sources as text', () => {
    const e = validateExperiment({ method: 'dare', params: { p: 0.3, then: 'ties' }, models: ['demo:fashion-noise', { source: 'org/m@main', enabled: false }] });
    const text = exportExperimentJson(e);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toBe(`  "format": "${EXPERIMENT_FORMAT}",`);
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(json.models).toEqual([{ source: 'demo:fashion-noise', enabled: true }, { source: 'org/m@main', enabled: false }]);
    expect(json.params).toEqual({ p: 0.3, then: 'ties' });
    expect(importConfigJson(text)).toEqual({ experiment: e, warnings: [] });
  });

  it('round-trips random experiments', () => {
    fc.assert(
      fc.property(experimentArb, (e) => {
        expect(asJson(importConfigJson(exportExperimentJson(e)).experiment)).toEqual(asJson(e));
      }),
      { seed: FUZZ_SEED, numRuns: 300 },
    );
  });

  it('saves a config the CLI runs as the same merge (merge-playground merge --config)', () => {
    const e = validateExperiment({ method: 'ties', params: { k: 0.1, lambda: [0.2, 0.8], scope: 'tensor' }, outputDtype: 'BF16' });
    const text = exportMergeConfigJson(e);
    expect(JSON.parse(text)).toEqual({ format: CONFIG_FORMAT, method: 'ties', params: { k: 0.1, lambda: [0.2, 0.8], scope: 'tensor' }, options: { outputDtype: 'BF16' } });
    const cmd = parseMergeArgs(['--base', 'base.safetensors', '--model', 'a.safetensors', '--out', 'm.safetensors', '--config', 'c.json']);
    const resolved = resolveConfig(buildConfig(cmd, JSON.parse(text)));
    expect(resolved.method.id).toBe('ties');
    expect(resolved.params).toEqual(resolveParams(getMethod('ties'), e.params));
    expect(resolved.options.outputDtype).toBe('BF16');
  });

  it('imports a CLI config (with or without its format tag) as the method, parameters and dtype', () => {
    const a = importConfigJson('{"method":"ties","params":{"k":0.2,"lambda":0.5}}');
    expect(a.experiment).toEqual({ ...defaultExperiment(), method: 'ties', params: { lambda: 0.5 } });
    const b = importConfigJson(JSON.stringify({ format: CONFIG_FORMAT, method: 'slerp', params: { t: 0.25 }, options: { outputDtype: 'F16', chunkElements: 2048 } }));
    expect(b.experiment).toMatchObject({ method: 'slerp', params: { t: 0.25 }, outputDtype: 'F16' });
    expect(b.warnings).toEqual(['options.chunkElements is a command-line setting: the page does not use it']);
  });

  it('refuses bad files, naming the field at fault', () => {
    expect(expectConfigError(() => importConfigJson('{"format":"merge-playground/experiment@2"}')).field).toBe('format');
    expect(expectConfigError(() => importConfigJson('{"lambda":1}')).message).toMatch(/^format: is missing/);
    expect(expectConfigError(() => importConfigJson('[1]')).field).toBe('config');
    expect(expectConfigError(() => importConfigJson('{"method":')).message).toMatch(/^config file: is not valid JSON/);
    expect(expectConfigError(() => importConfigJson(`{"format":"${EXPERIMENT_FORMAT}","method":"ties","params":{"k":"abc"}}`)).message).toBe('params.k: expected a number in (0, 1], got "abc"');
    expect(expectConfigError(() => importConfigJson(`{"format":"${EXPERIMENT_FORMAT}","colour":"red"}`)).message).toMatch(/^colour: unknown field/);
    expect(expectConfigError(() => importConfigJson(`{"format":"${EXPERIMENT_FORMAT}","models":[{"source":"demo:a","enabled":"yes"}]}`)).field).toBe('models[0].enabled');
    expect(expectConfigError(() => importConfigJson(`{"format":"${EXPERIMENT_FORMAT}","version":2}`)).field).toBe('version');
    expect(expectConfigError(() => importConfigObject({ format: EXPERIMENT_FORMAT, base: { kind: 'ftp', path: 'x' } })).field).toMatch(/^base/);
  });

  it('refuses oversized and deeply nested files before parsing them', () => {
    const big = `{"method":"ties","pad":"${'x'.repeat(MAX_CONFIG_BYTES)}"}`;
    const t = performance.now();
    expect(expectConfigError(() => importConfigJson(big)).message).toMatch(/^config file: is \d+ characters long/);
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    expect(expectConfigError(() => importConfigJson(deep)).message).toBe('config file: nested more than 12 levels deep');
    expect(performance.now() - t).toBeLessThan(500);
  });

  it('never takes a token or an endpoint from a file, and never repeats one', () => {
    const token = 'hf_ZyXwVuTsRqPoNmLkJiHgFeDcBa987654';
    const files = [
      { format: EXPERIMENT_FORMAT, hfToken: token },
      { format: EXPERIMENT_FORMAT, view: { endpoint: 'https://evil.example' } },
      { format: EXPERIMENT_FORMAT, models: [`local:${token}`] },
      { method: 'ties', token },
      { method: token },
      { method: 'ties', params: { lambda: token } },
      { method: 'ties', options: { hub_endpoint: 'https://evil.example' } },
    ];
    for (const f of files) {
      const e = expectConfigError(() => importConfigJson(JSON.stringify(f)));
      expect(e.message).not.toContain(token);
      expect(e.message).not.toContain('evil.example');
    }
    // Tensor names in coefficient tables are data, not credentials: "token_embedding" is a CLIP tensor.
    const ok = importConfigObject({ method: 'task_arithmetic', params: { lambda: { table: { 'text.token_embedding.weight': [0.1] } } } });
    expect(ok.experiment.params.lambda).toEqual({ table: { 'text.token_embedding.weight': [0.1] } });
  });
});

describe('--gpu-cache', () => {
  it('takes a whole number of MiB, and names the flag for anything else', () => {
    const args = (v: string) => parseMergeArgs(['--base', 'b.safetensors', '--model', 'a.safetensors', '--out', 'm.safetensors', '--gpu-cache', v]);
    expect(args('0').gpuCacheMiB).toBe(0);
    expect(args(' 4096 ').gpuCacheMiB).toBe(4096);
    expect(parseMergeArgs(['--base', 'b.safetensors', '--model', 'a.safetensors', '--out', 'm.safetensors']).gpuCacheMiB).toBeNull();
    for (const bad of ['1.5', '1e3', 'lots', '', '99999999999999999999']) expect(() => args(bad), bad).toThrow(/^--gpu-cache: expected a whole number of MiB \(0 or more\), got /);
    expect(() => parseMergeArgs(['--base', 'b', '--model', 'a', '--out', 'm', '--gpu-cache=-1'])).toThrow(/^--gpu-cache: expected a whole number of MiB \(0 or more\), got "-1"/);
  });
});
