/**
 * The merge kernels (src/engine/gpu/mergeKernels.ts, mergeReductions.ts) against their CPU twins
 * (src/engine/reference/mergeKernels.ts, mergeReductions.ts) on seeded random stacks of 1, 3, 8 and 20 rows, odd
 * lengths, n = 1, and awkward values: +-0, equal magnitudes, exact cancellations, infinities and NaN.
 *
 * Tolerances: none. Every output is compared bit for bit with the twin: the kernels decide on bits, and their f32
 * arithmetic (column sums, the DARE scale, the TALL product, the mean's reciprocal, reduction trees) runs in the
 * twin's order. Two allowances: any NaN equals any NaN in arithmetic outputs (devices differ in NaN payloads),
 * and data for arithmetic kernels has no subnormals (WGSL lets devices flush them; SwiftShader does), while the
 * bit-only kernels (trim, magmax, count/bit masks) get subnormals too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, uploadRaw } from '../../src/engine/gpu/kernels';
import {
  bitmaskApply,
  keepBits,
  countMask,
  dareDrop,
  disjointMerge,
  magmaxSelect,
  tallMask,
  tiesMerge,
  trimMask,
  type DareChunk,
  type ZeroSignRule,
} from '../../src/engine/gpu/mergeKernels';
import { gram, gramRanges, rowStats, SignTally, signStats, signSum, stackStats, topkEnergy, usageHistogram } from '../../src/engine/gpu/mergeReductions';
import { REDUCTION_BLOCK, TOPK_MAX_LEVELS } from '../../src/engine/gpu/constants';
import {
  bitmaskApplyRef,
  keepBitsRef,
  bitsOf,
  columnSumF32,
  countMaskRef,
  dareDropRef,
  disjointMergeRef,
  magmaxSelectRef,
  tallMaskRef,
  tiesMergeRef,
  trimMaskRef,
} from '../../src/engine/reference/mergeKernels';
import { gramRef, rowStatsRef, signStatsRef, signSumRef, topkEnergyRef, trimmedSignSumRef, usageHistogramRef } from '../../src/engine/reference/mergeReductions';
import type { DisjointMerge } from '../../src/engine/reference/methods/signElect';
import { rngKey, stringId } from '../../src/engine/rng';
import { readF32, releaseTestContext, testContext, testUsage, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

const ROWS = [1, 3, 8, 20];
/** n = 1, odd, and more than one reduction chunk (4096 columns). */
const LENGTHS = [1, 257, 9001];

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** Seeded f32 values in +-[2^-9, 2^8) (no subnormals), with a share of exact zeros and -0. */
function continuous(seed: number, n: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => {
    const u = rng();
    if (u < 0.05) return 0;
    if (u < 0.1) return -0;
    return (rng() - 0.5) * 2 ** Math.floor(rng() * 17 - 8);
  });
}

/** Seeded values from a small set: equal magnitudes of both signs, zeros of both signs, exact cancellations. */
function discrete(seed: number, n: number, extra: number[] = []): Float32Array {
  const set = [0, -0, 0.5, -0.5, 1, -1, 0.25, -0.25, 1.5, 2, -2, ...extra];
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => set[Math.floor(rng() * set.length)]!);
}

const BIT_EDGES = [Infinity, -Infinity, NaN, 1e-40, -1e-40, 2 ** -149, 3.4e38, -3.4e38];
const ARITH_EDGES = [Infinity, -Infinity, NaN];

const isNaNBits = (b: number) => (b & 0x7fffffff) > 0x7f800000;
const hex = (b: number) => `0x${b.toString(16)}`;

/** Bit-for-bit equality (any NaN equals any NaN when `nanAny`), reporting the first mismatches. */
function expectSameBits(what: string, gpu: Float32Array | Uint32Array, twin: Float32Array | Uint32Array, nanAny = false): void {
  const a = gpu instanceof Float32Array ? bitsOf(gpu) : gpu;
  const b = twin instanceof Float32Array ? bitsOf(twin) : twin;
  expect(a.length, `${what}: length`).toBe(b.length);
  const bad: string[] = [];
  for (let i = 0; i < a.length && bad.length < 5; i++) {
    if (a[i] !== b[i] && !(nanAny && isNaNBits(a[i]!) && isNaNBits(b[i]!))) bad.push(`[${i}] gpu ${hex(a[i]!)} twin ${hex(b[i]!)}`);
  }
  expect(bad, what).toEqual([]);
}

