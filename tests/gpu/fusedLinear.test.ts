/**
 * The kernels that read a chunk's raw model bytes in one launch, against their CPU twins (reference/linearMerge.ts,
 * compositions of the unpack, task_vector, (magmax_select, or combine + tall_mask + count_mask,) combine and pack_add
 * twins): linear_merge (the fused linear merge), magmax_output (MagMax's fused output), consensus_output (Consensus
 * Merging's, then Task Arithmetic; finite inputs, as its masks assume) and decode_stack (theta0 and the task-vector stack), on seeded random
 * inputs and edge cases: lengths that are not a
 * multiple of 4 or of the 16-element block, F32/F16/BF16 inputs (base and models in different encodings, models in
 * different encodings for decode_stack), F32/F16/BF16 outputs, NaN / infinities / subnormals / huge values, 1, 8 and
 * 20 models, negative and zero coefficients.
 *
 * Tolerances: values bit-exact per element against the twin run with IEEE subnormals or with subnormals flushed
 * (WGSL lets a device flush them; SwiftShader does); linear_merge's encoded NaN is canonical, decode_stack's f32 NaN
 * may be any NaN. Norms: squared norms of theta0, each tau_t and the delta, from per-thread f32 partials of 16
 * elements folded in float64: relative error <= 1e-5 (finite inputs); with a NaN input both sides are NaN; a sum past
 * f32's range may be Infinity on the GPU. Non-finite flags (FINITE, in place of the norms): exactly the twin's, one
 * per 16-element block, with the same output bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { decodeStack, readBuffer, type RawDType } from '../../src/engine/gpu/kernels';
import { foldLinearPartials, LinearMergeKernel, type DareTensorDrop, linearMergeOutBytes, linearMergeThreads, sameCoefficients } from '../../src/engine/gpu/linearMerge';
import { consensusOutputRef, dareOutputRef, decodeStackRef, keptOutputRef, linearMergeRef, magmaxOutputRef, type DareLaunch, type RawInput } from '../../src/engine/reference/linearMerge';
import { MAX_DROP_PARTS } from '../../src/engine/gpu/constants';
import { rngKey, rngUniform, stringId } from '../../src/engine/rng';
import { DTYPE_BYTES } from '../../src/engine/types';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';
import { EDGES, input, pack, randomValues, words } from '../helpers/rawInputs';

const NORM_RTOL = 1e-5;
const F32_MAX = 3.4028234663852886e38;

let ctx: GpuContext;
let kernel: LinearMergeKernel;
let magmax: LinearMergeKernel;
let dare: LinearMergeKernel;
let consensus: LinearMergeKernel;
let kept: LinearMergeKernel;
/** The kept-entry words the masked test kernel applies, per tensor (tensor 'w' for a chunk of one tensor), and their scale. */
let keep: { words: Map<string, Uint32Array>; scale: number } = { words: new Map(), scale: 1 };
/** The masks the consensus test kernel applies (every tensor alike). */
let mask = { lambdas: new Float32Array(0), k: 0 };
/** What the DARE test kernel drops (every tensor alike), and where the chunk starts in its tensor (tensor 'w'). */
let drop: DareTensorDrop & { elementOffset: number } = { seed: 0, p: 0, scale: 1, elementOffset: 0 };
/** With DARE: the tensors one launch covers one after the other (each from element `at`), or null for tensor 'w' alone. */
let parts: { name: string; at: number }[] | null = null;
/** The DARE test kernel's launch as its twin takes it. */
const dareLaunch = (): DareLaunch => ({
  ...drop,
  parts: parts ? parts.map((q) => ({ at: q.at, elementOffset: 0, tensorId: stringId(q.name) })) : [{ at: 0, elementOffset: drop.elementOffset, tensorId: stringId('w') }],
});
beforeAll(async () => {
  ctx = await testContext();
  kernel = new LinearMergeKernel(ctx);
  magmax = new LinearMergeKernel(ctx, 'magmax_output');
  dare = new LinearMergeKernel(ctx, 'linear_merge', () => drop);
  consensus = new LinearMergeKernel(ctx, 'consensus_output', undefined, () => mask);
  kept = new LinearMergeKernel(ctx, 'linear_merge', undefined, undefined, {
    words: (name, start, count) => keep.words.get(name)!.subarray(start, start + count),
    get scale() {
      return keep.scale;
    },
  });
});
afterAll(async () => {
  kernel.destroy();
  magmax.destroy();
  dare.destroy();
  consensus.destroy();
  kept.destroy();
  await releaseTestContext();
});

