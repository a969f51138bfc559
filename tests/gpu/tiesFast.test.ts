/**
 * Global TIES's one-pass statistics and fused output (src/engine/merge/plans/tiesFast.ts, ties_scan, ties_output) in
 * runMerge:
 * - The fused path (interference metrics off) writes exactly the bytes of the stack path (metrics on: ties_merge after
 *   an exact majority sign), for every merge rule, k = 0.2 / 0.5 / 1, per-task lambdas, F32 and BF16 models, with the
 *   raw chunks kept on the GPU between passes or read again (cacheBytes 0), and with the bracketed keys listed by the
 *   host (tiesKeyLists.ts: a CPU-emulated adapter, as here) or by ties_scan (the context marked as hardware).
 * - On a model larger than the sample, with the sampled stretches leaning positive and the rest (more of it) negative,
 *   the sample's majority estimate is wrong; with tied columns (x and -x kept) their chunks must run again: with the
 *   output held (the default) only those chunks ('merge again: tied columns'), else the whole pass (holdBytes 0,
 *   'merge again'). Both write the same bytes and norms, equal to the float64 reference (tied columns on the exact
 *   majority's side).
 * - DARE then global TIES (its drop applied by ties_output itself) writes the stack path's bytes too, with the exact
 *   select on the host or the GPU and no sign-tally pass; from its provisional majority +1 it runs the tied columns
 *   again where the exact majority is -1.
 * - A TIES stage inside another plan (LiNeS on TIES) has no fused output to correct it: on that world it takes the exact
 *   majority before writing, and equals the float64 reference.
 * - Where the scale changes from stretch to stretch of a tensor, the sampled runs differ as clusters and the bracket
 *   widens to hold the rank: the fast path stands and equals the float64 reference.
 * - When the magnitudes outside the sample are larger, the sample's bracket misses the rank: the exact radix select
 *   takes over ('TIES threshold' phase) and the result still equals the float64 reference.
 */
import { describe, expect, it, vi } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { memorySink, memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { resolveConfig } from '../../src/engine/merge/config';
import { HostKeyLists } from '../../src/engine/merge/plans/tiesKeyLists';
import { TiesOutputKernel } from '../../src/engine/gpu/tiesFused';
import { RawUploader } from '../../src/engine/merge/stream';
import { runMerge } from '../../src/engine/merge/runMerge';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { gridModels, maxRelativeError } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { readFloatTensors } from '../helpers/independent';
import { makeModelBytes } from '../helpers/safetensorsFixtures';
import { grid, N, RUNS, sampled, tiedMajority, tiesWorld } from '../helpers/tiesWorld';

const SHAPES = {
  'vision_model.embeddings.patch_embedding.weight': [8, 3, 4, 4],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [40, 24],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [40],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [48, 96],
  'vision_model.logit_bias': [],
};

const bytesOf = (m: RefModel, dtype: 'F32' | 'BF16') => makeModelBytes([...m].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encodeFloats(t.data, dtype) })));

/** Runs TIES (or another method); returns the written bytes and the progress phases seen. */
async function ties(base: Uint8Array, models: Uint8Array[], params: Record<string, unknown>, o: { metrics: boolean; cacheBytes?: number; holdBytes?: number; method?: string; hardware?: boolean }) {
  const ctx = await testContext();
  // As on a hardware adapter: ties_scan lists the bracketed keys (on a CPU-emulated one the host lists them).
  const info = ctx.info as { isSoftware: boolean };
  const software = info.isSoftware;
  if (o.hardware) info.isSoftware = false;
  try {
    return await runTies(ctx, base, models, params, o);
  } finally {
    info.isSoftware = software;
  }
}

async function runTies(ctx: GpuContext, base: Uint8Array, models: Uint8Array[], params: Record<string, unknown>, o: { metrics: boolean; cacheBytes?: number; holdBytes?: number; method?: string }) {
  const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
  let sink = memorySink('out');
  const phases = new Set<string>();
  const report = await runMerge(ctx, {
    base: await open('base', base),
    models: await Promise.all(models.map((b, i) => open(`task${i}`, b))),
    config: resolveConfig({ method: o.method ?? 'ties', params, options: { chunkElements: 4096 } }),
    metrics: o.metrics,
    ...(o.cacheBytes !== undefined ? { cacheBytes: o.cacheBytes } : {}),
    ...(o.holdBytes !== undefined ? { holdBytes: o.holdBytes } : {}),
    // A new sink per call: a pass that must run again discards its first output.
    output: async () => (sink = memorySink('out')),
    onProgress: (p) => phases.add(p.phase),
  });
  expect(ctx.allocatedBytes).toBe(0);
  return { bytes: sink.bytes(), phases, report };
}

