/**
 * Global TIES's host key lists (src/engine/merge/plans/tiesKeyLists.ts, keyListWasm.ts) against the twin of ties_scan
 * (reference/tiesFused.ts tiesScanRef): the WebAssembly SIMD loop lists exactly the twin's keys, in element order, for F32 / BF16 / F16 inputs in any mix, chunk lengths that are not a multiple of 4, keys on the
 * bracket's ends, special values, and a device that flushes subnormals; several chunks append in order; a task past
 * its capacity reports null. The keys at or above each bracket are counted as the twin counts them.
 */
import { describe, expect, it, vi } from 'vitest';
import type { RawDType } from '../../src/engine/gpu/kernels';
import { keyListWasm } from '../../src/engine/merge/plans/keyListWasm';
import { HOST_LIST_MIN_KEY, HostKeyLists, hostListsExact, type HostInput } from '../../src/engine/merge/plans/tiesKeyLists';
import { tiesScanRef } from '../../src/engine/reference/tiesFused';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { seededRandom } from '../helpers/safetensorsFixtures';

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
const keyOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]! & 0x7fffffff;

/** A HostInput over bytes in memory (at least `count` elements). */
function hostInput(bytes: Uint8Array, dtype: RawDType): HostInput {
  return { dtype, fill: async (into) => into.set(bytes.subarray(0, into.byteLength)) };
}

/**
 * One chunk's inputs for the host lists: each input's bytes at byte offset `shift` of its own buffer, followed by
 * stale bytes (the lists must read `count` elements and no more); `exact` holds them as the twin takes them.
 */
function chunk(values: number[][], dtypes: RawDType[], shift = 0) {
  const exact = values.map((v, i) => ({ bytes: encodeFloats(v, dtypes[i]!), dtype: dtypes[i]! }));
  const inputs = exact.map((e) => {
    const buffer = new Uint8Array(shift + e.bytes.length + 16).fill(0xab);
    buffer.set(e.bytes, shift);
    return hostInput(buffer.subarray(shift), e.dtype);
  });
  return { inputs, exact };
}

/** Brackets of width `share` around each task's share-`q` quantile of |tau| (from the twin's decoding). */
function bracketsOf(values: number[][], q: number, share: number): Uint32Array {
  const tasks = values.length - 1;
  const out = new Uint32Array(2 * tasks);
  for (let t = 0; t < tasks; t++) {
    const keys = values[t + 1]!.map((x, j) => keyOf(Math.fround(Math.fround(x) - Math.fround(values[0]![j]!)))).sort((a, b) => a - b);
    const at = (p: number) => keys[Math.min(keys.length - 1, Math.max(0, Math.floor(p * keys.length)))]!;
    out[2 * t] = Math.max(HOST_LIST_MIN_KEY, at(q - share / 2));
    out[2 * t + 1] = Math.max(out[2 * t]!, at(q + share / 2));
  }
  return out;
}

const wasm = () => {
  const w = keyListWasm();
  if (!w) throw new Error('no WebAssembly SIMD here');
  return w;
};