/** The fused kernel a test runs, and its twin. */
type Shader = 'linear_merge' | 'magmax_output' | 'linear_merge with DARE' | 'consensus_output' | 'linear_merge with kept entries';
type Twin = (inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, outDtype: RawDType, mode?: { flushSubnormals?: boolean }) => ReturnType<typeof linearMergeRef>;
const kernelOf = (shader: Shader) => ({ linear_merge: kernel, magmax_output: magmax, 'linear_merge with DARE': dare, consensus_output: consensus, 'linear_merge with kept entries': kept })[shader];
/** The masked test kernel's words for a launch: tensor 'w' alone, or the parts' words at their places. */
const keptWords = (numel: number): Uint32Array => {
  if (!parts) return keep.words.get('w')!.subarray(0, numel);
  const words = new Uint32Array(numel);
  for (const q of parts) words.set(keep.words.get(q.name)!, q.at);
  return words;
};
const TWINS: Record<Shader, Twin> = {
  linear_merge: linearMergeRef,
  magmax_output: magmaxOutputRef,
  'linear_merge with DARE': (inputs, numel, coeffs, outDtype, mode) => dareOutputRef(inputs, numel, coeffs, dareLaunch(), outDtype, mode),
  consensus_output: (inputs, numel, coeffs, outDtype, mode) => consensusOutputRef(inputs, numel, coeffs, mask, outDtype, mode),
  'linear_merge with kept entries': (inputs, numel, coeffs, outDtype, mode) => keptOutputRef(inputs, numel, coeffs, { words: keptWords(numel), scale: keep.scale }, outDtype, mode),
};
const twinOf = (shader: Shader): Twin => TWINS[shader];

async function runGpu(inputs: readonly RawInput[], numel: number, coeffs: Float32Array, outDtype: RawDType, shader: Shader = 'linear_merge', flags = false) {
  const { bytes, segments } = pack(inputs, numel);
  const inBuf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
  ctx.device.queue.writeBuffer(inBuf, 0, bytes);
  const out = ctx.createBuffer('out', linearMergeOutBytes(numel, outDtype), testUsage());
  const rows = flags ? 1 : inputs.length + 1;
  const partials = ctx.createBuffer('partials', rows * linearMergeThreads(numel) * 4, testUsage());
  try {
    await ctx.scoped('linear_merge', () => {
      const encoder = ctx.device.createCommandEncoder();
      const many = parts && shader !== 'linear_merge' ? { parts: parts.map((q) => ({ ...q, shape: [keep.words.get(q.name)?.length ?? 1] })) } : {};
      kernelOf(shader).encode(encoder, { inputs: inBuf, segments, numel, coeffs, outDtype, out, partials, flags, chunk: { name: 'w', shape: [numel], start: drop.elementOffset }, ...many });
      ctx.device.queue.submit([encoder.finish()]);
    });
    const outBytes = await readBuffer(ctx, out, numel * DTYPE_BYTES[outDtype]);
    const p = await readBuffer(ctx, partials, rows * linearMergeThreads(numel) * 4);
    const floats = new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4);
    return { bytes: outBytes, totals: foldLinearPartials(floats, rows), floats };
  } finally {
    [inBuf, out, partials].forEach((b) => ctx.destroyBuffer(b));
  }
}

/** Runs the kernel and the twin (IEEE and flushed subnormals) and compares words and norms. */
async function check(what: string, inputs: readonly RawInput[], numel: number, coeffs: Float32Array, outDtype: RawDType, shader: Shader = 'linear_merge'): Promise<void> {
  const gpu = await runGpu(inputs, numel, coeffs, outDtype, shader);
  const twin = twinOf(shader);
  const exact = twin(inputs, numel, coeffs, outDtype);
  const flushed = twin(inputs, numel, coeffs, outDtype, { flushSubnormals: true });
  const [g, e, f] = [gpu.bytes, exact.bytes, flushed.bytes].map((b) => words(b, outDtype));
  const bad: string[] = [];
  for (let j = 0; j < g!.length && bad.length < 5; j++) {
    if (g![j] !== e![j] && g![j] !== f![j]) bad.push(`[${j}] gpu 0x${g![j]!.toString(16)} cpu 0x${e![j]!.toString(16)}`);
  }
  expect(bad, `${what}: output words`).toEqual([]);
  const want = [exact.baseSq, ...exact.tvSq, exact.deltaSq];
  want.forEach((w, r) => {
    const got = gpu.totals[r]!;
    if (Number.isNaN(w)) expect(got, `${what}: norm row ${r}`).toBeNaN();
    // Squares past f32's range overflow the f32 partials (finite huge inputs).
    else if (w > F32_MAX && got === Infinity) return;
    else expect(Math.abs(got - w), `${what}: norm row ${r}: gpu ${got} cpu ${w}`).toBeLessThanOrEqual(NORM_RTOL * w + 1e-30);
  });
  // FINITE in place of the norms: the same output, and one flag per block exactly as the twin's.
  const flagged = await runGpu(inputs, numel, coeffs, outDtype, shader, true);
  expect(Buffer.from(flagged.bytes).equals(Buffer.from(gpu.bytes)), `${what}: output with flags`).toBe(true);
  expect(Array.from(flagged.floats), `${what}: flags`).toEqual(Array.from(exact.flags));
}