/** Runs an in-place kernel on a copy of `stack` and returns the result. */
async function onGpu(what: string, stack: Float32Array, run: (buf: GPUBuffer) => void): Promise<Float32Array> {
  const buf = uploadF32(ctx, what, stack);
  await ctx.scoped(what, () => run(buf));
  const out = await readF32(ctx, buf, stack.length);
  ctx.destroyBuffer(buf);
  return out;
}

async function readU32(buf: GPUBuffer, count: number): Promise<Uint32Array> {
  const bytes = await readBuffer(ctx, buf, count * 4);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
}

const uploadU32 = (label: string, values: Uint32Array) => uploadRaw(ctx, label, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));

/** A stack of `rows` x `numel` values with `edges` scattered over it. */
function withEdges(stack: Float32Array, edges: number[], seed: number): Float32Array {
  const rng = seededRandom(seed);
  for (let i = 0; i < Math.min(stack.length, 4 * edges.length); i++) stack[Math.floor(rng() * stack.length)] = edges[i % edges.length]!;
  return stack;
}

describe('trim_mask', () => {
  it.each(ROWS)('matches the twin bit for bit with %i rows (subnormals, infinities, NaN included)', async (rows) => {
    for (const numel of LENGTHS) {
      const stack = withEdges(continuous(rows * 7 + numel, rows * numel), BIT_EDGES, numel);
      const rng = seededRandom(rows + numel);
      // Per row: keep all (0), an existing magnitude (exact ">=" ties), or above every finite value.
      const thresholds = Uint32Array.from({ length: rows }, (_, r) =>
        r % 3 === 0 ? 0 : r % 3 === 1 ? bitsOf(stack)[r * numel + Math.floor(rng() * numel)]! & 0x7fffffff : 0x7f800001,
      );
      const gpu = await onGpu('trim', stack, (buf) => trimMask(ctx, buf, rows, numel, thresholds));
      trimMaskRef(stack, rows, numel, thresholds);
      expectSameBits(`trim ${rows}x${numel}`, gpu, stack);
    }
  });

  it('reads the thresholds from a GPU buffer too', async () => {
    const stack = continuous(5, 3 * 100);
    const thresholds = new Uint32Array([0, bitsOf(new Float32Array([0.5]))[0]!, 0x7fffffff]);
    const tbuf = uploadU32('thresholds', thresholds);
    const gpu = await onGpu('trim buffer', stack, (buf) => trimMask(ctx, buf, 3, 100, tbuf));
    ctx.destroyBuffer(tbuf);
    trimMaskRef(stack, 3, 100, thresholds);
    expectSameBits('trim from buffer', gpu, stack);
  });
});

describe('dare_drop', () => {
  const keysFor = (rows: number, seed: number) => Uint32Array.from({ length: rows }, (_, t) => rngKey(seed, t, stringId('blocks.0.mlp.weight')));

  it.each(ROWS)('matches the twin bit for bit with %i rows for several p, rescaled or not', async (rows) => {
    for (const numel of LENGTHS) {
      for (const [p, scale] of [[0, 1], [0.3, 1 / 0.7], [0.5, 2], [0.9, 1]] as const) {
        const stack = withEdges(continuous(rows + numel, rows * numel), ARITH_EDGES, 3);
        const dare: DareChunk = { keys: keysFor(rows, 42), elementOffset: 17, p, scale };
        const gpu = await onGpu('dare', stack, (buf) => dareDrop(ctx, buf, rows, numel, dare));
        dareDropRef(stack, rows, numel, dare);
        expectSameBits(`dare ${rows}x${numel} p ${p}`, gpu, stack, true);
      }
    }
  });

  it('gives every element the same decision whatever the chunking', async () => {
    const rows = 3;
    const numel = 5000;
    const tensor = continuous(9, rows * numel);
    const keys = keysFor(rows, 7);
    const whole = await onGpu('dare whole', tensor, (buf) => dareDrop(ctx, buf, rows, numel, { keys, elementOffset: 0, p: 0.4, scale: 1 / 0.6 }));
    const pieces = new Float32Array(rows * numel);
    for (const [from, to] of [[0, 1234], [1234, 1235], [1235, 4097], [4097, 5000]] as const) {
      const chunk = new Float32Array(rows * (to - from));
      for (let r = 0; r < rows; r++) chunk.set(tensor.subarray(r * numel + from, r * numel + to), r * (to - from));
      const out = await onGpu('dare chunk', chunk, (buf) => dareDrop(ctx, buf, rows, to - from, { keys, elementOffset: from, p: 0.4, scale: 1 / 0.6 }));
      for (let r = 0; r < rows; r++) pieces.set(out.subarray(r * (to - from), (r + 1) * (to - from)), r * numel + from);
    }
    expectSameBits('dare chunked vs whole', pieces, whole);
  });
});

