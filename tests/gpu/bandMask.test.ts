/**
 * Exact rank-band masks against their twins, bit for bit (kept entries keep their bits, the rest are +0): BandMask
 * (src/engine/gpu/bandMask.ts) and the host's HostBandMask (merge/plans/hostSelect.ts, after HostMagnitudeSelect)
 * over streamed segments vs bandMaskRef on each segment's concatenated elements, ties broken by index across tiles and
 * chunk boundaries; rowBandMask (rowBand.ts) vs rowBandMaskRef.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BandMask, bandRanks, type RankBand } from '../../src/engine/gpu/bandMask';
import type { GpuContext } from '../../src/engine/gpu/device';
import { rowBandMask } from '../../src/engine/gpu/rowBand';
import { MagnitudeSelect } from '../../src/engine/gpu/select';
import { HostBandMask, HostMagnitudeSelect } from '../../src/engine/merge/plans/hostSelect';
import { bandMaskRef, rowBandMaskRef } from '../../src/engine/reference/select';
import { readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

type Gen = (rng: () => number) => number;
const randomValue: Gen = (rng) => (rng() - 0.5) * 2 ** Math.floor(rng() * 30 - 15);
/** 20 magnitudes, random signs: ties everywhere. */
const tiedValue: Gen = (rng) => (Math.floor(rng() * 20) + 1) * 0.125 * (rng() < 0.5 ? -1 : 1);
/** Mostly ±0 (a big tie group of zeros), some small values. */
const zeroHeavy: Gen = (rng) => (rng() < 0.8 ? (rng() < 0.5 ? 0 : -0) : Math.floor(rng() * 3 + 1) * (rng() < 0.5 ? -1 : 1));
const allEqual: Gen = (rng) => (rng() < 0.5 ? 0.5 : -0.5);

