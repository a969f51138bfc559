/**
 * Every GPU kernel against its CPU twin (src/engine/reference/kernels.ts) on seeded random inputs and edge cases.
 *
 * Tolerances: unpack is bit-exact. task_vector, combine and pack_add are bit-exact against the twin run either
 * with IEEE subnormals or with subnormals flushed to zero (WGSL lets a device flush them; SwiftShader does), per
 * element; for f32 outputs any NaN matches any NaN (devices differ in NaN sign and payload), while pack_add's
 * encoded words must be identical, NaN included. combine is exact even on compilers that fuse multiply-adds
 * (NVIDIA's does; the kernel keeps each product rounded). sum_squares: relative error <= 1e-5 (f32 partials).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { combine, packAdd, readBuffer, SquareSums, squaredNorms, sumSquares, taskVector, unpack, uploadRaw, type RawDType } from '../../src/engine/gpu/kernels';
import {
  combineRef,
  packAddRef,
  sumSquaresRef,
  taskVectorRef,
  unpackRef,
  type F32Mode,
} from '../../src/engine/reference/kernels';
import { rngKey, rngU32, rngUniform } from '../../src/engine/rng';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { DTYPE_BYTES } from '../../src/engine/types';
import { emptyF32, readF32, releaseTestContext, testContext, testUsage, uploadF32 } from '../helpers/gpu';

const FLUSH: F32Mode = { flushSubnormals: true };
const DTYPES: RawDType[] = ['F32', 'F16', 'BF16'];
const SUM_SQUARES_RTOL = 1e-5;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** Seeded f32 values in ±[2^-9, 2^8): realistic weights, no subnormals. */
function randomF32(seed: number, n: number): Float32Array {
  const key = rngKey(seed, 0, 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rngUniform(key, 2 * i) - 0.5) * 2 ** ((rngU32(key, 2 * i + 1) % 17) - 8);
  return out;
}

/** Every ordered pair of awkward f32 values: zeros, subnormals, f16 limits, huge, infinite, NaN. */
function edgePairs(): { a: Float32Array; b: Float32Array } {
  const edges = [0, -0, 1, -1.5, 2 ** -126, 1e-40, -1e-40, 2 ** -24, 3 * 2 ** -26, 65504, 65520, -70000, 1e30, -3.4e38, Infinity, -Infinity, NaN];
  const a = new Float32Array(edges.length ** 2);
  const b = new Float32Array(edges.length ** 2);
  edges.forEach((x, i) => edges.forEach((y, k) => ((a[i * edges.length + k] = x), (b[i * edges.length + k] = y))));
  return { a, b };
}

const isNaNBits = (bits: number) => (bits & 0x7fffffff) > 0x7f800000;
const hex = (bits: number) => `0x${bits.toString(16)}`;
const f32Bits = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
const elementBits = (bytes: Uint8Array, size: number) =>
  size === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);

/**
 * Expects `actual` to equal `exact` element by element, or where it does not, `flushed()` (the twin with
 * subnormals flushed). `nanAny`: any NaN equals any NaN (f32 working values). Reports the first mismatches.
 */
function expectBits(what: string, actual: Uint32Array | Uint16Array, exact: Uint32Array | Uint16Array, flushed?: () => Uint32Array | Uint16Array, nanAny = false): void {
  expect(actual.length, `${what}: length`).toBe(exact.length);
  const same = (x: number, y: number) => x === y || (nanAny && isNaNBits(x) && isNaNBits(y));
  let bad: number[] = [];
  for (let j = 0; j < actual.length; j++) if (!same(actual[j]!, exact[j]!)) bad.push(j);
  if (bad.length > 0 && flushed) {
    const alt = flushed();
    bad = bad.filter((j) => !same(actual[j]!, alt[j]!));
  }
  const report = bad.slice(0, 5).map((j) => `[${j}] gpu ${hex(actual[j]!)} cpu ${hex(exact[j]!)}`);
  expect(report, `${what}: ${bad.length} mismatches`).toEqual([]);
}