describe('host key lists of global TIES', () => {
  it('has WebAssembly SIMD here, and is null where WebAssembly may not be compiled (a strict Content-Security-Policy)', async () => {
    expect(keyListWasm()).not.toBeNull();
    vi.resetModules();
    const compile = vi.spyOn(WebAssembly, 'Module').mockImplementation(() => {
      throw new WebAssembly.CompileError('Refused to compile or instantiate WebAssembly module');
    });
    try {
      const fresh = await import('../../src/engine/merge/plans/keyListWasm');
      expect(fresh.keyListWasm()).toBeNull();
      expect(compile).toHaveBeenCalled();
    } finally {
      compile.mockRestore();
    }
  });

  it(`lists the twin's keys for every input dtype mix and chunk length`, async () => {
    const rng = seededRandom(11);
    const mixes: RawDType[][] = [
      ['F32', 'F32', 'F32', 'F32'],
      ['BF16', 'BF16', 'BF16', 'BF16'],
      ['F16', 'F16', 'F16', 'F16'],
      ['BF16', 'F32', 'BF16', 'F16'],
      ['F16', 'BF16', 'F32', 'BF16'],
    ];
    for (const dtypes of mixes) {
      for (const numel of [1, 3, 4, 5, 257, 4099]) {
        const base = Array.from({ length: numel }, () => (rng() - 0.5) * 0.04);
        const values = [base, ...[0, 1, 2].map(() => base.map((b) => b + (rng() - 0.5) * 0.004))];
        for (const shift of [0, 2, 6]) {
          const c = chunk(values, dtypes, shift);
          const brackets = bracketsOf(values, 0.8, 0.3);
          const lists = new HostKeyLists(wasm(), brackets, numel);
          await lists.add(c.inputs, numel);
          const want = tiesScanRef(c.exact, numel, brackets);
          expect(lists.results().map((l) => Array.from(l!)), `${dtypes.join('/')} ${numel} +${shift}`).toEqual(want.listed);
          expect(Array.from(lists.counts()), `counts ${dtypes.join('/')} ${numel} +${shift}`).toEqual(want.above);
        }
      }
    }
  });

  it(`keys on the bracket's ends, special values, subnormals (flushed or not) and zero padding`, async () => {
    const lo = keyOf(0.001);
    const above = keyOf(0.002);
    const sub = f32(0x00400000);
    // theta0 and one model; tau = model - theta0 lands on the ends, on +-inf / NaN, on subnormals and zeros.
    const base = [0, 0, 0, 0, 0, 1, -1, sub, sub, 0.0015, -0, 0.0015, 0];
    const model = [f32(lo), -f32(lo), f32(above), -f32(above - 1), f32(lo - 1), Infinity, NaN, 0.0015, sub, 0.0015 + sub, 0, -0.0005, -sub];
    const values = [base, model];
    const c = chunk(values, ['F32', 'F32']);
    const brackets = Uint32Array.of(lo, above);
    expect(hostListsExact(brackets)).toBe(true);
    const lists = new HostKeyLists(wasm(), brackets, 64);
    await lists.add(c.inputs, base.length);
    const got = Array.from(lists.results()[0]!);
    expect(got).toEqual(tiesScanRef(c.exact, base.length, brackets).listed[0]);
    // Keys at or above the bracket (the upper end itself, +-inf, NaN) are counted as the twin counts them, padding never.
    expect(Array.from(lists.counts())).toEqual(tiesScanRef(c.exact, base.length, brackets).above);
    // above itself, +inf, NaN, and -0.0005 - 0.0015 (whose f32 difference is -0.002 exactly)
    expect(lists.counts()[0]).toBe(4);
    expect(got).toEqual(tiesScanRef(c.exact, base.length, brackets, { flushSubnormals: true }).listed[0]);
    expect(got).toContain(lo);
    expect(got).toContain(above - 1);
    expect(got).not.toContain(above);
    // Chunk lengths that are not a multiple of 4: the stale bytes after the inputs list and count nothing.
    for (const n of [1, 2, 3, 5, 6, 7]) {
      const d = chunk(values.map((v) => v.slice(0, n)), ['F32', 'F32']);
      const l = new HostKeyLists(wasm(), brackets, 64);
      await l.add(d.inputs, n);
      expect(Array.from(l.results()[0]!)).toEqual(tiesScanRef(d.exact, n, brackets).listed[0]);
      expect(Array.from(l.counts())).toEqual(tiesScanRef(d.exact, n, brackets).above);
    }
  });

  it(`appends chunk after chunk in order, and reports a task past its capacity as null`, async () => {
    const rng = seededRandom(5);
    const numel = 1000;
    const parts = [0, 1, 2].map(() => {
      const base = Array.from({ length: numel }, () => (rng() - 0.5) * 0.04);
      return [base, base.map((b) => b + (rng() - 0.5) * 0.004), base.map((b) => b + (rng() - 0.5) * 0.0004)];
    });
    const brackets = bracketsOf(parts[0]!, 0.5, 0.2);
    const twin = parts.map((v) => tiesScanRef(chunk(v, ['F32', 'F32', 'F32']).exact, numel, brackets));
    const want = twin.map((w) => w.listed);
    const sizes = [0, 1].map((t) => want.reduce((n, w) => n + w[t]!.length, 0));
    expect(Math.min(...sizes)).toBeGreaterThan(0);
    // The smaller list fits exactly; the larger one is past the capacity.
    const cap = Math.min(...sizes);
    expect(sizes[0]).not.toBe(sizes[1]);
    const lists = new HostKeyLists(wasm(), brackets, cap);
    for (const v of parts) {
      const c = chunk(v, ['F32', 'F32', 'F32']);
      await lists.add(c.inputs, numel);
    }
    lists.results().forEach((got, t) => {
      if (sizes[t]! > cap) expect(got).toBeNull();
      else expect(Array.from(got!)).toEqual(want.flatMap((w) => w[t]!));
    });
    // The counts above the brackets add up over the chunks, past the capacity too.
    const above = [0, 1].map((t) => twin.reduce((n, w) => n + w.above[t]!, 0));
    expect(Math.min(...above)).toBeGreaterThan(0);
    expect(Array.from(lists.counts())).toEqual(above);
  });

  it('takes host lists only where they equal every device\'s: brackets from 2^-100 up to infinity', () => {
    expect(HOST_LIST_MIN_KEY).toBe(keyOf(2 ** -100));
    expect(hostListsExact(Uint32Array.of(keyOf(1e-3), keyOf(2e-3), HOST_LIST_MIN_KEY, 0x7f800000))).toBe(true);
    expect(hostListsExact(Uint32Array.of(keyOf(1e-3), keyOf(2e-3), HOST_LIST_MIN_KEY - 1, keyOf(1)))).toBe(false);
    expect(hostListsExact(Uint32Array.of(0, keyOf(1e-3)))).toBe(false);
    expect(hostListsExact(Uint32Array.of(keyOf(1e-3), 0x7f800001))).toBe(false);
    expect(hostListsExact(Uint32Array.of(keyOf(1e-3), 0x80000000))).toBe(false);
  });
});
