/**
 * MagnitudeSelect (src/engine/gpu/select.ts) and the host's count of the same passes (HostMagnitudeSelect,
 * merge/plans/hostSelect.ts, for CPU-emulated adapters) against their twin selectMagnitudeRef: bit-identical keys,
 * greater and equal counts, on random data, many ties, zeros / -0 / specials, odd chunkings, several segments per
 * chunk and one segment spread over many chunks (global TIES), plus the 10M-element acceptance case and the error paths.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { MagnitudeSelect } from '../../src/engine/gpu/select';
import type { MagnitudeSelection } from '../../src/engine/gpu/selectPasses';
import { HostMagnitudeSelect } from '../../src/engine/merge/plans/hostSelect';
import { magnitudeKeys, selectMagnitudeRef } from '../../src/engine/reference/select';
import { releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** One chunk of a stream: a [rows, numel] stack and the segment of each row (-1 = not selected). */
interface Chunk {
  data: Float32Array;
  numel: number;
  segmentOfRow: number[];
}

type Gen = (rng: () => number) => number;
/** Wide-range random values. */
const randomValue: Gen = (rng) => (rng() - 0.5) * 2 ** Math.floor(rng() * 40 - 20);
/** Values from 20 magnitudes with random signs: many ties. */
const LEVELS = Array.from({ length: 20 }, (_, i) => Math.fround(0.01 * (i + 1) ** 1.5));
const tiedValue: Gen = (rng) => LEVELS[Math.floor(rng() * LEVELS.length)]! * (rng() < 0.5 ? -1 : 1);
/** Mostly ±0, with subnormals, infinities and NaNs. */
const SPECIALS = [0, -0, 0, -0, 1e-45, -1e-40, 1, -1, Infinity, -Infinity, NaN, 3.4e38];
const specialValue: Gen = (rng) => SPECIALS[Math.floor(rng() * SPECIALS.length)]!;

/** A chunk of rows with the given segments, values from `gen`. */
function chunk(rng: () => number, gen: Gen, numel: number, segmentOfRow: number[]): Chunk {
  return { data: Float32Array.from({ length: numel * segmentOfRow.length }, () => gen(rng)), numel, segmentOfRow };
}

/** Each segment's elements in stream order (what the twin sees). */
function segmentValues(chunks: readonly Chunk[], segments: number): Float32Array[] {
  const parts: Float32Array[][] = Array.from({ length: segments }, () => []);
  for (const c of chunks) c.segmentOfRow.forEach((s, r) => s >= 0 && parts[s]!.push(c.data.subarray(r * c.numel, (r + 1) * c.numel)));
  return parts.map((list) => {
    const out = new Float32Array(list.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of list) (out.set(p, at), (at += p.length));
    return out;
  });
}

type Kind = 'gpu' | 'host';

/** Runs the selection over the chunks (uploaded once, fed every pass); returns results, pass count and counts. */
async function runSelect(kind: Kind, chunks: readonly Chunk[], segments: number, ranks: number[][], label = 'sel') {
  if (kind === 'host') {
    const sel = new HostMagnitudeSelect(label, segments, ranks);
    while (!sel.done) {
      sel.beginPass();
      chunks.forEach((c) => sel.feed(c.data, c.segmentOfRow.length, c.numel, c.segmentOfRow));
      await sel.endPass();
    }
    return { results: sel.results(), passes: sel.pass, counts: Array.from(sel.counts()), extraBytes: 0 };
  }
  return gpuSelect(chunks, segments, ranks, label);
}

/** runSelect on the GPU, with the GPU memory it took. */
async function gpuSelect(chunks: readonly Chunk[], segments: number, ranks: number[][], label = 'sel') {
  const bufs = chunks.map((c) => uploadF32(ctx, 'chunk', c.data));
  const sel = new MagnitudeSelect(ctx, { label, segments, ranks });
  const before = ctx.allocatedBytes;
  ctx.resetPeak();
  try {
    await ctx.scoped(label, async () => {
      while (!sel.done) {
        sel.beginPass();
        chunks.forEach((c, i) => sel.feed(bufs[i]!, c.segmentOfRow.length, c.numel, c.segmentOfRow));
        await sel.endPass();
      }
    });
    return { results: sel.results(), passes: sel.pass, counts: Array.from(sel.counts()), extraBytes: ctx.peakBytes - before };
  } finally {
    sel.destroy();
    bufs.forEach((b) => ctx.destroyBuffer(b));
  }
}

/** Plain arrays of a selection, for readable diffs. */
const plain = (sel: MagnitudeSelection[]) => sel.map((s) => ({ bits: Array.from(s.bits), greater: Array.from(s.greater), equal: Array.from(s.equal) }));

/** The selection equals the twin's, in exactly 2 passes, with the right counts. */
async function expectMatchesTwin(kind: Kind, chunks: Chunk[], segments: number, ranks: number[][]): Promise<void> {
  const values = segmentValues(chunks, segments);
  const gpu = await runSelect(kind, chunks, segments, ranks);
  expect(plain(gpu.results)).toEqual(plain(selectMagnitudeRef(values, ranks)));
  expect(gpu.passes).toBe(2);
  expect(gpu.counts).toEqual(values.map((v) => v.length));
}

