/**
 * The PyTorch baseline implements the same algorithms as the engine: bench/torch_merge.py, given the same models, must
 * reproduce the float64 CPU reference of every method (DARE, whose random masks differ, must give a rescaled subset sum
 * of the task vectors at every weight). Needs python3 with torch (Debian's python3-torch).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergeReference, tallMaskModels } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { findTorchPython, toRefModel } from '../baselines';
import { generateModels } from '../models';
import { BATCH_METHODS } from '../suite';
import { scaledVit, vitTensors } from '../vitShapes';

const size = scaledVit(64, 2);
const TASKS = 3;

type Flat = Record<string, number[]>;

function runTorch(python: string, methods: string[], base: RefModel, models: RefModel[]): Map<string, Flat[]> {
  const flat = (m: RefModel): Flat => Object.fromEntries([...m].map(([k, t]) => [k, Array.from(t.data)]));
  const job = {
    tensors: vitTensors(size).map((t) => [t.name, t.shape]),
    dtype: 'F32',
    tasks: models.length,
    methods,
    warmups: 0,
    reps: 1,
    device: 'cpu',
    emit: true,
    data: { base: flat(base), models: models.map(flat) },
  };
  const r = spawnSync(python, ['bench/torch_merge.py'], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 28 });
  expect(r.status, r.stderr).toBe(0);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { method?: string; outputs?: Flat[] });
  return new Map(lines.filter((l) => l.method).map((l) => [l.method!, l.outputs!]));
}

/** Largest |a - b| relative to max(1, |b|) over every tensor. */
function maxRelError(torch: Flat, ref: RefModel): number {
  let worst = 0;
  for (const [name, t] of ref) {
    const got = torch[name]!;
    expect(got, name).toHaveLength(t.data.length);
    t.data.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i]! - x) / Math.max(1, Math.abs(x)))));
  }
  return worst;
}

describe('bench/torch_merge.py', () => {
  let python: string;
  let base: RefModel;
  let models: RefModel[];
  beforeAll(async () => {
    const found = findTorchPython(['python3', '/usr/bin/python3']);
    if (!found) throw new Error('the PyTorch baseline needs a python3 that can import torch (Debian: apt-get install python3-torch)');
    python = found;
    const m = await generateModels({ size, dtype: 'F32', tasks: TASKS });
    base = await toRefModel(m.base);
    models = await Promise.all(m.models.map(toRefModel));
  });

  it('matches the CPU reference of every deterministic method at its defaults', () => {
    const methods = BATCH_METHODS.filter((m) => m !== 'dare' && m !== 'slerp');
    const out = runTorch(python, methods, base, models);
    for (const method of methods) {
      const refs = method === 'tall_masks' ? tallMaskModels({}, base, models) : [mergeReference(method, {}, base, models)];
      const got = out.get(method)!;
      expect(got, method).toHaveLength(refs.length);
      refs.forEach((ref, i) => expect(maxRelError(got[i]!, ref), `${method} output ${i}`).toBeLessThan(1e-6));
    }
    const pair = models.slice(0, 2);
    const slerp = runTorch(python, ['slerp'], base, pair).get('slerp')!;
    expect(maxRelError(slerp[0]!, mergeReference('slerp', {}, base, pair))).toBeLessThan(1e-6);
  });

  it('DARE gives, at every weight, lambda / (1 - p) times the sum of a subset of the task vectors', () => {
    const got = runTorch(python, ['dare'], base, models).get('dare')![0]!;
    const lambda = 0.3;
    const scale = lambda / (1 - 0.5);
    let dropped = 0;
    let total = 0;
    for (const [name, b] of base) {
      const taus = models.map((m) => m.get(name)!.data.map((x, i) => x - b.data[i]!));
      b.data.forEach((x0, i) => {
        const delta = got[name]![i]! - x0;
        const sums = Array.from({ length: 1 << TASKS }, (_, mask) => taus.reduce((s, tau, t) => (mask & (1 << t) ? s + tau[i]! : s), 0) * scale);
        const best = Math.min(...sums.map((s) => Math.abs(s - delta)));
        expect(best, `${name}[${i}]`).toBeLessThan(2e-6);
        total++;
        if (Math.abs(delta) < 1e-12) dropped++;
      });
    }
    // Every task dropped at the same weight happens with probability p^T = 1/8.
    expect(dropped / total).toBeGreaterThan(0.1);
    expect(dropped / total).toBeLessThan(0.15);
  });
});
