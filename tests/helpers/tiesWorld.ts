/**
 * A world that global TIES's one-pass statistics get wrong on purpose (tests/gpu/tiesFast.test.ts, fusedCollect.test.ts):
 * one tensor of N elements, larger than the sample that src/engine/merge/plans/tiesFast.ts takes at TIES's default
 * k = 0.2 (sampleRuns runs of SAMPLE_RUN elements at evenly spaced starts), three task vectors given per element.
 */
import { SAMPLE_RUN, sampleRuns } from '../../src/engine/merge/plans/tiesFast';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import type { GridModels } from './gridModels';
import { makeModelBytes } from './safetensorsFixtures';

export const N = 600_000;

/** The sample's runs over the N elements: their number, and 1 for every sampled element. */
export const RUNS = sampleRuns(N, Math.trunc(N * 0.2) / N);
export const sampled = new Uint8Array(N);
for (let i = 0; i < RUNS; i++) {
  const start = Math.min(Math.floor(((i + 0.5) * N) / RUNS), N - SAMPLE_RUN);
  sampled.fill(1, start, start + SAMPLE_RUN);
}
// The worlds need most columns outside the sample.
if (RUNS * SAMPLE_RUN >= N / 2) throw new Error(`the sample (${RUNS * SAMPLE_RUN} elements) covers half of the ${N}-element world`);

/** A small positive magnitude per (element, task), on a grid of 1/4096. */
export const grid = (j: number, t: number) => (1 + ((j * 7 + t * 13) % 61)) / 4096;

const f32Bytes = (m: RefModel) => makeModelBytes([...m].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: encodeFloats(t.data, 'F32') })));

/** Three task vectors tau(t, j) on a base that is zero-ish on a grid: one f32 tensor 'w' of N elements. */
export function tiesWorld(tau: (t: number, j: number) => number): GridModels {
  const base: RefModel = new Map([['w', { shape: [N], data: Float64Array.from({ length: N }, (_, j) => ((j % 7) - 3) / 256) }]]);
  const models = [0, 1, 2].map((t): RefModel => new Map([['w', { shape: [N], data: base.get('w')!.data.map((b, j) => b + tau(t, j)) }]]));
  return { base, models, baseBytes: f32Bytes(base), modelBytes: models.map(f32Bytes) };
}

/**
 * Sampled columns sum positive, the others (most of them) negative: the exact majority is -1, the sample says +1.
 * Every 997th column outside `inSample` holds +1 and -1 (kept, summing to 0): tied, so the sign matters there.
 */
export const tiedMajority =
  (inSample: Uint8Array = sampled) =>
  (t: number, j: number): number => {
    if (!inSample[j] && j % 997 === 0) return t === 0 ? 1 : t === 1 ? -1 : 0;
    return (inSample[j] ? 1 : -1) * grid(j, t);
  };