describe('sign_sum', () => {
  it.each(ROWS)('matches the twin exactly with %i rows (cancellations, zeros, NaN, infinities)', async (rows) => {
    for (const numel of LENGTHS) {
      for (const stack of [discrete(rows * numel, rows * numel), withEdges(continuous(rows, rows * numel), ARITH_EDGES, 4)]) {
        const buf = uploadF32(ctx, 'sign sum', stack);
        const gpu = await ctx.scoped('signSum', () => signSum(ctx, buf, rows, numel));
        ctx.destroyBuffer(buf);
        expect(gpu, `${rows}x${numel}`).toBe(signSumRef(stack, rows, numel));
      }
    }
  });
});

describe('trimmed_sign_sum (SignTally)', () => {
  /** Per row: keep all (0), a magnitude present in the data (ties at the threshold), NaN-only, or nothing. */
  function thresholdsFor(rows: number, stack: Float32Array, seed: number): Uint32Array {
    const rng = seededRandom(seed);
    const bits = bitsOf(stack);
    const choices = [() => 0, () => bits[Math.floor(rng() * bits.length)]! & 0x7fffffff, () => 0x7f800001, () => 0xffffffff];
    return Uint32Array.from({ length: rows }, (_, r) => choices[r === 0 ? 1 : Math.floor(rng() * choices.length)]!());
  }

  it.each(ROWS)('adds up the twin over chunks exactly with %i rows, leaving the stack as it is', async (rows) => {
    // 1024: rows read in place as vec4s; the odd lengths go through the aligned copy.
    const chunks = [...LENGTHS, 1024].flatMap((numel) => [discrete(rows + numel, rows * numel), withEdges(continuous(rows * numel, rows * numel), ARITH_EDGES, 5)]);
    const thresholds = thresholdsFor(rows, chunks[1]!, rows);
    const tally = new SignTally(ctx, thresholds);
    let expected = 0;
    try {
      for (const stack of chunks) {
        const numel = stack.length / rows;
        const buf = uploadF32(ctx, 'tally', stack);
        await ctx.scoped('tally', () => tally.add(buf, rows, numel));
        expectSameBits(`${rows}x${numel} unchanged`, await readF32(ctx, buf, stack.length), stack);
        ctx.destroyBuffer(buf);
        expected += trimmedSignSumRef(stack, rows, numel, thresholds);
      }
      expect(await tally.total(), `${rows} rows, thresholds ${Array.from(thresholds, hex)}`).toBe(expected);
    } finally {
      tally.destroy();
    }
  });

  it('counts negative and positive columns apart (cancellation, all trimmed, one survivor)', async () => {
    // Columns: +1 -1 (cancel: 0), 0.5 | 3 (trimmed row 0 keeps only >= 1: -> 3 > 0), -2 | 0.25 (-> -2), 0.25 | 0.5 (all trimmed: 0).
    const stack = new Float32Array([1, 0.5, -2, 0.25, -1, 3, 0.25, 0.5]);
    const thresholds = bitsOf(new Float32Array([1, 1]));
    const tally = new SignTally(ctx, thresholds);
    const buf = uploadF32(ctx, 'tally cases', stack);
    try {
      tally.add(buf, 2, 4);
      tally.add(buf, 2, 4);
      expect(await tally.total()).toBe(0);
      expect(trimmedSignSumRef(stack, 2, 4, thresholds)).toBe(0);
      // The first column alone (rows [1] and [0.5]): 0.5 is trimmed, +1.
      tally.add(buf, 2, 1);
      expect(await tally.total()).toBe(1);
      // [-3, -0.5] over [2, -4]: -3 + 2 < 0, and -0.5 is trimmed so -4 decides: two negative columns.
      const neg = uploadF32(ctx, 'tally negative', new Float32Array([-3, -0.5, 2, -4]));
      tally.add(neg, 2, 2);
      ctx.destroyBuffer(neg);
      expect(await tally.total()).toBe(-1);
      expect(() => tally.add(buf, 3, 2)).toThrow(/trimmed_sign_sum: stack has 3 rows, the thresholds 2/);
    } finally {
      ctx.destroyBuffer(buf);
      tally.destroy();
    }
  });
});