/** A [rows, numel] chunk and the segment of each of its rows (-1: not masked). */
interface Chunk {
  data: Float32Array;
  numel: number;
  segmentOfRow: number[];
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function makeChunks(seed: number, gen: Gen, layout: [number, number[]][]): Chunk[] {
  const rng = seededRandom(seed);
  return layout.map(([numel, segmentOfRow]) => ({ data: Float32Array.from({ length: numel * segmentOfRow.length }, () => gen(rng)), numel, segmentOfRow }));
}

/** Positions of each segment's elements, in stream order: [chunk, offset] per element. */
function segmentElements(chunks: readonly Chunk[], segments: number): [number, number][][] {
  const out: [number, number][][] = Array.from({ length: segments }, () => []);
  chunks.forEach((c, i) => c.segmentOfRow.forEach((s, r) => {
    if (s >= 0) for (let j = 0; j < c.numel; j++) out[s]!.push([i, r * c.numel + j]);
  }));
  return out;
}

/** The twin's result laid out like the chunks: each segment masked as one vector, -1 rows unchanged. */
function expectedChunks(chunks: readonly Chunk[], bands: readonly RankBand[]): Float32Array[] {
  const out = chunks.map((c) => c.data.slice());
  segmentElements(chunks, bands.length).forEach((where, s) => {
    const masked = bandMaskRef(Float32Array.from(where, ([i, k]) => chunks[i]!.data[k]!), bands[s]!.from, bands[s]!.to);
    const bits = bitsOf(masked);
    where.forEach(([i, k], e) => (bitsOf(out[i]!)[k] = bits[e]!));
  });
  return out;
}

/** Selects the band ranks over all chunks, then applies the mask chunk by chunk; returns the chunks read back. */
async function gpuBandMask(chunks: readonly Chunk[], bands: readonly RankBand[]): Promise<Float32Array[]> {
  const counts = segmentElements(chunks, bands.length).map((w) => w.length);
  const bufs = chunks.map((c) => uploadF32(ctx, 'chunk', c.data));
  try {
    return await ctx.scoped('band', async () => {
      const sel = new MagnitudeSelect(ctx, { label: 'band select', segments: bands.length, ranks: bandRanks(bands, counts) });
      while (!sel.done) {
        sel.beginPass();
        chunks.forEach((c, i) => sel.feed(bufs[i]!, c.segmentOfRow.length, c.numel, c.segmentOfRow));
        await sel.endPass();
      }
      const mask = new BandMask(ctx, { label: 'band', bands, counts, selection: sel.results() });
      for (const [i, c] of chunks.entries()) await mask.apply(bufs[i]!, c.segmentOfRow.length, c.numel, c.segmentOfRow);
      mask.destroy();
      return Promise.all(chunks.map((c, i) => readF32(ctx, bufs[i]!, c.data.length)));
    });
  } finally {
    bufs.forEach((b) => ctx.destroyBuffer(b));
  }
}

/** The same on the host: HostMagnitudeSelect, then HostBandMask on copies of the chunks. */
async function hostBandMask(chunks: readonly Chunk[], bands: readonly RankBand[]): Promise<Float32Array[]> {
  const counts = segmentElements(chunks, bands.length).map((w) => w.length);
  const sel = new HostMagnitudeSelect('band select', bands.length, bandRanks(bands, counts));
  while (!sel.done) {
    sel.beginPass();
    chunks.forEach((c) => sel.feed(c.data, c.segmentOfRow.length, c.numel, c.segmentOfRow));
    await sel.endPass();
  }
  const mask = new HostBandMask({ label: 'band', bands, counts, selection: sel.results() });
  return chunks.map((c) => {
    const out = c.data.slice();
    mask.apply(out, c.segmentOfRow.length, c.numel, c.segmentOfRow);
    return out;
  });
}

const bandMaskOf = { gpu: gpuBandMask, host: hostBandMask };

/** Reports the first differing elements of GPU vs twin output. */
function expectSameBits(what: string, actual: Float32Array[], expected: Float32Array[]): void {
  const bad: string[] = [];
  actual.forEach((a, i) => {
    const x = bitsOf(a);
    const y = bitsOf(expected[i]!);
    for (let k = 0; k < x.length && bad.length < 5; k++) if (x[k] !== y[k]) bad.push(`chunk ${i} [${k}] gpu ${a[k]} cpu ${expected[i]![k]}`);
  });
  expect(bad, what).toEqual([]);
}

/** Stream layout: odd sizes, a tile-crossing chunk (> 4096 per row), two rows of segment 0 in one chunk, a skipped row. */
const LAYOUT: [number, number[]][] = [
  [777, [1, -1, 0]],
  [1, [0, 1]],
  [4099, [0, 0, 1]],
  [9000, [1, 0]],
  [1234, [1]],
];
const COUNTS = [777 + 1 + 2 * 4099 + 9000, 777 + 1 + 4099 + 9000 + 1234];

describe.each(['gpu', 'host'] as const)('BandMask (%s) vs bandMaskRef', (kind) => {
  const bandSets: [string, RankBand[]][] = [
    ['middle bands', [{ from: 3, to: 2000 }, { from: 100, to: 101 }]],
    ['from 0, and to past the count', [{ from: 0, to: 500 }, { from: 1234, to: 1e9 }]],
    ['keep all, and empty', [{ from: 0, to: 1e9 }, { from: 10, to: 10 }]],
    ['from past the count, and only rank 0', [{ from: COUNTS[0]! + 5, to: COUNTS[0]! + 10 }, { from: 0, to: 1 }]],
    ['last ranks', [{ from: COUNTS[0]! - 7, to: COUNTS[0]! }, { from: 5000, to: COUNTS[1]! - 1 }]],
  ];
  for (const [what, gen] of [['ties', tiedValue], ['random', randomValue], ['zeros', zeroHeavy], ['all equal', allEqual]] as const) {
    it(`${what}: every band set, ties broken by index across tiles and chunks`, async () => {
      const chunks = makeChunks(what.length, gen, LAYOUT);
      for (const [name, bands] of bandSets) expectSameBits(name, await bandMaskOf[kind](chunks, bands), expectedChunks(chunks, bands));
    });
  }

  it('mergekit-style top count per tensor: each task row its own segment, one chunk', async () => {
    const chunks = makeChunks(21, tiedValue, [[20_000, [0, 1, 2]]]);
    const bands = [0.1, 0.5, 0.9].map((density) => ({ from: 0, to: Math.trunc(20_000 * density) }));
    expectSameBits('top count', await bandMaskOf[kind](chunks, bands), expectedChunks(chunks, bands));
  });

});

describe('BandMask errors', () => {
  it('rejects a selection that does not match the bands, and data that changed after the selection', async () => {
    const sel = { bits: new Uint32Array(1), greater: new Float64Array(1), equal: new Float64Array(1) };
    expect(() => new BandMask(ctx, { label: 'bm', bands: [{ from: 1, to: 5 }], counts: [10], selection: [sel] })).toThrow(/bm segment 0: selection has 1 ranks, the band needs 2/);
    const chunks = makeChunks(22, tiedValue, [[1000, [0]]]);
    const buf = uploadF32(ctx, 'changed', chunks[0]!.data);
    try {
      const s = new MagnitudeSelect(ctx, { label: 's', segments: 1, ranks: bandRanks([{ from: 5, to: 50 }], [1000]) });
      while (!s.done) (s.beginPass(), s.feed(buf, 1, 1000, [0]), await s.endPass());
      const mask = new BandMask(ctx, { label: 'bm', bands: [{ from: 5, to: 50 }], counts: [1000], selection: s.results() });
      ctx.device.queue.writeBuffer(buf, 0, Float32Array.from({ length: 1000 }, (_, i) => chunks[0]!.data[(i + 1) % 1000]! * (i % 3 ? 1 : 0)));
      await expect(mask.apply(buf, 1, 1000, [0])).rejects.toThrow(/bm segment 0: the data differs/);
      await expect(mask.apply(buf, 1, 1000, [0])).rejects.toThrow(/bm segment 0: fed 2000 elements, the segment has 1000/);
    } finally {
      ctx.destroyBuffer(buf);
    }
  });

  it('the host mask rejects data that changed after the selection, naming the segment', async () => {
    const chunks = makeChunks(22, tiedValue, [[1000, [0]]]);
    const s = new HostMagnitudeSelect('s', 1, bandRanks([{ from: 5, to: 50 }], [1000]));
    while (!s.done) (s.beginPass(), s.feed(chunks[0]!.data, 1, 1000, [0]), await s.endPass());
    const mask = new HostBandMask({ label: 'bm', bands: [{ from: 5, to: 50 }], counts: [1000], selection: s.results() });
    const changed = Float32Array.from({ length: 1000 }, (_, i) => chunks[0]!.data[(i + 1) % 1000]! * (i % 3 ? 1 : 0));
    expect(() => mask.apply(changed, 1, 1000, [0])).toThrow(/bm segment 0: the data differs/);
    expect(() => mask.apply(changed, 1, 1000, [0])).toThrow(/bm segment 0: fed 2000 elements, the segment has 1000/);
    expect(() => mask.apply(changed, 1, 1001, [0])).toThrow(/1000 values for 1 rows of 1001/);
  });
});

describe('rowBandMask (row_band_mask) vs rowBandMaskRef', () => {
  /** Runs the kernel on a [tasks, rows x n] stack and compares with the twin. */
  async function check(gen: Gen, tasks: number, rows: number, n: number, bands: RankBand[]): Promise<void> {
    const rng = seededRandom(n * 131 + rows);
    const values = Float32Array.from({ length: tasks * rows * n }, () => gen(rng));
    for (const band of bands) {
      const buf = uploadF32(ctx, 'rows', values);
      try {
        await ctx.scoped('row band', () => rowBandMask(ctx, buf, { tasks, rows, n }, band));
        const got = await readF32(ctx, buf, values.length);
        expectSameBits(`n=${n} rows=${rows} [${band.from}, ${band.to})`, [got], [rowBandMaskRef(values, n, band.from, band.to)]);
      } finally {
        ctx.destroyBuffer(buf);
      }
    }
  }
  /** Breadcrumbs-like (drop the top 1%, keep the next 15%), plus edge bands. */
  const bandsFor = (n: number): RankBand[] => {
    const top = Math.trunc(n * 0.01);
    return [{ from: top, to: top + Math.max(1, Math.trunc(n * 0.15)) }, { from: 0, to: 1 }, { from: Math.trunc(n / 2), to: n + 3 }, { from: n - 1, to: n }, { from: 2, to: 2 }];
  };

  for (const n of [1, 7, 300, 5000]) {
    for (const rows of [1, 100]) {
      const bands = n * rows > 100_000 ? bandsFor(n).slice(0, 2) : bandsFor(n);
      it(`n=${n}, rows=${rows}: random and tied values`, async () => {
        await check(randomValue, 2, rows, n, bands);
        await check(tiedValue, 2, rows, n, bands);
      });
    }
  }

  it('n=16384 with ties and zeros', async () => {
    await check(zeroHeavy, 2, 1, 16_384, [{ from: 100, to: 3000 }]);
    await check(tiedValue, 1, 2, 16_384, [{ from: 163, to: 163 + 2457 }]);
  });

  it('a band past the row keeps nothing; keep-all changes nothing', async () => {
    await check(tiedValue, 1, 3, 10, [{ from: 10, to: 20 }, { from: 0, to: 10 }]);
  });

  it('rejects a bad shape or band, naming it', () => {
    const buf = uploadF32(ctx, 'tiny', new Float32Array(4));
    try {
      expect(() => rowBandMask(ctx, buf, { tasks: 1, rows: 1.5, n: 4 }, { from: 0, to: 1 }, 'crumbs')).toThrow(/crumbs.rows/);
      expect(() => rowBandMask(ctx, buf, { tasks: 1, rows: 1, n: 4 }, { from: -1, to: 1 }, 'crumbs')).toThrow(/crumbs.band/);
      expect(() => rowBandMask(ctx, buf, { tasks: 2, rows: 1, n: 4 }, { from: 0, to: 1 }, 'crumbs')).toThrow(/has 16 bytes, needs 32/);
    } finally {
      ctx.destroyBuffer(buf);
    }
  });
});