/** Ranks 0, count - 1 and a spread between, for a segment of n elements. */
const spreadRanks = (n: number) => [0, n - 1, Math.trunc(n * 0.2), Math.trunc(n * 0.5), Math.trunc(n * 0.9), 1, n - 2].filter((r) => r >= 0 && r < n);

describe.each(['gpu', 'host'] as const)('MagnitudeSelect (%s) vs selectMagnitudeRef', (kind) => {
  it('random data, three segments in one chunk', async () => {
    const rng = seededRandom(1);
    await expectMatchesTwin(kind, [chunk(rng, randomValue, 5003, [0, 1, 2])], 3, [spreadRanks(5003), [2500], [0, 0, 5002]]);
  });

  it('many ties: 20 distinct magnitudes, odd chunk sizes, segments interleaved and skipped rows', async () => {
    const rng = seededRandom(2);
    const chunks = [
      chunk(rng, tiedValue, 777, [1, -1, 0]),
      chunk(rng, tiedValue, 1, [0, 1]),
      chunk(rng, tiedValue, 4099, [-1, 0, 0, 1]),
      chunk(rng, tiedValue, 1234, [1]),
    ];
    const counts = segmentValues(chunks, 2).map((v) => v.length);
    await expectMatchesTwin(kind, chunks, 2, counts.map(spreadRanks));
  });

  it('zeros, -0, subnormals, infinities and NaN (NaN ranks above Infinity)', async () => {
    const rng = seededRandom(3);
    const chunks = [chunk(rng, specialValue, 3001, [0, 1]), chunk(rng, specialValue, 999, [1, 0])];
    await expectMatchesTwin(kind, chunks, 2, [spreadRanks(4000), [0, 100, 2000, 3999]]);
  });

  it('global TIES layout: each task spread over many tensors (one chunk per tensor, one row per task)', async () => {
    const rng = seededRandom(4);
    const sizes = [768, 1, 3072, 50 * 7, 129, 2048 + 3, 17];
    const chunks = sizes.map((numel, i) => chunk(rng, i % 2 ? tiedValue : randomValue, numel, [0, 1, 2]));
    const total = sizes.reduce((a, b) => a + b, 0);
    // The TIES threshold rank int(d * 0.2) and its neighbours, several of them in different pass-1 bins.
    await expectMatchesTwin(kind, chunks, 3, [spreadRanks(total), [Math.trunc(total * 0.2)], [Math.trunc(total * 0.2), 0, total - 1]]);
  });

  it('a segment without ranks is streamed but not counted; equal ranks share one slot', async () => {
    const rng = seededRandom(5);
    const chunks = [chunk(rng, tiedValue, 600, [0, 1, 2])];
    await expectMatchesTwin(kind, chunks, 3, [[], [5, 5, 5], [599]]);
  });

  it('is done at once when no segment has ranks', () => {
    const sel = kind === 'gpu' ? new MagnitudeSelect(ctx, { label: 'none', segments: 2, ranks: [[], []] }) : new HostMagnitudeSelect('none', 2, [[], []]);
    expect(sel.done).toBe(true);
    expect(sel.results().map((r) => r.bits.length)).toEqual([0, 0]);
  });

  it('segments whose selected prefixes span the whole key range: slots tried in turn where the tables would not fit', async () => {
    // Ranks at the largest key (Inf or NaN) and near the smallest (+-0) put each segment's two pass-2 prefixes about
    // 65,000 apart: 17 segments' tables would take more than LOOKUP_MAX_ENTRIES (2^20), so the pass tries the slots.
    const rng = seededRandom(8);
    const segments = 17;
    const chunks = [chunk(rng, (r) => (r() < 0.5 ? specialValue(r) : randomValue(r)), 96, Array.from({ length: segments }, (_, s) => s))];
    const ranks = Array.from({ length: segments }, () => [0, 90]);
    const values = segmentValues(chunks, segments);
    const gpu = await runSelect(kind, chunks, segments, ranks);
    expect(plain(gpu.results)).toEqual(plain(selectMagnitudeRef(values, ranks)));
    const wide = gpu.results.filter((r) => (r.bits[0]! >>> 15) - (r.bits[1]! >>> 15) > 2 ** 20 / segments).length;
    expect(wide).toBe(segments);
    // Pass 2's histograms (2 slots of 2^15 64-bit bins per segment) and their readback copy, and no 4 MiB of tables.
    if (kind === 'gpu') expect(gpu.extraBytes).toBeLessThan(2 * segments * 2 * 2 ** 15 * 8 + 2 ** 20);
  });

});

describe('MagnitudeSelect GPU memory', () => {
  it('uses GPU memory that depends on segments and bins only, and frees it', async () => {
    const rng = seededRandom(6);
    const small = await gpuSelect([chunk(rng, randomValue, 1000, [0, 1])], 2, [[3], [4]]);
    const big = await gpuSelect([chunk(rng, randomValue, 200_000, [0, 1])], 2, [[3], [4]]);
    expect(big.extraBytes).toBe(small.extraBytes);
    // Pass 1: a 64-bit count per 16-bit bin per segment, plus its readback copy.
    expect(small.extraBytes).toBeLessThan(2 * (2 * (1 << 16) * 8) + 64 * 1024);
  });
});