describe('disjoint_merge', () => {
  const RULES: ZeroSignRule[] = [{ rule: 'majority', majority: 1 }, { rule: 'majority', majority: 0 }, { rule: 'majority', majority: -1 }, { rule: 'plus' }];
  const MERGES: DisjointMerge[] = ['sum', 'mean', 'max'];

  it.each(ROWS)('matches the twin bit for bit with %i rows for every merge and zero-sign rule', async (rows) => {
    for (const numel of [1, 257, 2001]) {
      const inputs = [discrete(rows * 3 + numel, rows * numel), withEdges(continuous(rows * 5 + numel, rows * numel), ARITH_EDGES, 6)];
      for (const input of inputs) {
        for (const merge of MERGES) {
          for (const rule of RULES) {
            const stack = input.slice();
            const gpu = await onGpu('disjoint', stack, (buf) => disjointMerge(ctx, buf, rows, numel, merge, rule));
            disjointMergeRef(stack, rows, numel, merge, rule);
            expectSameBits(`disjoint ${merge} ${JSON.stringify(rule)} ${rows}x${numel}`, gpu, stack, true);
          }
        }
      }
    }
  });

  it('keeps nothing where exact cancellation meets a zero majority, and elects +1 there under plus', async () => {
    const stack = new Float32Array([0.5, 1, -0.5, -1]); // 2 rows x 2 columns: both columns sum to 0
    const none = await onGpu('cancel', stack, (buf) => disjointMerge(ctx, buf, 2, 2, 'sum', { rule: 'majority', majority: 0 }));
    expect(Array.from(none)).toEqual([0, 0, 0, 0]);
    const plus = await onGpu('cancel plus', stack, (buf) => disjointMerge(ctx, buf, 2, 2, 'mean', { rule: 'plus' }));
    expect(Array.from(plus)).toEqual([0.5, 1, 0, 0]);
  });
});

describe('ties_merge', () => {
  const RULES: ZeroSignRule[] = [{ rule: 'majority', majority: 1 }, { rule: 'majority', majority: 0 }, { rule: 'majority', majority: -1 }, { rule: 'plus' }];
  const MERGES: DisjointMerge[] = ['sum', 'mean', 'max'];

  /** Per row: keep all (0), a magnitude present in the data (ties at the threshold) or almost nothing. */
  function thresholdsFor(rows: number, stack: Float32Array, seed: number): Uint32Array {
    const rng = seededRandom(seed);
    const bits = bitsOf(stack);
    const choices = [() => 0, () => bits[Math.floor(rng() * bits.length)]! & 0x7fffffff, () => 0x7f800001];
    return Uint32Array.from({ length: rows }, (_, r) => choices[r === 0 ? 1 : Math.floor(rng() * choices.length)]!());
  }

  it.each(ROWS)('equals trim then disjoint merge of the twins bit for bit with %i rows', async (rows) => {
    // 1024: rows changed in place as vec4s; the odd lengths go through the aligned copy and back.
    for (const numel of [1, 257, 1024, 2001]) {
      const inputs = [discrete(rows * 7 + numel, rows * numel), withEdges(continuous(rows * 11 + numel, rows * numel), ARITH_EDGES, 7)];
      for (const input of inputs) {
        const thresholds = thresholdsFor(rows, input, rows + numel);
        for (const merge of MERGES) {
          for (const rule of RULES) {
            const stack = input.slice();
            const gpu = await onGpu('ties merge', stack, (buf) => tiesMerge(ctx, buf, rows, numel, thresholds, merge, rule));
            tiesMergeRef(stack, rows, numel, thresholds, merge, rule);
            expectSameBits(`ties ${merge} ${JSON.stringify(rule)} ${rows}x${numel}`, gpu, stack, true);
          }
        }
      }
    }
  });

  it('trims before electing: a large value below its row threshold does not vote', async () => {
    // Column 0: 4 (row 0, trimmed by threshold 8) and -1 (row 1 keeps all): gamma = -1, row 1 keeps -1.
    const stack = new Float32Array([4, 9, -1, 2]);
    const thresholds = Uint32Array.from([bitsOf(new Float32Array([8]))[0]!, 0]);
    const out = await onGpu('trim first', stack, (buf) => tiesMerge(ctx, buf, 2, 2, thresholds, 'sum', { rule: 'majority', majority: 1 }));
    expect(Array.from(out)).toEqual([0, 9, -1, 2]);
    expect(() => tiesMerge(ctx, uploadF32(ctx, 'bad', stack), 2, 2, new Uint32Array(3), 'sum', { rule: 'plus' })).toThrow(/ties_merge: thresholdBits needs one entry per row/);
  });
});