/** theta0 from seed `baseSeed`, and `tasks` models near it from seeds modelSeed, modelSeed + 1, ... */
function randomInputs(baseSeed: number, modelSeed: number, tasks: number, numel: number, dtype: RawDType): RawInput[] {
  const base = randomValues(baseSeed, numel);
  return [input(base, dtype), ...Array.from({ length: tasks }, (_, t) => input(randomValues(modelSeed + t, numel, base), dtype))];
}

/** Every ordered pair of `values` as (a[j], b[j]): a holds the first of each pair, b the second; n pairs. */
function valuePairs(values: readonly number[]): { a: Float32Array; b: Float32Array; n: number } {
  const n = values.length ** 2;
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  values.forEach((x, i) => values.forEach((y, k) => ((a[i * values.length + k] = x), (b[i * values.length + k] = y))));
  return { a, b, n };
}

function coefficients(seed: number, tasks: number): Float32Array {
  const key = rngKey(seed, 3, 4);
  return Float32Array.from({ length: tasks }, (_, t) => (t % 5 === 4 ? 0 : (rngUniform(key, t) - 0.3) * 2));
}

describe('linear_merge', () => {
  it('matches the twin on f32 inputs for 1, 8 and 20 models and awkward lengths, every output dtype', async () => {
    for (const [tasks, numel] of [
      [1, 1],
      [1, 37],
      [8, 1001],
      [20, 16 * 5 + 3],
    ] as const) {
      const base = randomValues(tasks * 7 + numel, numel);
      const inputs = [input(base, 'F32'), ...Array.from({ length: tasks }, (_, t) => input(randomValues(100 + t, numel, base), 'F32'))];
      for (const out of ['F32', 'F16', 'BF16'] as const) await check(`${tasks} models x ${numel}, out ${out}`, inputs, numel, coefficients(tasks, tasks), out);
    }
  });

  it('reads one coefficient when every model has the same one (SAME_COEFF), but not for +0 against -0', async () => {
    expect(sameCoefficients(Float32Array.from([0.3, 0.3, 0.3]))).toBe(true);
    expect(sameCoefficients(Float32Array.from([0, -0]))).toBe(false);
    expect(sameCoefficients(Float32Array.from([NaN, NaN]))).toBe(true);
    expect(sameCoefficients(Float32Array.from([0.3, 0.3000001]))).toBe(false);
    const numel = 16 * 9 + 5;
    const base = randomValues(77, numel);
    const inputs = [input(base, 'F32'), ...Array.from({ length: 7 }, (_, t) => input(randomValues(300 + t, numel, base), 'F32'))];
    for (const c of [0.3, -0.7, 0, -0]) {
      for (const out of ['F32', 'BF16'] as const) await check(`7 models, every coefficient ${Object.is(c, -0) ? '-0' : c}, out ${out}`, inputs, numel, new Float32Array(7).fill(c), out);
    }
    await check('7 models, +0 and -0 coefficients', inputs, numel, Float32Array.from([0, -0, 0, -0, 0, -0, 0]), 'F32');
  });

  it('decodes f16 and bf16 inputs, also with a base in another encoding than the models', async () => {
    const numel = 515;
    const base = randomValues(5, numel);
    for (const [baseDtype, modelDtype] of [
      ['F16', 'F16'],
      ['BF16', 'BF16'],
      ['F32', 'BF16'],
      ['F32', 'F16'],
      ['BF16', 'F32'],
    ] as const) {
      const inputs = [input(base, baseDtype), ...Array.from({ length: 3 }, (_, t) => input(randomValues(50 + t, numel, base), modelDtype))];
      await check(`${baseDtype} base, ${modelDtype} models`, inputs, numel, coefficients(9, 3), baseDtype === 'F32' ? 'F32' : baseDtype);
    }
  });

  it('carries NaN, infinities, subnormals and overflow like the twin', async () => {
    // Every ordered pair of edge values as (theta0, model 0); model 1 = model 0 reversed.
    const { a, b, n } = valuePairs(EDGES);
    const c = b.slice().reverse();
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const inputs = [input(a, dtype), input(b, dtype), input(c, dtype)];
      for (const out of ['F32', 'F16', 'BF16'] as const) {
        await check(`edges in ${dtype}, out ${out}`, inputs, n, Float32Array.from([0.5, -3]), out);
      }
    }
  });

  it("adds theta0's coefficient (SLERP: one coefficient more than models) after the models, like the twin", async () => {
    for (const [tasks, numel] of [
      [1, 37],
      [2, 1001],
      [8, 16 * 5 + 3],
    ] as const) {
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const inputs = randomInputs(tasks + numel, 300, tasks, numel, dtype);
        const coeffs = Float32Array.from([...coefficients(tasks + 1, tasks), -0.375]);
        await check(`${tasks} models x ${numel} in ${dtype}, theta0 coefficient`, inputs, numel, coeffs, dtype);
      }
    }
    // SAME_COEFF looks at the models' coefficients only; theta0's differs from them, or is +0 / -0 against +0 ones.
    const inputs = randomInputs(8, 9, 3, 100, 'F32');
    for (const last of [2, 0, -0]) await check(`same model coefficients, theta0 ${Object.is(last, -0) ? '-0' : last}`, inputs, 100, Float32Array.from([0.5, 0.5, 0.5, last]), 'F32');
    // Edge values as (theta0, model 0), model 1 reversed: 0 * inf and NaN bases as the twin's combine over theta0's row.
    const { a, b, n } = valuePairs(EDGES);
    const edges = [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')];
    for (const coeffs of [[0.5, -3, 0], [0.25, 0.75, -1.5]]) await check(`edges, coefficients ${coeffs}`, edges, n, Float32Array.from(coeffs), 'F32');
  });

  it("takes theta0's coefficient only without a drop, and no more coefficients than that", () => {
    const buf = ctx.createBuffer('inputs', 1024, testUsage());
    const encoder = ctx.device.createCommandEncoder();
    const args = { inputs: buf, segments: [{ offset: 0, dtype: 'F32' as const }, { offset: 64, dtype: 'F32' as const }], numel: 16, outDtype: 'F32' as const, out: buf, partials: null, chunk: { name: 'w', shape: [16], start: 0 } };
    expect(() => kernel.encode(encoder, { ...args, coeffs: new Float32Array([1, 1, 1]) })).toThrow(/linear_merge: needs .*one coefficient per model \(and optionally one for theta0\), got 2 segments, 3 coefficients/);
    mask = { lambdas: new Float32Array([1]), k: 1 };
    for (const [k, name] of [[magmax, 'magmax_output'], [dare, 'linear_merge with DARE'], [consensus, 'consensus_output']] as const) {
      expect(() => k.encode(encoder, { ...args, coeffs: new Float32Array([1, 1]) }), name).toThrow(new RegExp(`${name}: needs .*one coefficient per model, got 2 segments, 2 coefficients`));
    }
    ctx.destroyBuffer(buf);
  });

  it('rejects models that are not evenly spaced or share no dtype, naming the segment', async () => {
    const buf = ctx.createBuffer('inputs', 1024, testUsage());
    const out = ctx.createBuffer('out', 1024, testUsage());
    const encoder = ctx.device.createCommandEncoder();
    const args = { inputs: buf, numel: 16, coeffs: new Float32Array([1, 1]), outDtype: 'F32' as const, out, partials: null };
    const uneven = [0, 64, 128, 256].map((offset) => ({ offset, dtype: 'F32' as const }));
    expect(() => kernel.encode(encoder, { ...args, coeffs: new Float32Array([1, 1, 1]), segments: uneven })).toThrow(/segment 3: F32 at 256/);
    expect(() => kernel.encode(encoder, { ...args, segments: [{ offset: 0, dtype: 'F32' }, { offset: 64, dtype: 'F32' }, { offset: 128, dtype: 'F16' }] })).toThrow(/segment 2: F16/);
    expect(() => kernel.encode(encoder, { ...args, segments: [{ offset: 8, dtype: 'F32' }, { offset: 64, dtype: 'F32' }, { offset: 128, dtype: 'F32' }] })).toThrow(/segment 0 offset 8/);
    ctx.destroyBuffer(buf);
    ctx.destroyBuffer(out);
  });
});

