/**
 * The global-TIES kernels that read raw model bytes (src/engine/gpu/tiesFused.ts) against their CPU twins
 * (reference/tiesFused.ts), on seeded random inputs and edge cases:
 * - ties_output: every merge rule (sum, mean, max), majority -1 / 0 / +1, thresholds that keep everything, nothing or a
 *   fraction, F32 / F16 / BF16 inputs and outputs, 1, 8 and 20 models, awkward lengths, NaN / infinities / zeros.
 *   Output words bit-exact against the twin with IEEE subnormals or with subnormals flushed (SwiftShader flushes);
 *   norms from f32 partials within a relative 1e-5 (NaN where the twin's is NaN); with non-finite flags instead of
 *   the norms (FINITE) the same output and tally, and the flags exactly the twin's.
 * - ties_scan over several chunks of one pass: per-task counts above the bracket and the elected-sign counts exactly
 *   equal; the listed keys and open columns equal as multisets (the GPU lists in thread order); lists beyond their
 *   capacity are reported as overflowed, with the exact number of open columns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, type RawDType } from '../../src/engine/gpu/kernels';
import { foldLinearPartials, linearMergeOutBytes, linearMergeThreads } from '../../src/engine/gpu/linearMerge';
import { TiesOutputKernel, TiesScan } from '../../src/engine/gpu/tiesFused';
import type { DareTensorDrop } from '../../src/engine/gpu/linearMerge';
import { stringId } from '../../src/engine/rng';
import type { RawInput } from '../../src/engine/reference/linearMerge';
import { decodeStackRef, type DareLaunch } from '../../src/engine/reference/linearMerge';
import type { DisjointMerge } from '../../src/engine/reference/methods/signElect';
import { tiesOutputRef, tiesScanRef } from '../../src/engine/reference/tiesFused';
import { DTYPE_BYTES } from '../../src/engine/types';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';
import { EDGES, input, pack, randomValues, words } from '../helpers/rawInputs';

const NORM_RTOL = 1e-5;
const MAG = 0x7fffffff;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

function models(seed: number, tasks: number, numel: number, dtype: RawDType, baseDtype = dtype): RawInput[] {
  const base = randomValues(seed, numel);
  return [input(base, baseDtype), ...Array.from({ length: tasks }, (_, t) => input(randomValues(seed * 31 + t + 1, numel, base), dtype))];
}

/** The key at descending rank `q` (a fraction) of each task's |tau| in these inputs: thresholds inside the data. */
function quantileKeys(inputs: readonly RawInput[], numel: number, q: number): Uint32Array {
  const { stack } = decodeStackRef(inputs, numel);
  const bits = new Uint32Array(stack.buffer);
  const tasks = inputs.length - 1;
  return Uint32Array.from({ length: tasks }, (_, t) => {
    const keys = Array.from(bits.subarray(t * numel, (t + 1) * numel), (b) => b & MAG).sort((a, b) => b - a);
    return keys[Math.min(keys.length - 1, Math.floor(q * keys.length))]!;
  });
}

/** Every ordered pair of edge values: element i * E + k holds EDGES[i] in `a` and EDGES[k] in `b`. */
function edgePairs(): { n: number; a: Float32Array; b: Float32Array } {
  const n = EDGES.length ** 2;
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  EDGES.forEach((x, i) => EDGES.forEach((y, k) => ((a[i * EDGES.length + k] = x), (b[i * EDGES.length + k] = y))));
  return { n, a, b };
}

/**
 * DARE's drop for ties_output: every tensor alike, the launch's tensors (`parts`: names from element `at`, each from
 * its element 0) or tensor 'w' from element `elementOffset`.
 */
interface TestDrop {
  drop: DareTensorDrop;
  elementOffset: number;
  parts?: { name: string; at: number }[];
}

/** The twin's DareLaunch of a TestDrop. */
const launchOf = (d: TestDrop): DareLaunch => ({
  ...d.drop,
  parts: d.parts ? d.parts.map((q) => ({ at: q.at, elementOffset: 0, tensorId: stringId(q.name) })) : [{ at: 0, elementOffset: d.elementOffset, tensorId: stringId('w') }],
});