async function runUnpack(raw: Uint8Array, dtype: RawDType, numel: number): Promise<Float32Array> {
  const rawBuf = uploadRaw(ctx, 'raw', raw);
  const out = emptyF32(ctx, 'unpacked', numel);
  await ctx.scoped('unpack', () => unpack(ctx, rawBuf, dtype, numel, out));
  const result = await readF32(ctx, out, numel);
  ctx.destroyBuffer(rawBuf);
  ctx.destroyBuffer(out);
  return result;
}

async function checkTaskVector(what: string, raw: Uint8Array, dtype: RawDType, base: Float32Array, rows: number, row: number): Promise<Float32Array> {
  const numel = base.length;
  const rawBuf = uploadRaw(ctx, 'raw ft', raw);
  const baseBuf = uploadF32(ctx, 'base', base);
  const stackBuf = emptyF32(ctx, 'stack', rows * numel);
  await ctx.scoped(what, () => taskVector(ctx, rawBuf, dtype, baseBuf, numel, stackBuf, row));
  const gpu = await readF32(ctx, stackBuf, rows * numel);
  [rawBuf, baseBuf, stackBuf].forEach((b) => ctx.destroyBuffer(b));
  const twin = (mode?: F32Mode) => {
    const stack = new Float32Array(rows * numel);
    taskVectorRef(raw, dtype, base, numel, stack, row, mode);
    return f32Bits(stack);
  };
  expectBits(what, f32Bits(gpu), twin(), () => twin(FLUSH), true);
  return gpu;
}

async function checkCombine(what: string, stack: Float32Array, rows: number, coeffs: Float32Array): Promise<void> {
  const numel = stack.length / rows;
  const stackBuf = uploadF32(ctx, 'stack', stack);
  const out = emptyF32(ctx, 'combined', numel);
  await ctx.scoped(what, () => combine(ctx, stackBuf, rows, numel, coeffs, out));
  const gpu = await readF32(ctx, out, numel);
  [stackBuf, out].forEach((b) => ctx.destroyBuffer(b));
  const twin = (mode?: F32Mode) => f32Bits(combineRef(stack, rows, numel, coeffs, mode));
  expectBits(what, f32Bits(gpu), twin(), () => twin(FLUSH), true);
}

async function checkPackAdd(what: string, base: Float32Array, delta: Float32Array, dtype: RawDType): Promise<void> {
  const numel = base.length;
  const size = DTYPE_BYTES[dtype];
  const baseBuf = uploadF32(ctx, 'base', base);
  const deltaBuf = uploadF32(ctx, 'delta', delta);
  const out = ctx.createBuffer('packed', numel * size, testUsage());
  await ctx.scoped(what, () => packAdd(ctx, baseBuf, deltaBuf, numel, dtype, out));
  const gpu = await readBuffer(ctx, out, numel * size);
  [baseBuf, deltaBuf, out].forEach((b) => ctx.destroyBuffer(b));
  const twin = (mode?: F32Mode) => elementBits(packAddRef(base, delta, numel, dtype, mode), size);
  expectBits(what, elementBits(gpu, size), twin(), () => twin(FLUSH));
}

async function checkSumSquares(what: string, data: Float32Array, rows: number): Promise<void> {
  const numel = data.length / rows;
  const buf = uploadF32(ctx, 'data', data);
  const gpu = await ctx.scoped(what, () => sumSquares(ctx, buf, rows, numel));
  ctx.destroyBuffer(buf);
  const cpu = sumSquaresRef(data, rows, numel);
  for (let r = 0; r < rows; r++) {
    expect(Math.abs(gpu[r]! - cpu[r]!), `${what} row ${r}: gpu ${gpu[r]} cpu ${cpu[r]}`).toBeLessThanOrEqual(SUM_SQUARES_RTOL * cpu[r]!);
  }
}