describe('magmax_select', () => {
  it.each(ROWS)('matches the twin bit for bit with %i rows (ties, zeros, subnormals, NaN)', async (rows) => {
    // Every remainder of the kernel's 4-column groups.
    for (const numel of [...LENGTHS, 1002, 1003]) {
      const stack = withEdges(discrete(rows + numel, rows * numel, [1e-40, -1e-40]), BIT_EDGES, 8);
      const gpu = await onGpu('magmax', stack, (buf) => magmaxSelect(ctx, buf, rows, numel));
      magmaxSelectRef(stack, rows, numel);
      expectSameBits(`magmax ${rows}x${numel}`, gpu, stack);
    }
  });
});

describe('tall_mask, count_mask and bitmask_apply', () => {
  /** Task vectors, their f32 multi-task vector and per-task lambdas (exact binary fractions and arbitrary ones). */
  function tallInputs(rows: number, numel: number, seed: number) {
    const tau = seed % 2 ? discrete(seed, rows * numel) : continuous(seed, rows * numel);
    const mtl = Float32Array.from({ length: numel }, (_, j) => columnSumF32(tau, rows, numel, j));
    const lambdas = Float32Array.from({ length: rows }, (_, r) => [0.5, 0.25, 0.6, 0.2, 0.4][r % 5]!);
    return { tau, mtl, lambdas };
  }

  async function runTall(rows: number, numel: number, seed: number, withBits: boolean) {
    const { tau, mtl, lambdas } = tallInputs(rows, numel, seed);
    const [tauBuf, mtlBuf] = [uploadF32(ctx, 'tau', tau), uploadF32(ctx, 'mtl', mtl)];
    const counts = ctx.createBuffer('counts', numel * 4, testUsage());
    const bitfield = withBits ? ctx.createBuffer('bitfield', numel * 4, testUsage()) : undefined;
    await ctx.scoped('tallMask', () => tallMask(ctx, tauBuf, rows, numel, mtlBuf, lambdas, { counts, bitfield }));
    const gpu = { counts: await readU32(counts, numel), bitfield: bitfield && (await readU32(bitfield, numel)) };
    const twin = tallMaskRef(tau, rows, numel, mtl, lambdas, withBits);
    return { gpu, twin, tau, mtl, buffers: { tauBuf, mtlBuf, counts, bitfield } };
  }

  it.each(ROWS)('tall_mask matches the twin (counts and bitfield) with %i rows', async (rows) => {
    for (const numel of LENGTHS) {
      for (const seed of [rows + numel, rows + numel + 1]) {
        const { gpu, twin, buffers } = await runTall(rows, numel, seed, true);
        expectSameBits(`counts ${rows}x${numel}`, gpu.counts, twin.counts);
        expectSameBits(`bits ${rows}x${numel}`, gpu.bitfield!, twin.bitfield!);
        Object.values(buffers).forEach((b) => b && ctx.destroyBuffer(b));
      }
    }
  });

  it('tall_mask counts 40 tasks without a bitfield', async () => {
    const { gpu, twin, buffers } = await runTall(40, 301, 12, false);
    expectSameBits('counts 40 rows', gpu.counts, twin.counts);
    expect(Math.max(...gpu.counts)).toBeGreaterThan(1);
    Object.values(buffers).forEach((b) => b && ctx.destroyBuffer(b));
  });

  it.each(ROWS)('count_mask and bitmask_apply match their twins with %i rows', async (rows) => {
    const numel = 1001;
    const { gpu, tau, mtl, buffers } = await runTall(rows, numel, 20 + rows, true);
    for (const k of [0, 1, 2, rows + 1]) {
      const stack = withEdges(tau.slice(), BIT_EDGES, k);
      const out = await onGpu('count mask', stack, (buf) => countMask(ctx, buf, rows, numel, buffers.counts, k));
      countMaskRef(stack, rows, numel, gpu.counts, k);
      expectSameBits(`count_mask k ${k}`, out, stack);
    }
    const src = withEdges(mtl.slice(), BIT_EDGES, 2);
    const srcBuf = uploadF32(ctx, 'mtl edges', src);
    const out = ctx.createBuffer('tall delta', numel * 4, testUsage());
    for (const bit of [0, rows - 1, 31]) {
      await ctx.scoped('bitmaskApply', () => bitmaskApply(ctx, buffers.bitfield!, bit, srcBuf, numel, out));
      expectSameBits(`bitmask_apply bit ${bit}`, await readF32(ctx, out, numel), bitmaskApplyRef(gpu.bitfield!, bit, src, numel));
    }
    [srcBuf, out, ...Object.values(buffers)].forEach((b) => b && ctx.destroyBuffer(b));
  });
});