describe('ties_output', () => {
  type Settings = Omit<Parameters<typeof tiesOutputRef>[2], 'drop'>;
  async function runGpu(inputs: readonly RawInput[], numel: number, s: Settings, flags = false, d?: TestDrop) {
    const kernel = new TiesOutputKernel(ctx, { ...s, ...(d ? { drop: () => d.drop } : {}) });
    const { bytes, segments } = pack(inputs, numel);
    const inBuf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
    ctx.device.queue.writeBuffer(inBuf, 0, bytes);
    const out = ctx.createBuffer('out', linearMergeOutBytes(numel, s.outDtype), testUsage());
    const rows = (flags ? 1 : inputs.length + 1) + kernel.extraRows;
    const partials = ctx.createBuffer('partials', rows * linearMergeThreads(numel) * 4, testUsage());
    try {
      await ctx.scoped('ties_output', () => {
        const encoder = ctx.device.createCommandEncoder();
        const where = d?.parts ? { parts: d.parts.map((q) => ({ ...q, shape: [numel] })) } : { chunk: { name: 'w', shape: [numel], start: d?.elementOffset ?? 0 } };
        kernel.encode(encoder, { inputs: inBuf, segments, numel, coeffs: Float32Array.from(s.coeffs), outDtype: s.outDtype, out, partials, flags, ...where });
        ctx.device.queue.submit([encoder.finish()]);
      });
      const p = await readBuffer(ctx, partials, rows * linearMergeThreads(numel) * 4);
      const floats = new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4);
      return { bytes: await readBuffer(ctx, out, numel * DTYPE_BYTES[s.outDtype]), totals: foldLinearPartials(floats, rows), floats };
    } finally {
      [inBuf, out, partials].forEach((b) => ctx.destroyBuffer(b));
      kernel.destroy();
    }
  }

  async function check(what: string, inputs: readonly RawInput[], numel: number, s: Settings, d?: TestDrop): Promise<void> {
    const gpu = await runGpu(inputs, numel, s, false, d);
    const ref = d ? { ...s, drop: launchOf(d) } : s;
    const exact = tiesOutputRef(inputs, numel, ref);
    const flushed = tiesOutputRef(inputs, numel, ref, { flushSubnormals: true });
    const [g, e, f] = [gpu.bytes, exact.bytes, flushed.bytes].map((b) => words(b, s.outDtype));
    const bad: string[] = [];
    for (let j = 0; j < g!.length && bad.length < 5; j++) {
      if (g![j] !== e![j] && g![j] !== f![j]) bad.push(`[${j}] gpu 0x${g![j]!.toString(16)} cpu 0x${e![j]!.toString(16)}`);
    }
    expect(bad, `${what}: output words`).toEqual([]);
    const tally = gpu.totals.subarray(inputs.length + 1);
    const same = (t: ArrayLike<number>, w: { positive: number; negative: number; tied: number }) => t[0] === w.positive && t[1] === w.negative && t[2] === w.tied;
    if (!same(tally, flushed)) expect(Array.from(tally), `${what}: tally (+1, -1, tied)`).toEqual([exact.positive, exact.negative, exact.tied]);
    [exact.baseSq, ...exact.tvSq, exact.deltaSq].forEach((w, r) => {
      const got = gpu.totals[r]!;
      if (Number.isNaN(w)) expect(got, `${what}: norm row ${r}`).toBeNaN();
      else if (!Number.isFinite(w)) expect(got, `${what}: norm row ${r}`).toBe(w);
      else expect(Math.abs(got - w), `${what}: norm row ${r}: gpu ${got} cpu ${w}`).toBeLessThanOrEqual(NORM_RTOL * w + 1e-30);
    });
    // FINITE in place of the norms: the same output and tally, and one flag per block exactly as the twin's.
    const flagged = await runGpu(inputs, numel, s, true, d);
    const threads = linearMergeThreads(numel);
    expect(Buffer.from(flagged.bytes).equals(Buffer.from(gpu.bytes)), `${what}: output with flags`).toBe(true);
    expect(Array.from(flagged.floats.subarray(0, threads)), `${what}: flags`).toEqual(Array.from(exact.flags));
    expect(Array.from(flagged.totals.subarray(1)), `${what}: tally with flags`).toEqual(Array.from(tally));
  }

  const coeffs = (tasks: number) => Float32Array.from({ length: tasks }, (_, t) => (t % 3 === 2 ? -0.7 : 0.3 + 0.1 * t));
  /** (models, elements): 1, 8 and 20 models, lengths that are not whole 16-element blocks. */
  const SIZES = [
    [1, 37],
    [8, 1001],
    [20, 16 * 5 + 3],
  ] as const;

  it('matches the twin for every merge rule, majority and output dtype, 1, 8 and 20 models', async () => {
    for (const [tasks, numel] of SIZES) {
      const inputs = models(tasks + numel, tasks, numel, 'F32');
      const thresholds = quantileKeys(inputs, numel, 0.3);
      for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
        for (const majority of [-1, 0, 1] as const) {
          for (const outDtype of ['F32', 'BF16'] as const) {
            await check(`${tasks} x ${numel}, ${merge}, majority ${majority}, out ${outDtype}`, inputs, numel, { coeffs: coeffs(tasks), thresholds, majority, merge, outDtype });
          }
        }
      }
    }
  });

  it('adds a -0 product to +0 as combine does (theta0 -0, coefficients -0), whatever a compiler folds', async () => {
    const negZero = new Float32Array(16).fill(-0);
    const one = new Float32Array(16).fill(1);
    for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
      for (const inputs of [[input(negZero, 'F32'), input(one, 'F32')], [input(negZero, 'F32'), input(one, 'F32'), input(negZero, 'F32')]]) {
        const tasks = inputs.length - 1;
        await check(`${merge}, ${tasks} model(s)`, inputs, 16, { coeffs: new Float32Array(tasks).fill(-0), thresholds: new Uint32Array(tasks), majority: 1, merge, outDtype: 'F32' });
      }
    }
  });

  it('matches the twin with one coefficient for every model (read once: SAME_COEFF)', async () => {
    const [tasks, numel] = [6, 16 * 11 + 9];
    const inputs = models(41, tasks, numel, 'F32');
    const thresholds = quantileKeys(inputs, numel, 0.25);
    for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
      for (const c of [0.4, -1.5]) {
        await check(`${tasks} x ${numel}, ${merge}, every coefficient ${c}`, inputs, numel, { coeffs: new Float32Array(tasks).fill(c), thresholds, majority: 1, merge, outDtype: 'F32' });
      }
    }
  });

  it('keeps everything at threshold 0, nothing above every key, and decodes f16 / bf16 inputs', async () => {
    const numel = 515;
    for (const [baseDtype, modelDtype] of [
      ['F32', 'F32'],
      ['F16', 'F16'],
      ['BF16', 'BF16'],
      ['F32', 'BF16'],
    ] as const) {
      const inputs = models(7, 3, numel, modelDtype, baseDtype);
      for (const thresholds of [new Uint32Array(3), new Uint32Array(3).fill(0x7fffffff), quantileKeys(inputs, numel, 0.05)]) {
        await check(`${baseDtype} base, ${modelDtype} models, thresholds ${thresholds[0]}`, inputs, numel, { coeffs: coeffs(3), thresholds, majority: 1, merge: 'mean', outDtype: 'F16' });
      }
    }
  });

  it('counts a zero-sum column as tied only where the elected sign can change its delta', async () => {
    // Two models cancel exactly in every column: each sum is +0. Under `sum`, the sides' deltas are 0.5x and -0.5x
    // (tied) with coefficients 0.5, and +0 on both sides (not tied) with coefficients 0; `mean` and `max` count every
    // column with an agreeing entry.
    const numel = 37;
    const x = randomValues(5, numel).map((v) => v || 1);
    const inputs = [input(new Float32Array(numel), 'F32'), input(x, 'F32'), input(x.map((v) => -v), 'F32')];
    for (const [merge, c, tied] of [
      ['sum', 0.5, numel],
      ['sum', 0, 0],
      ['mean', 0, numel],
      ['max', 0, numel],
    ] as const) {
      const s = { coeffs: Float32Array.from([c, c]), thresholds: new Uint32Array(2), majority: 1 as const, merge, outDtype: 'F32' as const };
      await check(`${merge}, coefficients ${c}`, inputs, numel, s);
      const tally = (await runGpu(inputs, numel, s)).totals.subarray(inputs.length + 1);
      expect(Array.from(tally), `${merge}, coefficients ${c}: tally (+1, -1, tied)`).toEqual([0, 0, tied]);
    }
  });

  it('carries NaN, infinities, zeros and exact cancellations like the twin', async () => {
    // Every ordered pair of edge values as (theta0, model 0); model 1 mirrors model 0 around theta0 where it can.
    const { n, a, b } = edgePairs();
    const c = a.map((x, j) => Math.fround(2 * x - b[j]!));
    const d = b.slice().reverse();
    const inputs = [input(a, 'F32'), input(b, 'F32'), input(c, 'F32'), input(d, 'F32')];
    for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
      for (const majority of [-1, 1] as const) {
        await check(`edges, ${merge}, majority ${majority}`, inputs, n, { coeffs: Float32Array.from([0.5, 0.5, -2]), thresholds: Uint32Array.from([0, 0x3f000000, 0]), majority, merge, outDtype: 'F32' });
      }
    }
  });

  describe('with a DARE drop (DARE then TIES)', () => {
    it('matches the twin for every merge rule, rate and scale, 1, 8 and 20 models, at an offset in the tensor', async () => {
      for (const [tasks, numel] of SIZES) {
        const inputs = models(tasks + numel + 3, tasks, numel, 'F32');
        const thresholds = quantileKeys(inputs, numel, 0.3);
        for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
          for (const [p, scale] of [
            [0.5, 2],
            [0.3, 1],
            [0.9, 1 / 0.1],
          ] as const) {
            const d = { drop: { seed: tasks + 7, p, scale }, elementOffset: 16 * 37 };
            await check(`${tasks} x ${numel}, ${merge}, p ${p}, scale ${scale}`, inputs, numel, { coeffs: coeffs(tasks), thresholds, majority: merge === 'max' ? -1 : 1, merge, outDtype: 'F32' }, d);
          }
        }
      }
    });

    it('keys the tensors of one launch by their own names, and decodes bf16 into a bf16 output', async () => {
      const numel = 16 * 9;
      const inputs = models(19, 3, numel, 'BF16');
      const thresholds = quantileKeys(inputs, numel, 0.2);
      const d = { drop: { seed: 11, p: 0.4, scale: 1 / 0.6 }, elementOffset: 0, parts: [{ name: 'a.weight', at: 0 }, { name: 'a.bias', at: 48 }, { name: 'b.weight', at: 96 }] };
      for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
        await check(`3 parts, ${merge}`, inputs, numel, { coeffs: coeffs(3), thresholds, majority: 1, merge, outDtype: 'BF16' }, d);
      }
      // The drop changes the output (p 0.4 of every entry dropped): the twin without it differs.
      const s = { coeffs: coeffs(3), thresholds, majority: 1 as const, merge: 'sum' as const, outDtype: 'BF16' as const };
      expect(Buffer.from((await runGpu(inputs, numel, s, false, d)).bytes).equals(Buffer.from(tiesOutputRef(inputs, numel, s).bytes))).toBe(false);
    });

    it('flags a block whose NaN or infinity the drop lost, and carries edge values like the twin', async () => {
      const { n, a, b } = edgePairs();
      const inputs = [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')];
      for (const merge of ['sum', 'mean', 'max'] as DisjointMerge[]) {
        await check(`edges, ${merge}`, inputs, n, { coeffs: Float32Array.from([0.5, -2]), thresholds: Uint32Array.from([0, 0x3f000000]), majority: 1, merge, outDtype: 'F32' }, { drop: { seed: 2, p: 0.5, scale: 2 }, elementOffset: 0 });
      }
      // One NaN in model 0, dropped (p = 1 drops everything): the merged block is finite, the flag still set.
      const x = new Float32Array(32);
      x[20] = NaN;
      const one = [input(new Float32Array(32), 'F32'), input(x, 'F32')];
      const s = { coeffs: Float32Array.from([1]), thresholds: new Uint32Array(1), majority: 1 as const, merge: 'sum' as const, outDtype: 'F32' as const };
      const flagged = await runGpu(one, 32, s, true, { drop: { seed: 1, p: 1, scale: 1 }, elementOffset: 0 });
      expect(Array.from(flagged.floats.subarray(0, 2))).toEqual([0, 1]);
      expect(Array.from(new Float32Array(flagged.bytes.buffer, flagged.bytes.byteOffset, 32)).every((v) => v === 0)).toBe(true);
    });
  });
});