describe('unpack', () => {
  it.each(['F16', 'BF16'] as const)('decodes all 65536 %s bit patterns exactly (odd length 65535 too)', async (dtype) => {
    const patterns = new Uint16Array(65536).map((_, i) => i);
    const raw = new Uint8Array(patterns.buffer);
    for (const numel of [65536, 65535]) {
      expectBits(`${dtype} x${numel}`, f32Bits(await runUnpack(raw, dtype, numel)), f32Bits(unpackRef(raw, dtype, numel)), undefined, true);
    }
  });

  it('copies F32 bit patterns (subnormals, infinities, NaN) exactly', async () => {
    const key = rngKey(1, 0, 0);
    const words = Uint32Array.from({ length: 1001 }, (_, i) => rngU32(key, i));
    words.set([0, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffa00001]);
    const raw = new Uint8Array(words.buffer);
    expectBits('F32', f32Bits(await runUnpack(raw, 'F32', 1001)), f32Bits(unpackRef(raw, 'F32', 1001)), undefined, true);
  });

  it.each(DTYPES)('handles numel 1 and 3 for %s', async (dtype) => {
    const raw = encodeFloats([1.5, -2.25, 3], dtype);
    for (const numel of [1, 3]) {
      expect(Array.from(await runUnpack(raw.subarray(0, numel * (DTYPE_BYTES[dtype])), dtype, numel))).toEqual([1.5, -2.25, 3].slice(0, numel));
    }
  });
});

describe('taskVector', () => {
  it.each(DTYPES)('matches the twin on random %s inputs, writing only its row', async (dtype) => {
    const numel = 4099;
    await checkTaskVector(`${dtype} random`, encodeFloats(randomF32(2, numel), dtype), dtype, randomF32(3, numel), 3, 2);
  });

  it.each(DTYPES)('matches the twin on %s edge values (±0, subnormals, infinities, NaN, huge)', async (dtype) => {
    const { a, b } = edgePairs();
    await checkTaskVector(`${dtype} edges`, encodeFloats(a, dtype), dtype, b, 2, 1);
  });

  it('handles numel 1', async () => {
    const stack = await checkTaskVector('numel 1', encodeFloats([2.5], 'BF16'), 'BF16', new Float32Array([0.5]), 2, 1);
    expect(Array.from(stack)).toEqual([0, 2]);
  });
});

describe('combine', () => {
  it.each([
    [1, 257],
    [3, 5000],
    [20, 1],
    [20, 1001],
    [2, 1002],
    [2, 1003],
  ])('matches the twin exactly with %i rows of %i elements', async (rows, numel) => {
    const coeffs = randomF32(10 + rows, rows);
    coeffs[0] = 0;
    await checkCombine(`${rows}x${numel}`, randomF32(20 + rows, rows * numel), rows, coeffs);
  });

  it('propagates infinities, NaN and signed zeros like the twin', async () => {
    const { a, b } = edgePairs();
    const stack = new Float32Array(a.length * 2);
    stack.set(a);
    stack.set(b, a.length);
    await checkCombine('edges', stack, 2, new Float32Array([0.5, -2]));
  });
});

describe('packAdd', () => {
  it.each(DTYPES)('is bit-exact on random %s output, odd lengths included', async (dtype) => {
    // Every remainder of a 4-element thread group.
    for (const numel of [1, 2, 3, 4, 1001, 1002, 1003]) {
      await checkPackAdd(`${dtype} x${numel}`, randomF32(30 + numel, numel), randomF32(40 + numel, numel), dtype);
    }
  });

  it.each(DTYPES)('is bit-exact on %s edge values (overflow to inf, NaN, ±0, subnormals)', async (dtype) => {
    const { a, b } = edgePairs();
    await checkPackAdd(`${dtype} edges`, a, b, dtype);
  });

  it('rounds every F16 tie to even (and near-ties to nearest), subnormals included', async () => {
    // Midpoint of each pair of neighbouring positive f16 values, one f32 ulp either side, both signs.
    const values: number[] = [];
    const f16 = (h: number) => unpackRef(new Uint8Array(new Uint16Array([h]).buffer), 'F16', 1)[0]!;
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (f16(h) + f16(h + 1)) / 2;
      for (const v of [mid, Math.fround(mid * (1 + 2 ** -23)), Math.fround(mid * (1 - 2 ** -23))]) values.push(v, -v);
    }
    const base = new Float32Array(values);
    await checkPackAdd('f16 ties', base, new Float32Array(base.length).fill(-0), 'F16');
  });

  it('rounds every BF16 tie to even (and near-ties to nearest)', async () => {
    const words: number[] = [];
    for (let k = 0; k < 0x7f7f; k++) {
      const mid = ((k << 16) | 0x8000) >>> 0;
      words.push(mid, mid + 1, mid - 1, (mid | 0x80000000) >>> 0);
    }
    const base = new Float32Array(Uint32Array.from(words).buffer);
    await checkPackAdd('bf16 ties', base, new Float32Array(base.length), 'BF16');
  });
});