describe('keep_bits', () => {
  it.each([1, 3, 8, 32])('marks the rows that hold anything but +0, like the twin, with %i rows', async (rows) => {
    for (const numel of LENGTHS) {
      // Zeros of both signs, NaNs, infinities and subnormals among values that are zero half of the time.
      const stack = withEdges(discrete(rows * 7 + numel, rows * numel, [0, -0, 0, 0]), [...BIT_EDGES, -0, 0], rows + numel);
      const buf = uploadF32(ctx, 'stack', stack);
      const words = ctx.createBuffer('words', Math.max(4, numel * 4), testUsage());
      await ctx.scoped('keepBits', () => keepBits(ctx, buf, rows, numel, words));
      const got = await readU32(words, numel);
      const want = keepBitsRef(stack, rows, numel);
      expectSameBits(`keep_bits ${rows}x${numel}`, got, want);
      // Some columns keep nothing and some keep several rows (the test would not see a constant answer).
      if (numel > 1) expect(new Set(got).size, `${rows}x${numel}`).toBeGreaterThan(1);
      [buf, words].forEach((b) => ctx.destroyBuffer(b));
    }
  });

  it('refuses more than 32 rows and writing over the stack', () => {
    const buf = ctx.createBuffer('stack', 1024, testUsage());
    expect(() => keepBits(ctx, buf, 33, 4, buf)).toThrow(/keep_bits: at most 32 rows, got 33/);
    expect(() => keepBits(ctx, buf, 2, 4, buf)).toThrow(/keep_bits: words must be a different buffer/);
    ctx.destroyBuffer(buf);
  });
});