describe('magmax_output', () => {
  it('matches the twin on random inputs for 1, 8 and 20 models, every input and output dtype', async () => {
    for (const [tasks, numel, dtype] of [
      [1, 37, 'F32'],
      [8, 1001, 'F32'],
      [20, 16 * 5 + 3, 'F32'],
      [3, 515, 'F16'],
      [3, 515, 'BF16'],
    ] as const) {
      const inputs = randomInputs(tasks * 11 + numel, 400, tasks, numel, dtype);
      for (const out of ['F32', 'F16', 'BF16'] as const) await check(`${tasks} ${dtype} models x ${numel}, out ${out}`, inputs, numel, coefficients(tasks + 3, tasks), out, 'magmax_output');
      await check(`${tasks} ${dtype} models x ${numel}, one coefficient`, inputs, numel, new Float32Array(tasks).fill(0.5), 'F32', 'magmax_output');
    }
  });

  it('gives ties of magnitude to the later model, and a NaN task vector its column, as the twin', async () => {
    // Models 1 and 2 mirror model 0 around the base (equal |tau|, either sign); model 3 equals the base (tau = 0).
    const numel = 16 * 4 + 7;
    const base = randomValues(9, numel);
    const m0 = randomValues(10, numel, base);
    const mirror = m0.map((v, j) => 2 * base[j]! - v);
    const inputs = [input(base, 'F32'), input(m0, 'F32'), input(mirror, 'F32'), input(m0, 'F32'), input(base, 'F32')];
    await check('equal magnitudes', inputs, numel, Float32Array.from([0.5, -0.25, 1, 2]), 'F32', 'magmax_output');
    await check('equal magnitudes, +0 and -0 coefficients', inputs, numel, Float32Array.from([0, -0, -0, 0]), 'F32', 'magmax_output');
    // theta0 = -0 and tau = +0 everywhere: a negative coefficient makes a -0 product, which combine's sum from +0 turns
    // into +0, so the output is -0 + +0 = +0 (a compiler folding 0.0 + x to x would write -0).
    const negZero = new Float32Array(16).fill(-0);
    await check('theta0 -0, tau +0, negative coefficients', [input(negZero, 'F32'), input(negZero, 'F32'), input(negZero, 'F32')], 16, Float32Array.from([-0.5, -2]), 'F32', 'magmax_output');
    // Every ordered pair of edge values as (theta0, model 0); model 1 = model 0 reversed.
    const { a, b, n } = valuePairs(EDGES);
    for (const dtype of ['F32', 'BF16'] as const) {
      await check(`edges in ${dtype}`, [input(a, dtype), input(b, dtype), input(b.slice().reverse(), dtype)], n, Float32Array.from([0.5, -3]), 'F32', 'magmax_output');
    }
  });
});