describe('ties_scan', () => {
  /** Scans `inputs` as chunks of `step` elements (one pass) on the GPU. */
  async function runScan(inputs: readonly RawInput[], numel: number, step: number, brackets: Uint32Array, listCap: number, signs = true, list = true) {
    const scan = new TiesScan(ctx, { brackets, maxNumel: step, listCap, signs, list });
    const bufs: GPUBuffer[] = [];
    try {
      await ctx.scoped('ties_scan', async () => {
        for (let start = 0; start < numel; start += step) {
          const count = Math.min(step, numel - start);
          const slice = inputs.map((r) => ({ dtype: r.dtype, bytes: r.bytes.subarray(start * DTYPE_BYTES[r.dtype], (start + count) * DTYPE_BYTES[r.dtype]) }));
          const { bytes, segments } = pack(slice, count);
          const buf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
          bufs.push(buf);
          ctx.device.queue.writeBuffer(buf, 0, bytes);
          const encoder = ctx.device.createCommandEncoder();
          scan.encode(encoder, { inputs: buf, segments, numel: count });
          ctx.device.queue.submit([encoder.finish()]);
        }
      });
      return await scan.results();
    } finally {
      bufs.forEach((b) => ctx.destroyBuffer(b));
      scan.destroy();
    }
  }

  const sorted = (xs: ArrayLike<number>) => Array.from(xs).sort((a, b) => a - b);

  async function check(what: string, inputs: readonly RawInput[], numel: number, step: number, brackets: Uint32Array): Promise<void> {
    // Room for every key in every shard: the lists must come back whole.
    const gpu = await runScan(inputs, numel, step, brackets, numel * 64);
    const tasks = inputs.length - 1;
    // The twin on the whole range (chunks do not change the result: the scan is per column).
    const want = tiesScanRef(inputs, numel, brackets);
    const flushed = tiesScanRef(inputs, numel, brackets, { flushSubnormals: true });
    const same = (g: unknown, w: unknown, f: unknown, label: string) => {
      if (JSON.stringify(g) !== JSON.stringify(f)) expect(g, `${what}: ${label}`).toEqual(w);
    };
    same(Array.from(gpu.above), want.above, flushed.above, 'keys above');
    same([gpu.positive, gpu.negative], [want.positive, want.negative], [flushed.positive, flushed.negative], 'elected signs');
    for (let t = 0; t < tasks; t++) same(sorted(gpu.listed[t]!), sorted(want.listed[t]!), sorted(flushed.listed[t]!), `task ${t} listed keys`);
  }

  function brackets(inputs: readonly RawInput[], numel: number, from: number, to: number): Uint32Array {
    const hi = quantileKeys(inputs, numel, from);
    const lo = quantileKeys(inputs, numel, to);
    return Uint32Array.from({ length: 2 * hi.length }, (_, i) => (i % 2 === 0 ? lo[i / 2]! : hi[(i - 1) / 2]! + 1));
  }

  it('matches the twin over chunks of one pass, for 1, 8 and 20 models and every input dtype', async () => {
    for (const [tasks, numel, step, dtype] of [
      [1, 37, 16, 'F32'],
      [8, 1001, 256, 'F32'],
      [20, 16 * 9 + 3, 64, 'F32'],
      [4, 515, 512, 'F16'],
      [4, 515, 128, 'BF16'],
    ] as const) {
      const inputs = models(tasks * 3 + numel, tasks, numel, dtype);
      await check(`${tasks} x ${numel} ${dtype}, chunks of ${step}`, inputs, numel, step, brackets(inputs, numel, 0.15, 0.25));
    }
  });

  it('without signs, counts and lists the same keys and elects nothing', async () => {
    const numel = 1001;
    const inputs = models(3, 8, numel, 'F32');
    const br = brackets(inputs, numel, 0.15, 0.25);
    const [withSigns, without] = [await runScan(inputs, numel, 256, br, numel * 64), await runScan(inputs, numel, 256, br, numel * 64, false)];
    expect(Array.from(without.above)).toEqual(Array.from(withSigns.above));
    without.listed.forEach((w, t) => expect(sorted(w!), `task ${t}`).toEqual(sorted(withSigns.listed[t]!)));
    expect([without.positive, without.negative]).toEqual([0, 0]);
    expect(withSigns.positive + withSigns.negative).toBeGreaterThan(0);
  });

  it('told not to list (the host lists), counts and elects the same and lists nothing', async () => {
    const numel = 1001;
    const inputs = models(4, 8, numel, 'F32');
    const br = brackets(inputs, numel, 0.15, 0.25);
    for (const signs of [true, false]) {
      const [listed, unlisted] = [await runScan(inputs, numel, 256, br, numel * 64, signs), await runScan(inputs, numel, 256, br, numel * 64, signs, false)];
      expect(Array.from(unlisted.above)).toEqual(Array.from(listed.above));
      expect([unlisted.positive, unlisted.negative]).toEqual([listed.positive, listed.negative]);
      expect(listed.listed.every((l) => l!.length > 0)).toBe(true);
      expect(unlisted.listed.map((l) => l!.length)).toEqual(new Array(8).fill(0));
    }
  });

  it('handles empty brackets (exact thresholds), keep-everything brackets and edge values', async () => {
    const numel = 300;
    const inputs = models(11, 3, numel, 'F32');
    const exact = quantileKeys(inputs, numel, 0.2);
    await check('exact thresholds', inputs, numel, 128, Uint32Array.from([exact[0]!, exact[0]!, exact[1]!, exact[1]!, exact[2]!, exact[2]!]));
    await check('keep everything', inputs, numel, 128, new Uint32Array(6));
    const { n, a, b } = edgePairs();
    const edges = [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')];
    await check('edges', edges, n, 64, Uint32Array.from([0x3f000000, 0x7f800000, 0, 0x40000000]));
  });

  it('reports key lists past their capacity as overflowed, and keeps the others', async () => {
    const numel = 4096;
    const inputs = models(5, 4, numel, 'F32');
    const br = brackets(inputs, numel, 0.1, 0.4);
    // Task 0's bracket takes everything: its list cannot fit; the others fit (each shard holds 2x its share).
    br[0] = 0;
    br[1] = 0x7fffffff;
    const want = tiesScanRef(inputs, numel, br);
    const cap = 2 * Math.max(...want.listed.slice(1).map((w) => w.length));
    const gpu = await runScan(inputs, numel, 1024, br, cap);
    expect(gpu.listed[0]).toBeNull();
    for (let t = 1; t < 4; t++) expect(sorted(gpu.listed[t]!), `task ${t}`).toEqual(sorted(want.listed[t]!));
    expect(Array.from(gpu.above)).toEqual(want.above);
  });
});
