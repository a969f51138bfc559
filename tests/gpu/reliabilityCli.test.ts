/**
 * Non-finite weights at the command line: a merge whose fine-tuned model holds NaN or infinite values still writes
 * its output, but warns on stderr with one line per tensor and model, counting the values, with or without --report
 * (and even --quiet); a merged tensor that overflows from finite task vectors is named too; a clean merge prints no
 * warning.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { runCli } from '../helpers/cli';
import { makeModelBytes, makeRelatedModels, type FixtureTensor } from '../helpers/safetensorsFixtures';
import { reliabilityCase } from '../helpers/reliability';

const NAN_TENSOR = 'encoder.layers.0.mlp.fc1.weight';
const INF_TENSOR = 'encoder.layers.1.mlp.fc1.bias';
let dir: string;
let paths: string[];

/** Sets `values` at the first entries of a float32 tensor. */
function poison(t: FixtureTensor, values: number[]): FixtureTensor {
  const data = t.data.slice();
  new Float32Array(data.buffer, data.byteOffset, values.length).set(values);
  return { ...t, data };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-nonfinite-'));
  const { base, finetuned } = makeRelatedModels({
    seed: 5,
    dtype: 'F32',
    models: 2,
    shapes: { [NAN_TENSOR]: [16, 8], [INF_TENSOR]: [16], 'encoder.layers.1.mlp.fc1.weight': [16, 8] },
  });
  const bad = finetuned[1]!.map((t) => (t.name === NAN_TENSOR ? poison(t, [NaN, 1, NaN, NaN]) : t.name === INF_TENSOR ? poison(t, [Infinity, -Infinity]) : t));
  const files = { 'base.safetensors': base, 'clean.safetensors': finetuned[0]!, 'poisoned.safetensors': bad };
  paths = Object.entries(files).map(([name, tensors]) => {
    writeFileSync(join(dir, name), makeModelBytes(tensors));
    return join(dir, name);
  });
});

const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('merge-playground: warning: '));

describe('non-finite weights at the command line', () => {
  reliabilityCase('non-finite', 'without --report: a warning per poisoned tensor names the tensor and the model', async () => {
    const out = join(dir, 'merged.safetensors');
    const res = await runCli(['merge', '--base', paths[0]!, '--model', paths[1]!, '--model', paths[2]!, '--method', 'task_arithmetic', '--out', out, '--quiet']);
    expect(res.code).toBe(0);
    expect(readFileSync(out).byteLength).toBeGreaterThan(0);
    const lines = warnings(res.stderr);
    expect(lines).toHaveLength(2);
    // A merge without --report skips the norms: the chunks its kernels flag are counted on the host.
    expect(lines.find((l) => l.includes(`tensor "${NAN_TENSOR}"`))).toContain(`of model ${paths[2]} differs from the base by 3 NaN or infinite values`);
    expect(lines.find((l) => l.includes(`tensor "${INF_TENSOR}"`))).toContain(`of model ${paths[2]} differs from the base by 2 NaN or infinite values`);
    expect(res.stderr).not.toContain(paths[1]!);
  });

  reliabilityCase('non-finite', 'without --report: a merged tensor that overflows from finite task vectors is named', async () => {
    // Both models put 3e38 at the same entry of the bias: their sum at lambda 1 is past f32's range.
    const huge = (name: string, i: number) => {
      const { base, finetuned } = makeRelatedModels({ seed: 9, dtype: 'F32', models: 2, shapes: { [INF_TENSOR]: [16] } });
      const files = [base, ...finetuned.map((m) => m.map((t) => poison(t, [3e38])))];
      const at = join(dir, `${name}-${i}.safetensors`);
      writeFileSync(at, makeModelBytes(files[i]!));
      return at;
    };
    const [b, m1, m2] = [0, 1, 2].map((i) => huge('overflow', i));
    const res = await runCli(['merge', '--base', b!, '--model', m1!, '--model', m2!, '--method', 'task_arithmetic', '--set', 'lambda=1', '--out', join(dir, 'overflow-out.safetensors'), '--quiet']);
    expect(res.code).toBe(0);
    expect(warnings(res.stderr)).toEqual([`merge-playground: warning: merged tensor "${INF_TENSOR}" holds 1 infinite or NaN values where every task vector is finite: the weighted sum overflowed`]);
  });

  reliabilityCase('non-finite', 'with --report: the warnings count the values, as the report does', async () => {
    const out = join(dir, 'merged-report.safetensors');
    const report = join(dir, 'report.json');
    const res = await runCli(['merge', '--base', paths[0]!, '--model', paths[1]!, '--model', paths[2]!, '--method', 'ties', '--out', out, '--report', report, '--quiet']);
    expect(res.code).toBe(0);
    const lines = warnings(res.stderr);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`tensor "${NAN_TENSOR}" of model ${paths[2]} differs from the base by 3 NaN or infinite values`),
        expect.stringContaining(`tensor "${INF_TENSOR}" of model ${paths[2]} differs from the base by 2 NaN or infinite values`),
      ]),
    );
    expect(lines).toHaveLength(2);
    const r = JSON.parse(readFileSync(report, 'utf8')) as { interference: { nonFinite: { tensor: string; model: number; count: number }[] } };
    expect(r.interference.nonFinite.map(({ tensor, model }) => `${tensor}/${model}`).sort()).toEqual([`${INF_TENSOR}/1`, `${NAN_TENSOR}/1`].sort());
  });

  reliabilityCase('non-finite', 'a clean merge prints no warning', async () => {
    const res = await runCli(['merge', '--base', paths[0]!, '--model', paths[1]!, '--method', 'task_arithmetic', '--out', join(dir, 'clean-out.safetensors'), '--quiet']);
    expect(res.code).toBe(0);
    expect(warnings(res.stderr)).toEqual([]);
  });
});