describe('reductions', () => {
  it.each(ROWS)('row_stats, gram and sign_stats match their twins exactly with %i rows', async (rows) => {
    // The odd lengths read the rows through QuadRows' aligned copy; 4, 1024 and 4100 read them where they are.
    for (const numel of [...LENGTHS, 4, 1024, 4100]) {
      const stacks = [continuous(rows * 11 + numel, rows * numel), discrete(rows * 13 + numel, rows * numel, [NaN])];
      for (const stack of stacks) {
        const buf = uploadF32(ctx, 'stack', stack);
        const [stats, g, signs] = await ctx.scoped('reductions', async () => [
          await rowStats(ctx, buf, rows, numel),
          await gram(ctx, buf, rows, numel),
          await signStats(ctx, buf, rows, numel),
        ] as const);
        ctx.destroyBuffer(buf);
        const what = `${rows}x${numel}`;
        expect(stats, `row_stats ${what}`).toEqual(rowStatsRef(stack, rows, numel));
        expect(Array.from(g), `gram ${what}`).toEqual(Array.from(gramRef(stack, rows, numel)));
        expect(signs, `sign_stats ${what}`).toEqual(signStatsRef(stack, rows, numel));
      }
    }
  });

  it.each(ROWS)('topk_energy matches its twin exactly with %i rows, at 1, 9 and the most levels', async (rows) => {
    // The odd lengths read the rows through QuadRows' aligned copy, 1024 in place.
    for (const numel of [...LENGTHS, 1024]) {
      const stacks = [continuous(rows * 17 + numel, rows * numel), discrete(rows * 19 + numel, rows * numel, [NaN, Infinity])];
      for (const stack of stacks) {
        const bits = bitsOf(stack);
        const rng = seededRandom(rows * 23 + numel);
        for (const levels of [1, 9, TOPK_MAX_LEVELS]) {
          // Per row: keep everything (0), nothing finite (above infinity), and keys of the row's own entries (ties at the threshold).
          const thresholds = Uint32Array.from({ length: rows * levels }, (_, i) => {
            const r = Math.floor(i / levels);
            const l = i % levels;
            if (l === 0) return 0;
            if (l === 1) return 0x7f800001;
            return numel ? bits[r * numel + Math.floor(rng() * numel)]! & 0x7fffffff : 1;
          });
          const buf = uploadF32(ctx, 'stack', stack);
          const energy = await ctx.scoped('topkEnergy', () => topkEnergy(ctx, buf, rows, numel, thresholds));
          ctx.destroyBuffer(buf);
          expect(Array.from(energy), `topk_energy ${rows}x${numel}, ${levels} levels`).toEqual(Array.from(topkEnergyRef(stack, rows, numel, thresholds)));
        }
      }
    }
  });

  it.each([1, 3, 20])('gramRanges: pieces laid out on whole blocks, zero-padded, give each piece its own Gram (twin, exactly; %i rows)', async (rows) => {
    // Lengths that end inside a quad, a block, and on a block; one piece of specials (-0 products, infinities, NaN).
    const lengths = [1, 37, 256, 300, 5, 513];
    const specials = [0, -0, 1, -2, Infinity, -Infinity, NaN, 1e-40, 3e38, -1e-3];
    const pieces = lengths.map((n, i) =>
      i === 3 ? Float32Array.from({ length: rows * n }, (_, j) => specials[(j * 7 + rows) % specials.length]!) : i === 1 ? discrete(rows * 5 + i, rows * n, [NaN]) : continuous(rows * 3 + i, rows * n),
    );
    const blocksOf = (n: number) => Math.ceil(n / REDUCTION_BLOCK);
    const total = lengths.reduce((a, n) => a + blocksOf(n) * REDUCTION_BLOCK, 0);
    const stack = new Float32Array(rows * total);
    const ranges: { from: number; to: number }[] = [];
    let at = 0;
    lengths.forEach((n, i) => {
      for (let r = 0; r < rows; r++) stack.set(pieces[i]!.subarray(r * n, (r + 1) * n), r * total + at);
      ranges.push({ from: at / REDUCTION_BLOCK, to: at / REDUCTION_BLOCK + blocksOf(n) });
      at += blocksOf(n) * REDUCTION_BLOCK;
    });
    const buf = uploadF32(ctx, 'pieces', stack);
    const got = await ctx.scoped('gramRanges', () => gramRanges(ctx, buf, rows, total, ranges));
    await expect(gramRanges(ctx, buf, rows, total, [{ from: 2, to: blocksOf(total) + 1 }])).rejects.toThrow(/block range \[2, \d+\) outside the \d+ blocks/);
    ctx.destroyBuffer(buf);
    lengths.forEach((n, i) => {
      const want = Array.from(gramRef(pieces[i]!, rows, n));
      expect(Array.from(got[i]!), `piece ${i} (${rows}x${n})`).toEqual(want);
    });
  });

  it('topk_energy refuses no levels and more than it holds', async () => {
    const buf = uploadF32(ctx, 'stack', new Float32Array(8));
    await expect(topkEnergy(ctx, buf, 2, 4, new Uint32Array(0))).rejects.toThrow(/1\.\.16 thresholds per row, got 0 for 2 rows/);
    await expect(topkEnergy(ctx, buf, 2, 4, new Uint32Array(2 * (TOPK_MAX_LEVELS + 1)))).rejects.toThrow(/got 34 for 2 rows/);
    ctx.destroyBuffer(buf);
  });

  it.each([1, 3, 8, 20])('stackStats reads gram, row_stats and sign_stats back at once, equal to the twins (%i rows)', async (rows) => {
    for (const numel of [0, ...LENGTHS]) {
      const stack = continuous(rows * 29 + numel, rows * numel);
      const buf = uploadF32(ctx, 'stack', stack.length ? stack : new Float32Array(1));
      const got = await ctx.scoped('stackStats', () => stackStats(ctx, buf, rows, numel));
      ctx.destroyBuffer(buf);
      expect(Array.from(got.gram), `gram ${rows}x${numel}`).toEqual(Array.from(gramRef(stack, rows, numel)));
      expect(got.rows, `row_stats ${rows}x${numel}`).toEqual(rowStatsRef(stack, rows, numel));
      expect(got.signs, `sign_stats ${rows}x${numel}`).toEqual(signStatsRef(stack, rows, numel));
    }
  });

  it('stackStats with zeros, -0, subnormals, infinities and NaN equals the twins', async () => {
    const specials = [0, -0, 1, -2, Infinity, -Infinity, NaN, 1e-40, 3e38, -1e-3];
    const shapes: [rows: number, numel: number][] = [[3, 37], [5, 8], [2, 1]];
    for (const [rows, numel] of shapes) {
      const stack = Float32Array.from({ length: rows * numel }, (_, i) => specials[(i * 7 + rows) % specials.length]!);
      const buf = uploadF32(ctx, 'specials', stack);
      const got = await ctx.scoped('stackStats', () => stackStats(ctx, buf, rows, numel));
      ctx.destroyBuffer(buf);
      expect(got.rows, `row_stats ${rows}x${numel}`).toEqual(rowStatsRef(stack, rows, numel));
      expect(Array.from(got.gram), `gram ${rows}x${numel}`).toEqual(Array.from(gramRef(stack, rows, numel)));
      expect(got.signs, `sign_stats ${rows}x${numel}`).toEqual(signStatsRef(stack, rows, numel));
    }
  });

  it('row_stats counts infinities and NaN as non-finite and propagates them into the sums', async () => {
    const stack = new Float32Array([1, -2, Infinity, 0, -0, NaN, 3, 1e-3]);
    const buf = uploadF32(ctx, 'edges', stack);
    const stats = await rowStats(ctx, buf, 2, 4);
    ctx.destroyBuffer(buf);
    expect(stats.map((s) => [s.nonZero, s.nonFinite])).toEqual([[3, 1], [3, 1]]);
    expect(stats[0]!.sumSquares).toBe(Infinity);
    expect(stats[1]!.sumAbs).toBeNaN();
  });

  it.each([1, 3, 8, 20])('usage_histogram matches the twin with %i tasks', async (tasks) => {
    for (const numel of LENGTHS) {
      const rng = seededRandom(tasks + numel);
      const counts = Uint32Array.from({ length: numel }, () => Math.floor(rng() * (tasks + 1)));
      const buf = uploadU32('counts', counts);
      const hist = await ctx.scoped('usageHistogram', () => usageHistogram(ctx, buf, numel, tasks));
      ctx.destroyBuffer(buf);
      expect(hist, `${tasks} tasks x ${numel}`).toEqual(usageHistogramRef(counts, numel, tasks));
    }
  });
});