describe('quad-bound outputs', () => {
  it('combine and packAdd leave the padding words past their output alone', async () => {
    const SENTINEL = 0xdeadbeef;
    for (const numel of [1, 2, 3, 5, 1001, 1004]) {
      const stackBuf = uploadF32(ctx, 'stack', randomF32(50 + numel, 2 * numel));
      const base = uploadF32(ctx, 'base', randomF32(60 + numel, numel));
      for (const [what, words, run] of [
        ['combine', numel, (out: GPUBuffer) => combine(ctx, stackBuf, 2, numel, new Float32Array([0.5, -1]), out)],
        ['packAdd F32', numel, (out: GPUBuffer) => packAdd(ctx, base, base, numel, 'F32', out)],
        ['packAdd BF16', Math.ceil(numel / 2), (out: GPUBuffer) => packAdd(ctx, base, base, numel, 'BF16', out)],
      ] as const) {
        // A whole number of quads past the output, all sentinels.
        const capacity = Math.ceil(words / 4) * 4 + 4;
        const out = uploadF32(ctx, 'out', new Float32Array(new Uint32Array(capacity).fill(SENTINEL).buffer));
        await ctx.scoped(what, async () => run(out));
        const got = new Uint32Array((await readBuffer(ctx, out, capacity * 4)).slice().buffer);
        ctx.destroyBuffer(out);
        expect(Array.from(got.subarray(words)), `${what} x${numel}`).toEqual(new Array(capacity - words).fill(SENTINEL));
        expect(got.subarray(0, words).includes(SENTINEL), `${what} x${numel} wrote its words`).toBe(false);
      }
      [stackBuf, base].forEach((b) => ctx.destroyBuffer(b));
    }
  });
});

describe('sumSquares', () => {
  it.each([
    [1, 1],
    [1, 4095],
    [3, 4097],
    [2, 10000],
  ])(`matches the float64 twin within ${SUM_SQUARES_RTOL} relative with %i rows of %i`, async (rows, numel) => {
    await checkSumSquares(`${rows}x${numel}`, randomF32(50 + numel, rows * numel), rows);
  });

  it('gives exactly 0 for zeros', async () => {
    const buf = uploadF32(ctx, 'zeros', new Float32Array(777));
    expect(Array.from(await sumSquares(ctx, buf, 1, 777))).toEqual([0]);
    ctx.destroyBuffer(buf);
  });
});