describe('MagnitudeSelect errors', () => {
  it.each(['gpu', 'host'] as const)('names the segment whose rank is past its element count (%s)', async (kind) => {
    const rng = seededRandom(7);
    await expect(runSelect(kind, [chunk(rng, randomValue, 10, [0, 1])], 2, [[9], [10]], 'trim')).rejects.toThrow(/trim segment 1: rank 10 .* only 10 elements/);
  });

  it('the host count notices when pass 2 is fed other data than pass 1, and rejects a bad chunk', async () => {
    const rng = seededRandom(8);
    const a = Float32Array.from({ length: 500 }, () => randomValue(rng));
    const sel = new HostMagnitudeSelect('changing', 1, [[10]]);
    expect(() => sel.feed(a, 1, 500, [0])).toThrow(/changing: feed outside a pass/);
    sel.beginPass();
    expect(() => sel.feed(a, 1, 600, [0])).toThrow(/500 values for 1 rows of 600/);
    expect(() => sel.feed(a, 1, 500, [1])).toThrow(/row 0 maps to segment 1/);
    sel.feed(a, 1, 500, [0]);
    await sel.endPass();
    sel.beginPass();
    sel.feed(a, 1, 400, [0]);
    await expect(sel.endPass()).rejects.toThrow(/changing segment 0: pass 2 was fed 400 elements, pass 1 500/);
  });

  it('notices when pass 2 is fed other data than pass 1', async () => {
    const rng = seededRandom(8);
    const a = uploadF32(ctx, 'a', Float32Array.from({ length: 500 }, () => randomValue(rng)));
    const b = uploadF32(ctx, 'b', Float32Array.from({ length: 500 }, () => randomValue(rng)));
    const sel = new MagnitudeSelect(ctx, { label: 'changing', segments: 1, ranks: [[10]] });
    try {
      sel.beginPass();
      sel.feed(a, 1, 500, [0]);
      await sel.endPass();
      sel.beginPass();
      sel.feed(b, 1, 400, [0]);
      await expect(sel.endPass()).rejects.toThrow(/changing segment 0: pass 2 was fed 400 elements, pass 1 500/);
    } finally {
      sel.destroy();
      ctx.destroyBuffer(a);
      ctx.destroyBuffer(b);
    }
  });

  it('rejects bad arguments with the label', () => {
    expect(() => new MagnitudeSelect(ctx, { label: 'x', segments: 2, ranks: [[1]] })).toThrow(/x.ranks/);
    expect(() => new MagnitudeSelect(ctx, { label: 'x', segments: 1, ranks: [[-1]] })).toThrow(/x segment 0/);
    const sel = new MagnitudeSelect(ctx, { label: 'y', segments: 1, ranks: [[0]] });
    const buf = uploadF32(ctx, 'tiny', new Float32Array(4));
    try {
      expect(() => sel.feed(buf, 1, 4, [0])).toThrow(/y: feed outside a pass/);
      sel.beginPass();
      expect(() => sel.feed(buf, 1, 4, [1])).toThrow(/row 0 maps to segment 1/);
      expect(() => sel.feed(buf, 2, 4, [0, 0])).toThrow(/has 16 bytes, needs 32/);
    } finally {
      sel.destroy();
      ctx.destroyBuffer(buf);
    }
  });
});

describe('MagnitudeSelect at scale', () => {
  it.each(['gpu', 'host'] as const)('global TIES on 10.4M elements with ties: thresholds and kept counts equal the twin (%s)', async (kind) => {
    // 2 segments x 5.2M elements in 10 chunks of [2, 520000] (1.04M elements each); 4096 magnitudes, skewed.
    const rng = seededRandom(9);
    const tied: Gen = (r) => Math.floor(r() ** 3 * 4096) * 2 ** -12 * (r() < 0.5 ? -1 : 1);
    const chunks = Array.from({ length: 10 }, () => chunk(rng, tied, 520_000, [0, 1]));
    const d = 5_200_000;
    const ranks = [[Math.trunc(d * 0.2), Math.trunc(d * 0.1)], [Math.trunc(d * 0.2), 0, d - 1]];
    const values = segmentValues(chunks, 2);
    const gpu = await runSelect(kind, chunks, 2, ranks);
    const cpu = selectMagnitudeRef(values, ranks);
    expect(plain(gpu.results)).toEqual(plain(cpu));
    // Kept by TIES: |x| >= threshold, i.e. greater + equal; counted directly on the CPU.
    values.forEach((v, s) => {
      const keys = magnitudeKeys(v);
      const threshold = cpu[s]!.bits[0]!;
      let kept = 0;
      for (const k of keys) kept += k >= threshold ? 1 : 0;
      expect(gpu.results[s]!.greater[0]! + gpu.results[s]!.equal[0]!, `segment ${s}`).toBe(kept);
      expect(kept).toBeGreaterThan(ranks[s]![0]!);
    });
    expect(gpu.passes).toBe(2);
  });
});