describe('linear_merge with a DARE drop', () => {

  it('matches the twin for 1, 8 and 20 models, with and without rescaling, at chunk offsets, every dtype', async () => {
    for (const [tasks, numel, dtype, p, scale, elementOffset] of [
      [1, 37, 'F32', 0.5, 2, 0],
      [8, 1001, 'F32', 0.5, 2, 4096],
      [8, 1001, 'F32', 0.3, 1, 77],
      [20, 16 * 5 + 3, 'F32', 0.9, 10, 2 ** 31],
      [3, 515, 'F16', 0.6, 2.5, 1000],
      [3, 515, 'BF16', 0.6, 1, 3],
      [4, 200, 'F32', 0, 1, 0],
    ] as const) {
      drop = { seed: tasks + numel, p, scale, elementOffset };
      const inputs = randomInputs(tasks * 13 + numel, 500, tasks, numel, dtype);
      for (const out of ['F32', 'BF16'] as const) await check(`${tasks} ${dtype} models x ${numel}, p ${p}, scale ${scale}, offset ${elementOffset}, out ${out}`, inputs, numel, coefficients(tasks + 5, tasks), out, 'linear_merge with DARE');
      await check(`${tasks} ${dtype} models x ${numel}, one coefficient`, inputs, numel, new Float32Array(tasks).fill(0.3), 'F32', 'linear_merge with DARE');
    }
  });

  it('carries NaN, infinities and -0 like the twin', async () => {
    const { a, b, n } = valuePairs(EDGES);
    drop = { seed: 3, p: 0.4, scale: 1 / 0.6, elementOffset: 16 };
    await check('edges', [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')], n, Float32Array.from([0.5, -3]), 'F32', 'linear_merge with DARE');
    const negZero = new Float32Array(16).fill(-0);
    drop = { seed: 4, p: 0.5, scale: 2, elementOffset: 0 };
    await check('theta0 -0, tau +0', [input(negZero, 'F32'), input(negZero, 'F32')], 16, Float32Array.from([-0.5]), 'F32', 'linear_merge with DARE');
  });

  it('covers several tensors in one launch, each keyed by its name and numbered from its own first element', async () => {
    try {
      for (const [tasks, numel, dtype, at] of [
        [1, 16 * 3 + 5, 'F32', [0, 16, 32]],
        [8, 16 * 40 + 7, 'F32', [0, 16, 48, 320, 336, 640]],
        [3, 16 * 9, 'BF16', [0, 64]],
        [20, 16 * 70, 'F32', Array.from({ length: MAX_DROP_PARTS }, (_, i) => 16 * i)],
      ] as const) {
        drop = { seed: 7 + tasks, p: 0.5, scale: 2, elementOffset: 0 };
        parts = at.map((a, i) => ({ name: `blocks.${i}.bias`, at: a }));
        const inputs = randomInputs(tasks * 31 + numel, 700, tasks, numel, dtype);
        await check(`${tasks} ${dtype} models, ${at.length} tensors in ${numel} elements`, inputs, numel, coefficients(tasks + 9, tasks), 'F32', 'linear_merge with DARE');
        // The first part alone is the launch of that tensor alone (what a chunk of one tensor gives).
        const batched = (await runGpu(inputs, numel, coefficients(tasks + 9, tasks), 'F32', 'linear_merge with DARE')).bytes;
        parts = [parts[0]!];
        const single = (await runGpu(inputs, numel, coefficients(tasks + 9, tasks), 'F32', 'linear_merge with DARE')).bytes;
        const end = 4 * (at[1] ?? numel);
        expect(Buffer.from(batched.subarray(0, end)).equals(Buffer.from(single.subarray(0, end))), `${tasks} models: first tensor`).toBe(true);
        // Two tensors keyed alike would give the same mask: the names do matter (a mutation test of the tensor id).
        if (at.length > 1) expect(Buffer.from(batched.subarray(end, 2 * end)).equals(Buffer.from(single.subarray(end, 2 * end)))).toBe(false);
      }
    } finally {
      parts = null;
    }
  });

  it('refuses parts off the block grid, out of order, too many, or dropped unlike each other', () => {
    const encoder = ctx.device.createCommandEncoder();
    const buf = ctx.createBuffer('inputs', 1 << 16, testUsage());
    drop = { seed: 1, p: 0.5, scale: 2, elementOffset: 0 };
    const encode = (k: LinearMergeKernel, at: number[], numel = 16 * 80) =>
      k.encode(encoder, { inputs: buf, segments: [{ offset: 0, dtype: 'F32' }, { offset: 16 * 1024, dtype: 'F32' }], numel, coeffs: new Float32Array([1]), outDtype: 'F32', out: buf, partials: null, parts: at.map((a, i) => ({ name: `t${i}`, shape: [16], at: a })) });
    expect(() => encode(dare, [0, 8])).toThrow(/part t1 starts at element 8: parts start at 0, then ascending multiples of 16/);
    expect(() => encode(dare, [16])).toThrow(/part t0 starts at element 16/);
    expect(() => encode(dare, [0, 32, 16])).toThrow(/part t2 starts at element 16/);
    expect(() => encode(dare, [0, 16 * 80])).toThrow(/part t1 starts at element 1280/);
    expect(() => encode(dare, Array.from({ length: MAX_DROP_PARTS + 1 }, (_, i) => 16 * i))).toThrow(/65 tensors in one launch, at most 64/);
    const linearOnly = new LinearMergeKernel(ctx, 'linear_merge', (name) => (name === 't1' ? null : drop));
    expect(() => encode(linearOnly, [0, 16])).toThrow(/the tensors of one launch must be dropped alike \(t0, t1\)/);
    expect(linearOnly.sharesLaunch({ name: 't0', shape: [16] }, { name: 't1', shape: [16] })).toBe(false);
    expect(linearOnly.sharesLaunch({ name: 't1', shape: [16] }, { name: 't1', shape: [16] })).toBe(true);
    expect(linearOnly.sharesLaunch({ name: 't0', shape: [16] }, { name: 't2', shape: [16] })).toBe(true);
    linearOnly.destroy();
    ctx.destroyBuffer(buf);
  });

  it('needs the chunk it merges (the mask is keyed by tensor and element)', () => {
    const encoder = ctx.device.createCommandEncoder();
    const buf = ctx.createBuffer('inputs', 1024, testUsage());
    expect(() => dare.encode(encoder, { inputs: buf, segments: [{ offset: 0, dtype: 'F32' }, { offset: 64, dtype: 'F32' }], numel: 16, coeffs: new Float32Array([1]), outDtype: 'F32', out: buf, partials: null })).toThrow(/linear_merge with DARE: needs the chunk/);
    ctx.destroyBuffer(buf);
  });
});

describe('linear_merge with kept entries', () => {
  /** Random words: each model's bit set with probability `density` (bits past the models set too, which must not matter). */
  const wordsFor = (seed: number, n: number, density: number) => {
    const key = rngKey(seed, 9, 9);
    return Uint32Array.from({ length: n }, (_, j) => {
      let w = 0;
      for (let t = 0; t < 32; t++) if (rngUniform(key, j * 32 + t) < density) w |= 1 << t;
      return w >>> 0;
    });
  };

  it('matches the twin for 1, 8, 20 and 32 models, with and without a scale, every dtype', async () => {
    for (const [tasks, numel, dtype, scale] of [
      [1, 37, 'F32', 1],
      [8, 1001, 'F32', 1],
      [8, 1001, 'F32', 2.5],
      [20, 16 * 5 + 3, 'F32', 1 / 0.7],
      [32, 515, 'F32', 1],
      [3, 515, 'F16', 2],
      [3, 515, 'BF16', 1],
    ] as const) {
      keep = { words: new Map([['w', wordsFor(tasks + numel, numel, 0.4)]]), scale };
      const inputs = randomInputs(tasks * 17 + numel, 900, tasks, numel, dtype);
      for (const out of ['F32', 'BF16'] as const) await check(`${tasks} ${dtype} models x ${numel}, scale ${scale}, out ${out}`, inputs, numel, coefficients(tasks + 3, tasks), out, 'linear_merge with kept entries');
    }
  });

  it('carries NaN, infinities and -0 like the twin, and flags a dropped NaN', async () => {
    const { a, b, n } = valuePairs(EDGES);
    keep = { words: new Map([['w', wordsFor(5, n, 0.5)]]), scale: 1 };
    await check('edges', [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')], n, Float32Array.from([0.5, -3]), 'F32', 'linear_merge with kept entries');
    keep = { words: new Map([['w', wordsFor(6, n, 0.5)]]), scale: 1.25 };
    await check('edges, scaled', [input(a, 'F32'), input(b, 'F32'), input(b.slice().reverse(), 'F32')], n, Float32Array.from([0.5, -3]), 'F32', 'linear_merge with kept entries');
  });

  it('covers several tensors in one launch, each with its own words', async () => {
    try {
      const at = [0, 16, 48, 320];
      const counts = [16, 20, 272, 9];
      parts = at.map((x, i) => ({ name: `blocks.${i}.bias`, at: x }));
      keep = { words: new Map(parts.map((q, i) => [q.name, wordsFor(40 + i, counts[i]!, 0.5)])), scale: 2 };
      const numel = 320 + 9;
      await check('4 tensors', randomInputs(77, 800, 8, numel, 'F32'), numel, coefficients(8, 8), 'F32', 'linear_merge with kept entries');
    } finally {
      parts = null;
    }
  });

  it('refuses more than 32 models, words of the wrong length, and a drop with kept entries', () => {
    const encoder = ctx.device.createCommandEncoder();
    const buf = ctx.createBuffer('inputs', 1 << 16, testUsage());
    keep = { words: new Map([['w', new Uint32Array(8)]]), scale: 1 };
    const segments = (tasks: number) => Array.from({ length: tasks + 1 }, (_, i) => ({ offset: 64 * i, dtype: 'F32' as const }));
    const encode = (tasks: number, numel: number) => kept.encode(encoder, { inputs: buf, segments: segments(tasks), numel, coeffs: new Float32Array(tasks).fill(1), outDtype: 'F32', out: buf, partials: null, chunk: { name: 'w', shape: [numel], start: 0 } });
    expect(() => encode(33, 8)).toThrow(/linear_merge with kept entries: at most 32 models, got 33/);
    expect(() => encode(2, 16)).toThrow(/8 kept-entry words for 16 elements of w/);
    expect(() => new LinearMergeKernel(ctx, 'linear_merge', () => null, undefined, { words: () => new Uint32Array(0), scale: 1 })).toThrow(/only linear_merge without a drop keeps given entries/);
    ctx.destroyBuffer(buf);
  });
});

describe('consensus_output', () => {
  const lambdasFor = (seed: number, tasks: number) => Float32Array.from({ length: tasks }, (_, t) => Math.fround(2 * rngUniform(rngKey(seed, 5, 6), t)));

  it('matches the twin for 1, 2, 8 and 20 models, every k, per-task mask lambdas, every dtype', async () => {
    for (const [tasks, numel, dtype] of [
      [1, 37, 'F32'],
      [2, 16 * 9 + 5, 'F32'],
      [8, 1001, 'F32'],
      [20, 16 * 5 + 3, 'F32'],
      [3, 515, 'F16'],
      [3, 515, 'BF16'],
    ] as const) {
      const inputs = randomInputs(tasks * 17 + numel, 600, tasks, numel, dtype);
      for (const k of new Set([0, 1, 2, Math.ceil(tasks / 2), tasks, tasks + 1])) {
        mask = { lambdas: lambdasFor(tasks + k, tasks), k };
        await check(`${tasks} ${dtype} models x ${numel}, k ${k}`, inputs, numel, coefficients(tasks + 7, tasks), 'F32', 'consensus_output');
      }
      mask = { lambdas: new Float32Array(tasks).fill(0.5), k: 2 };
      for (const out of ['F16', 'BF16'] as const) await check(`${tasks} ${dtype} models x ${numel}, out ${out}`, inputs, numel, new Float32Array(tasks).fill(0.3), out, 'consensus_output');
    }
  });

  it('masks strictly, zeroes a column to +0, and carries finite edge values like the twin', async () => {
    // Two equal task vectors: mtl - tau = tau, so |tau| > 1 * |tau| fails and |tau| > 0.99 * |tau| holds (tau != 0).
    const numel = 16 * 3 + 5;
    const base = randomValues(21, numel);
    const m = randomValues(22, numel, base);
    const same = [input(base, 'F32'), input(m, 'F32'), input(m, 'F32')];
    for (const lambda of [1, 0.99, 0]) {
      mask = { lambdas: new Float32Array(2).fill(lambda), k: 2 };
      await check(`equal task vectors, mask lambda ${lambda}`, same, numel, Float32Array.from([0.5, -0.25]), 'F32', 'consensus_output');
    }
    // theta0 = -0, tau = +0: every column zeroed (k = 1 with tau = 0 never used) gives theta0 + (+0) = +0.
    const negZero = new Float32Array(16).fill(-0);
    mask = { lambdas: Float32Array.from([0.5, 0.5]), k: 1 };
    await check('theta0 -0, tau +0, negative coefficients', [input(negZero, 'F32'), input(negZero, 'F32'), input(negZero, 'F32')], 16, Float32Array.from([-0.5, -2]), 'F32', 'consensus_output');
    // Every ordered pair of finite edge values as (theta0, model 0); model 1 = model 0 reversed. Positive mask lambdas:
    // an overflowing mtl times 0 would be NaN, which the masks do not define.
    const finite = EDGES.filter(Number.isFinite);
    const { a, b, n } = valuePairs(finite);
    for (const k of [1, 2]) {
      mask = { lambdas: Float32Array.from([0.5, 1.5]), k };
      for (const dtype of ['F32', 'BF16'] as const) await check(`edges in ${dtype}, k ${k}`, [input(a, dtype), input(b, dtype), input(b.slice().reverse(), dtype)], n, Float32Array.from([0.5, -3]), 'F32', 'consensus_output');
    }
  });

  it('needs the chunk it merges and one mask lambda per model', () => {
    const encoder = ctx.device.createCommandEncoder();
    const buf = ctx.createBuffer('inputs', 1024, testUsage());
    const args = { inputs: buf, segments: [{ offset: 0, dtype: 'F32' as const }, { offset: 64, dtype: 'F32' as const }], numel: 16, coeffs: new Float32Array([1]), outDtype: 'F32' as const, out: buf, partials: null };
    expect(() => consensus.encode(encoder, args)).toThrow(/consensus_output: needs the chunk's tensor/);
    mask = { lambdas: new Float32Array(2), k: 1 };
    expect(() => consensus.encode(encoder, { ...args, chunk: { name: 'w', shape: [16], start: 0 } })).toThrow(/consensus_output: 2 mask lambdas for 1 models/);
    expect(() => new LinearMergeKernel(ctx, 'consensus_output')).toThrow(/need each tensor's masks/);
    ctx.destroyBuffer(buf);
  });
});

describe('decode_stack', () => {
  async function checkDecode(what: string, inputs: readonly RawInput[], numel: number): Promise<void> {
    const tasks = inputs.length - 1;
    const { bytes, segments } = pack(inputs, numel, 4);
    const inBuf = ctx.createBuffer('inputs', bytes.byteLength, testUsage());
    ctx.device.queue.writeBuffer(inBuf, 0, bytes);
    const base = ctx.createBuffer('base', numel * 4, testUsage());
    const stack = ctx.createBuffer('stack', tasks * numel * 4, testUsage());
    try {
      await ctx.scoped(what, () => decodeStack(ctx, { inputs: inBuf, segments, numel, base, stack }));
      const gpu = [await readBuffer(ctx, base, numel * 4), await readBuffer(ctx, stack, tasks * numel * 4)].map((b) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4));
      const exact = decodeStackRef(inputs, numel);
      const flushed = decodeStackRef(inputs, numel, { flushSubnormals: true });
      const isNaN = (x: number) => (x & 0x7fffffff) > 0x7f800000;
      (['base', 'stack'] as const).forEach((part, i) => {
        const [g, e, f] = [gpu[i]!, new Uint32Array(exact[part].buffer), new Uint32Array(flushed[part].buffer)];
        const bad: string[] = [];
        for (let j = 0; j < g.length && bad.length < 5; j++) {
          if (g[j] !== e[j] && g[j] !== f[j] && !(isNaN(g[j]!) && isNaN(e[j]!))) bad.push(`[${j}] gpu 0x${g[j]!.toString(16)} cpu 0x${e[j]!.toString(16)}`);
        }
        expect(bad, `${what}: ${part}`).toEqual([]);
      });
    } finally {
      [inBuf, base, stack].forEach((b) => ctx.destroyBuffer(b));
    }
  }

  it('matches the twin for 1 and 20 models, odd lengths, every input dtype', async () => {
    for (const [tasks, numel] of [
      [1, 1],
      [20, 1003],
    ] as const) {
      const base = randomValues(numel, numel);
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const inputs = [input(base, dtype), ...Array.from({ length: tasks }, (_, t) => input(randomValues(200 + t, numel, base), dtype))];
        await checkDecode(`${tasks} models x ${numel} in ${dtype}`, inputs, numel);
      }
    }
  });

  it('decodes models stored in different dtypes, and edge values', async () => {
    const { a, b, n } = valuePairs(EDGES);
    await checkDecode('mixed model dtypes', [input(a, 'F32'), input(b, 'F16'), input(b, 'BF16'), input(b, 'F32')], n);
    await checkDecode('edges in F32', [input(a, 'F32'), input(b, 'F32'), input(a, 'F32')], n);
  });
});
