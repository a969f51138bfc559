/**
 * The PyTorch OPCM baseline computes the same step as the engine: bench/torch_opcm.py, given the same models, must
 * reproduce the float64 twin's second step (src/engine/reference/opcm.ts opcmStep) to float32 accuracy, and report
 * its timing fields. Needs python3 with torch (Debian's python3-torch).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { opcmStep } from '../../src/engine/reference/opcm';
import type { RefModel } from '../../src/engine/reference/refModel';
import { findTorchPython, toRefModel } from '../baselines';
import { generateModels } from '../models';
import { linearShapes, parseTorchOpcmOutput } from '../opcmRun';
import { scaledVit, vitTensors } from '../vitShapes';

const size = scaledVit(32, 1);

function norm(a: RefModel, b: RefModel): number {
  let sq = 0;
  for (const [name, t] of b) t.data.forEach((x, i) => (sq += (a.get(name)!.data[i]! - x) ** 2));
  return Math.sqrt(sq);
}

describe('bench/torch_opcm.py', () => {
  let python: string | null;
  beforeAll(() => void (python = findTorchPython(['python3', '/usr/bin/python3'])));

  it('reproduces the float64 twin of one OPCM step on the same models', async () => {
    expect(python, 'python3 with torch').not.toBeNull();
    const m = await generateModels({ size, dtype: 'F32', tasks: 2 });
    const base = await toRefModel(m.base);
    const [first, incoming] = [await toRefModel(m.models[0]!), await toRefModel(m.models[1]!)];
    const flat = (x: RefModel) => Object.fromEntries([...x].map(([k, t]) => [k, Array.from(t.data)]));
    const job = { tensors: vitTensors(size).map((t) => [t.name, t.shape]), alpha: 0.5, warmups: 0, reps: 1, device: 'cpu', emit: true, data: { base: flat(base), models: [flat(first), flat(incoming)] } };
    const r = spawnSync(python!, ['bench/torch_opcm.py'], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(r.status, r.stderr).toBe(0);
    const fig = parseTorchOpcmOutput(r.stdout);
    expect(fig.svdMs).toBeGreaterThan(0);
    expect(fig.svdMs).toBeLessThanOrEqual(fig.ms);
    const out = (JSON.parse(r.stdout.split('\n')[0]!) as { merged: Record<string, number[]>; linear_weights: number }).merged;
    expect((JSON.parse(r.stdout.split('\n')[0]!) as { linear_weights: number }).linear_weights).toBe(linearShapes(vitTensors(size)).reduce((n, s) => n + s.count, 0));
    const meanNorm = (norm(first, base) + norm(incoming, base)) / 2;
    const twin = opcmStep(base, first, incoming, 1, meanNorm, { alpha: 0.5, zeroDiagonal: true, classEmbedding: 'merge' });
    // Merged task vectors (M - theta0) agree to 1e-4 of each tensor's largest entry (f32 round-off is ~1e-6).
    for (const [name, t] of twin.merged) {
      const b = base.get(name)!.data;
      const ref = t.data.map((x, i) => x - b[i]!);
      const scale = Math.max(...ref.map(Math.abs));
      const worst = Math.max(...ref.map((x, i) => Math.abs(out[name]![i]! - b[i]! - x)));
      expect(worst / scale, name).toBeLessThan(1e-4);
    }
  });

  it('refuses an unfinished run', () => {
    expect(() => parseTorchOpcmOutput('')).toThrow(/did not finish/);
    expect(() => parseTorchOpcmOutput('{"done": true}')).toThrow(/no result/);
  });
});