describe('host-side checks', () => {
  it('rejects bad arguments, naming the kernel', async () => {
    const buf = uploadF32(ctx, 'stack', new Float32Array(40));
    expect(() => trimMask(ctx, buf, 2, 20, new Uint32Array(3))).toThrow(/trim_mask: thresholdBits needs one entry per row/);
    expect(() => trimMask(ctx, buf, 3, 20, new Uint32Array(3))).toThrow(/trim_mask: buffer 'stack'/);
    const keys = new Uint32Array(2);
    expect(() => dareDrop(ctx, buf, 2, 20, { keys, elementOffset: 0, p: 1, scale: 1 })).toThrow(/dare_drop: p must lie in \[0, 1\)/);
    expect(() => dareDrop(ctx, buf, 2, 20, { keys, elementOffset: 2 ** 32 - 10, p: 0.5, scale: 2 })).toThrow(/dare_drop: elementOffset/);
    expect(() => disjointMerge(ctx, buf, 2, 20, 'sum', { rule: 'majority', majority: 2 as 1 })).toThrow(/disjoint_merge: zeroSign/);
    expect(() => tallMask(ctx, buf, 33, 1, buf, new Float32Array(33), { counts: buf, bitfield: buf })).toThrow(/tall_mask: a mask bitfield holds at most 32/);
    expect(() => bitmaskApply(ctx, buf, 0, buf, 10, buf)).toThrow(/bitmask_apply: out must be a different buffer/);
    expect(() => magmaxSelect(ctx, buf, 0, 20)).toThrow(/magmax_select: rows must be an integer >= 1/);
    await expect(usageHistogram(ctx, buf, 10, 1023)).rejects.toThrow(/usage_histogram: at most 1022 tasks, got 1023/);
    ctx.destroyBuffer(buf);
  });

  it('reports usage counts above the task count', async () => {
    const buf = uploadU32('bad counts', new Uint32Array([0, 1, 4, 2]));
    await expect(usageHistogram(ctx, buf, 4, 3)).rejects.toThrow(/usage_histogram: 1 counts in 'bad counts' exceed the 3 tasks/);
    ctx.destroyBuffer(buf);
  });

  it('treats numel 0 as a no-op with empty results', async () => {
    const buf = uploadF32(ctx, 'empty', new Float32Array(1));
    magmaxSelect(ctx, buf, 3, 0);
    expect(await signSum(ctx, buf, 3, 0)).toBe(0);
    expect(await rowStats(ctx, buf, 2, 0)).toEqual([0, 0].map(() => ({ sumSquares: 0, sumAbs: 0, nonZero: 0, nonFinite: 0 })));
    expect(Array.from(await gram(ctx, buf, 2, 0))).toEqual([0, 0, 0, 0]);
    expect(await usageHistogram(ctx, buf, 0, 2)).toEqual([0, 0, 0]);
    ctx.destroyBuffer(buf);
  });
});