describe('global TIES: one-pass statistics and fused output', () => {
  const g = gridModels(7, 3, SHAPES);
  const cases: [string, Record<string, unknown>][] = [
    ['defaults', {}],
    ['mean, k 0.5', { merge: 'mean', k: 0.5 }],
    ['max, k 0.3, lambda 0.8', { merge: 'max', k: 0.3, lambda: 0.8 }],
    ['k 1', { k: 1 }],
    ['per-task lambdas', { lambda: { per_task: [0.2, -0.5, 1.0] } }],
  ];
  for (const dtype of ['F32', 'BF16'] as const) {
    for (const [label, params] of cases) {
      it(`${dtype} ${label}: fused bytes equal the stack path's, with and without kept chunks`, async () => {
        const ctx = await testContext();
        const base = bytesOf(g.base, dtype);
        const models = g.models.map((m) => bytesOf(m, dtype));
        const stack = await ties(base, models, params, { metrics: true });
        const hostLists = vi.spyOn(HostKeyLists.prototype, 'add');
        const fused = await ties(base, models, params, { metrics: false });
        const reread = await ties(base, models, params, { metrics: false, cacheBytes: 0 });
        const listedByHost = hostLists.mock.calls.length;
        const gpuLists = await ties(base, models, params, { metrics: false, hardware: true });
        expect(hostLists.mock.calls.length).toBe(listedByHost);
        hostLists.mockRestore();
        expect(fused.phases.has('TIES statistics')).toBe(true);
        expect(Buffer.from(fused.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
        expect(Buffer.from(reread.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
        expect(Buffer.from(gpuLists.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
        // Here (SwiftShader) the host listed the keys, except where every key is kept (k 1: empty brackets).
        if (ctx.info.isSoftware) expect(listedByHost > 0).toBe(params.k !== 1);
      });
    }
  }

  describe('DARE then global TIES: ties_output with the drop', () => {
    const dareCases: [string, Record<string, unknown>][] = [
      ['defaults', {}],
      ['mean, k 0.5, p 0.3', { merge: 'mean', k: 0.5, p: 0.3 }],
      ['max, no rescale', { merge: 'max', rescale: false, lambda: 0.8 }],
      ['Linear weights only (their scale differs from the others)', { linear_only: true, p: 0.6 }],
      ['per-task lambdas', { lambda: { per_task: [0.2, -0.5, 1.0] } }],
    ];
    for (const dtype of ['F32', 'BF16'] as const) {
      for (const [label, extra] of dareCases) {
        it(`${dtype} ${label}: the fused bytes equal the stack path's, without the sign-tally pass`, async () => {
          const params = { then: 'ties', ...extra };
          const base = bytesOf(g.base, dtype);
          const models = g.models.map((m) => bytesOf(m, dtype));
          const stack = await ties(base, models, params, { metrics: true, method: 'dare' });
          const encodes = vi.spyOn(TiesOutputKernel.prototype, 'encode');
          let launches = 0;
          const fused = await ties(base, models, params, { metrics: false, method: 'dare' }).finally(() => {
            launches = encodes.mock.calls.length;
            encodes.mockRestore();
          });
          expect(launches, 'ties_output launches').toBeGreaterThan(0);
          expect(stack.phases.has('TIES majority sign')).toBe(true);
          expect(fused.phases.has('TIES majority sign')).toBe(false);
          expect(Buffer.from(fused.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
          // The exact select on the GPU (a hardware adapter) instead of the host: the same bytes.
          const gpuSelect = await ties(base, models, params, { metrics: false, method: 'dare', hardware: true });
          expect(Buffer.from(gpuSelect.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
        });
      }
    }

    it('starts from a provisional +1 and runs the tied columns again under the exact majority (-1)', async () => {
      // p 0 drops nothing: the world's tied columns stay, and its exact majority is -1.
      const w = tiesWorld(tiedMajority());
      const params = { then: 'ties', p: 0 };
      const fused = await ties(w.baseBytes, w.modelBytes, params, { metrics: false, method: 'dare' });
      expect(fused.phases.has('merge again: tied columns')).toBe(true);
      const stack = await ties(w.baseBytes, w.modelBytes, params, { metrics: true, method: 'dare' });
      expect(Buffer.from(fused.bytes).equals(Buffer.from(stack.bytes))).toBe(true);
      const got = readFloatTensors(fused.bytes).get('w')!.values;
      expect(Math.fround(got[997]! - w.base.get('w')!.data[997]!)).toBeCloseTo(-0.3, 6);
    });

    it('takes the exact majority before its output where a tensor\'s models differ in dtype (that tensor takes the stack)', async () => {
      // The tied world's 'w' (exact majority -1), and 'v' stored in f32 by two models and in bf16 by the third: no one
      // fused kernel decodes 'v', so it is merged on the stack, where a provisional sign would stay. Its even columns
      // hold +1 (model 0) and -1 (model 1): tied, so the majority decides them.
      const w = tiesWorld(tiedMajority());
      const v = (t: number) => Float32Array.from({ length: 64 }, (_, j) => (j % 2 ? 0 : t === 0 ? 1 : t === 1 ? -1 : 0));
      const file = (m: RefModel, vs: Float32Array, dtype: 'F32' | 'BF16') =>
        makeModelBytes([
          { name: 'w', dtype: 'F32', shape: [N], data: encodeFloats(m.get('w')!.data, 'F32') },
          { name: 'v', dtype, shape: [64], data: encodeFloats(vs, dtype) },
        ]);
      const base = file(w.base, new Float32Array(64), 'F32');
      const models = w.models.map((m, t) => file(m, v(t), t === 2 ? 'BF16' : 'F32'));
      const ctx = await testContext();
      const open = (name: string, b: Uint8Array) => openSingleFileModel(name, memorySource(name, b));
      for (const [method, params] of [
        ['dare', { then: 'ties', p: 0 }],
        ['ties', {}],
      ] as const) {
        const run = async (metrics: boolean) => {
          const sink = memorySink('out');
          const phases = new Set<string>();
          await runMerge(ctx, {
            base: await open('base', base),
            models: await Promise.all(models.map((b, i) => open(`task${i}`, b))),
            config: resolveConfig({ method, params, options: { chunkElements: 4096, mixedDtypes: true } }),
            metrics,
            output: async () => sink,
            onProgress: (q) => phases.add(q.phase),
          });
          return { bytes: sink.bytes()!, phases };
        };
        const fused = await run(false);
        const stack = await run(true);
        expect(readFloatTensors(fused.bytes).get('v')!.values[0], method).toBeCloseTo(-0.3, 6);
        expect(Buffer.from(fused.bytes).equals(Buffer.from(stack.bytes)), method).toBe(true);
        expect(fused.phases.has('TIES majority sign'), method).toBe(true);
      }
      expect(ctx.allocatedBytes).toBe(0);
    });
  });

  it('runs the tied columns\' chunks again (or the whole pass) when the estimated majority was wrong', async () => {
    const w = tiesWorld(tiedMajority());
    const fused = await ties(w.baseBytes, w.modelBytes, {}, { metrics: false });
    expect(fused.phases.has('merge again: tied columns')).toBe(true);
    expect(fused.phases.has('merge again')).toBe(false);
    const whole = await ties(w.baseBytes, w.modelBytes, {}, { metrics: false, holdBytes: 0 });
    expect(whole.phases.has('merge again')).toBe(true);
    expect(Buffer.from(fused.bytes).equals(Buffer.from(whole.bytes))).toBe(true);
    expect(fused.report.tensors).toEqual(whole.report.tensors);
    const want = mergeReference('ties', resolveParams(getMethod('ties'), {}), w.base, w.models).get('w')!.data;
    const got = readFloatTensors(fused.bytes).get('w')!.values;
    expect(maxRelativeError(got, want)).toBeLessThanOrEqual(1e-5);
    // The tied columns took the exact majority's side (-1): the -1 entry, times lambda 0.3.
    expect(Math.fround(got[997]! - w.base.get('w')!.data[997]!)).toBeCloseTo(-0.3, 6);
  });

  it('runs again only the tied tensors of a batched chunk (tensors small enough to share chunks)', async () => {
    // The same world cut into 600 tensors of 1000 elements: chunks of 4096 elements hold four of them. A sampled
    // run covers the whole tensor that its start falls in.
    const size = 1000;
    const names = Array.from({ length: N / size }, (_, i) => `w${String(i).padStart(3, '0')}`);
    const inSample = new Uint8Array(N);
    for (let i = 0; i < RUNS; i++) {
      const at = Math.floor(((i + 0.5) * N) / RUNS);
      inSample.fill(1, at - (at % size), at - (at % size) + size);
    }
    const tau = tiedMajority(inSample);
    const cut = (value: (j: number) => number): RefModel =>
      new Map(names.map((n, i) => [n, { shape: [size], data: Float64Array.from({ length: size }, (_, k) => value(i * size + k)) }]));
    const baseAt = (j: number) => ((j % 7) - 3) / 256;
    const base = cut(baseAt);
    const models = [0, 1, 2].map((t) => cut((j) => baseAt(j) + tau(t, j)));
    const [baseBytes, modelBytes] = [bytesOf(base, 'F32'), models.map((m) => bytesOf(m, 'F32'))];
    const uploads = vi.spyOn(RawUploader.prototype, 'uploadParts');
    const fused = await ties(baseBytes, modelBytes, {}, { metrics: false });
    const batched = uploads.mock.calls.filter(([parts]) => parts.length === 4).length;
    uploads.mockRestore();
    expect(batched).toBeGreaterThan(100);
    expect(fused.phases.has('merge again: tied columns')).toBe(true);
    expect(fused.phases.has('TIES threshold')).toBe(false);
    const whole = await ties(baseBytes, modelBytes, {}, { metrics: false, holdBytes: 0 });
    expect(whole.phases.has('merge again')).toBe(true);
    expect(Buffer.from(fused.bytes).equals(Buffer.from(whole.bytes))).toBe(true);
    expect(fused.report.tensors).toEqual(whole.report.tensors);
    const want = mergeReference('ties', resolveParams(getMethod('ties'), {}), base, models);
    const got = readFloatTensors(fused.bytes);
    for (const n of names) expect(maxRelativeError(got.get(n)!.values, want.get(n)!.data), n).toBeLessThanOrEqual(1e-5);
    // The tied columns took the exact majority's side (-1): the -1 entry, times lambda 0.3.
    let j = 0;
    while (inSample[j]) j += 997;
    expect(Math.fround(got.get(names[Math.floor(j / size)]!)!.values[j % size]! - baseAt(j))).toBeCloseTo(-0.3, 6);
  });

  it('a TIES stage inside another plan (LiNeS on TIES) takes the exact majority before its output, on the same world', async () => {
    const w = tiesWorld(tiedMajority());
    const run = await ties(w.baseBytes, w.modelBytes, { then: 'ties' }, { metrics: false, method: 'lines' });
    expect(run.phases.has('merge again')).toBe(false);
    const want = mergeReference('lines', resolveParams(getMethod('lines'), { then: 'ties' }), w.base, w.models).get('w')!.data;
    expect(maxRelativeError(readFloatTensors(run.bytes).get('w')!.values, want)).toBeLessThanOrEqual(1e-5);
  });

  it('brackets the rank where the scale changes from stretch to stretch (runs weigh as clusters), on the fast path', async () => {
    // Stretches of 4096 elements at scales from 1 to 128 (integers: every value stays exact in f32): each sampled run
    // lies in one stretch, so the runs' shares above the threshold differ far more than independent elements'. A
    // bracket of 5 independent-sample standard errors misses the rank here for every task.
    const scale = (j: number) => {
      const h = Math.imul(j >> 12, 2654435761) >>> 16;
      return (1 + (h % 16)) * 2 ** ((h >> 4) % 4);
    };
    const w = tiesWorld((t, j) => scale(j) * ((j + t) % 2 ? 1 : -1) * grid(j, t));
    const fused = await ties(w.baseBytes, w.modelBytes, {}, { metrics: false });
    expect(fused.phases.has('TIES statistics')).toBe(true);
    expect(fused.phases.has('TIES threshold')).toBe(false);
    const want = mergeReference('ties', resolveParams(getMethod('ties'), {}), w.base, w.models).get('w')!.data;
    expect(maxRelativeError(readFloatTensors(fused.bytes).get('w')!.values, want)).toBeLessThanOrEqual(1e-5);
  });

  it('falls back to the exact select when the sample misses the rank, and still equals the reference', async () => {
    // Outside the sample the magnitudes are 64x larger: the 20% rank lies far above every sampled key.
    const w = tiesWorld((t, j) => (sampled[j] ? 1 : 64) * ((j + t) % 2 ? 1 : -1) * grid(j, t));
    const fused = await ties(w.baseBytes, w.modelBytes, {}, { metrics: false });
    expect(fused.phases.has('TIES threshold')).toBe(true);
    const want = mergeReference('ties', resolveParams(getMethod('ties'), {}), w.base, w.models).get('w')!.data;
    expect(maxRelativeError(readFloatTensors(fused.bytes).get('w')!.values, want)).toBeLessThanOrEqual(1e-5);
  });
});