describe('SquareSums', () => {
  it('reads the sums of several buffers in one readback, each as it was when added', async () => {
    // 3 segments of 1, 5 and 2 rows: the partials of each start on the storage offset alignment.
    const numel = 3001;
    const rows = [1, 5, 2];
    const data = rows.map((r, i) => randomF32(70 + i, r * numel));
    const bufs = data.map((d, i) => uploadF32(ctx, `data ${i}`, d));
    const sums = new SquareSums(ctx, numel, rows);
    sums.add(bufs[0]!);
    sums.add(bufs[1]!);
    // Written after its sums were queued: the first buffer's sums must not see it.
    ctx.device.queue.writeBuffer(bufs[0]!, 0, new Float32Array(numel).fill(3));
    sums.add(bufs[2]!);
    const gpu = await ctx.scoped('square sums', () => sums.read());
    bufs.forEach((b) => ctx.destroyBuffer(b));
    expect(gpu.map((g) => g.length)).toEqual(rows);
    rows.forEach((r, i) => {
      const cpu = sumSquaresRef(data[i]!, r, numel);
      for (let k = 0; k < r; k++) expect(Math.abs(gpu[i]![k]! - cpu[k]!), `buffer ${i} row ${k}`).toBeLessThanOrEqual(SUM_SQUARES_RTOL * cpu[k]!);
    });
  });

  it('takes buffers of different sizes: squaredNorms gives what sumSquares gives for each, bit for bit', async () => {
    const sizes = [1, 255, 256, 257, 3001, 70_000];
    const data = sizes.map((n, i) => randomF32(90 + i, n));
    const bufs = data.map((d, i) => uploadF32(ctx, `data ${i}`, d));
    const items = bufs.map((buf, i) => ({ buf, numel: sizes[i]! }));
    const together = await ctx.scoped('squared norms', () => squaredNorms(ctx, items));
    // In runs of at most 20 partial sums (one per 256 elements), and a buffer alone when it has more.
    expect(await ctx.scoped('squared norms in runs', () => squaredNorms(ctx, items, 20))).toEqual(together);
    const alone: number[] = [];
    for (let i = 0; i < sizes.length; i++) alone.push((await sumSquares(ctx, bufs[i]!, 1, sizes[i]!))[0]!);
    bufs.forEach((b) => ctx.destroyBuffer(b));
    expect(together).toEqual(alone);
    sizes.forEach((n, i) => expect(Math.abs(together[i]! - sumSquaresRef(data[i]!, 1, n)[0]!)).toBeLessThanOrEqual(SUM_SQUARES_RTOL * together[i]!));
    expect(() => new SquareSums(ctx, [3, 4], [1])).toThrow(/2 element counts for 1 buffers/);
    expect(ctx.allocatedBytes).toBe(0);
  });

  it('gives zeros for buffers never added and for empty shapes, and refuses a buffer past its list', async () => {
    const buf = uploadF32(ctx, 'ones', new Float32Array(64).fill(1));
    const sums = new SquareSums(ctx, 64, [1, 0, 2]);
    sums.add(buf);
    sums.add(buf);
    expect((await sums.read()).map((g) => Array.from(g))).toEqual([[64], [], [0, 0]]);
    const empty = new SquareSums(ctx, 0, [2]);
    empty.add(buf);
    expect(() => empty.add(buf)).toThrow(/1 buffer\(s\) planned, one more added/);
    expect(Array.from((await empty.read())[0]!)).toEqual([0, 0]);
    ctx.destroyBuffer(buf);
  });
});

describe('a tensor larger than one dispatch dimension', () => {
  it('taskVector and sumSquares cover all 65535 * 256 + 1001 elements', async () => {
    const numel = 65535 * 256 + 1001;
    // Random f16 words with |value| < 1, and a cheap varied base.
    const key = rngKey(60, 0, 0);
    const words = new Uint32Array(Math.ceil(numel / 2));
    for (let i = 0; i < words.length; i++) words[i] = rngU32(key, i) & 0xbbffbbff;
    const base = new Float32Array(numel);
    for (let j = 0; j < numel; j++) base[j] = (j % 1000) / 1024 - 0.5;
    const raw = new Uint8Array(words.buffer, 0, numel * 2);
    const rawBuf = uploadRaw(ctx, 'raw ft', raw);
    const baseBuf = uploadF32(ctx, 'base', base);
    const out = emptyF32(ctx, 'task vector', numel);
    await ctx.scoped('large taskVector', () => taskVector(ctx, rawBuf, 'F16', baseBuf, numel, out, 0));
    const gpuSums = await sumSquares(ctx, out, 1, numel);
    const gpu = await readF32(ctx, out, numel);
    [rawBuf, baseBuf, out].forEach((b) => ctx.destroyBuffer(b));
    const cpu = new Float32Array(numel);
    taskVectorRef(raw, 'F16', base, numel, cpu, 0);
    expectBits('large taskVector', f32Bits(gpu), f32Bits(cpu));
    const cpuSums = sumSquaresRef(cpu, 1, numel);
    expect(Math.abs(gpuSums[0]! - cpuSums[0]!)).toBeLessThanOrEqual(SUM_SQUARES_RTOL * cpuSums[0]!);
  });
});

describe('host-side checks', () => {
  it('rejects a too-small output buffer, naming it', async () => {
    const raw = uploadRaw(ctx, 'raw', new Uint8Array(40));
    const out = emptyF32(ctx, 'small out', 5);
    expect(() => unpack(ctx, raw, 'F32', 10, out)).toThrow(/small out/);
    ctx.destroyBuffer(raw);
    ctx.destroyBuffer(out);
  });
});
