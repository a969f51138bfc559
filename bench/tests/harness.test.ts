/** The benchmark's CPU-side parts: shapes, generated models, statistics, arguments, breakdown arithmetic, output. */
import { describe, expect, it } from 'vitest';
import { alignModels } from '../../src/engine/merge/align';
import { DEFAULT_OPTIONS } from '../../src/engine/merge/config';
import { countLayers, depthOf } from '../../src/engine/methods/scaling';
import { decodeFloats } from '../../src/engine/tensor/dtype';
import { parseArgs, USAGE } from '../args';
import { parseTorchOutput } from '../baselines';
import { partsOf, PARTS, VARIANTS } from '../breakdown';
import { HOST_PARTS, summarizeProfile, type CpuProfile } from '../hostProfile';
import { fmtMs, renderMarkdown, sig } from '../markdown';
import { countingSink, generateModels } from '../models';
import { adapterSlug, defaultProfile } from '../output';
import { PROFILES, profileNamed } from '../profiles';
import { recommendations, slowMethods, transferBound } from '../recommend';
import { RESULTS_FORMAT, type BenchResults, type EngineFigure } from '../results';
import { median, timeIt } from '../stats';
import { BATCH_METHODS, modelCountProblem } from '../suite';
import { parameterCount, scaledVit, sizeLabel, VIT_B32, vitTensors } from '../vitShapes';

describe('ViT-B/32 shapes', () => {
  it('has the 87,456,000 parameters of the HF CLIPVisionModel in 199 tensors, 12 layers', () => {
    const tensors = vitTensors(VIT_B32);
    expect(parameterCount(tensors)).toBe(87_456_000);
    expect(tensors).toHaveLength(5 + 12 * 16 + 2);
    expect(countLayers(tensors.map((t) => t.name))).toBe(12);
    expect(depthOf('vision_model.encoder.layers.11.mlp.fc1.weight', 12)).toBe(1);
    expect(tensors.find((t) => t.name.endsWith('patch_embedding.weight'))!.shape).toEqual([768, 3, 32, 32]);
  });
  it('scales width and depth, and rejects sizes that do not divide', () => {
    const s = scaledVit(4, 2);
    expect(s).toMatchObject({ width: 192, mlp: 768, layers: 2 });
    expect(vitTensors(s)).toHaveLength(5 + 2 * 16 + 2);
    expect(sizeLabel(s)).toBe('ViT-B/32 width/4, 2 layers');
    expect(sizeLabel(VIT_B32)).toBe('ViT-B/32');
    expect(() => scaledVit(5)).toThrow(/divide 768/);
    expect(() => scaledVit(2, 0)).toThrow(/layers/);
  });
});

describe('generated models', () => {
  it('are deterministic safetensors models the engine can align, base + small deltas, in f32 and bf16', async () => {
    const size = scaledVit(64, 1);
    const a = await generateModels({ size, dtype: 'F32', tasks: 2 });
    const b = await generateModels({ size, dtype: 'F32', tasks: 2 });
    const name = 'vision_model.encoder.layers.0.mlp.fc1.weight';
    expect(await a.models[1]!.readTensor(name)).toEqual(await b.models[1]!.readTensor(name));
    expect(a.elements).toBe(parameterCount(vitTensors(size)));
    expect(a.modelBytes).toBe(a.elements * 4);
    const aligned = alignModels(a.base, a.models, DEFAULT_OPTIONS);
    expect(aligned.every((t) => t.action === 'merge')).toBe(true);
    const base = decodeFloats(await a.base.readTensor(name), 'F32');
    const [ft0, ft1] = await Promise.all(a.models.map(async (m) => decodeFloats(await m.readTensor(name), 'F32')));
    const maxDelta = Math.max(...base.map((x, i) => Math.abs(ft0![i]! - x)));
    expect(maxDelta).toBeGreaterThan(0);
    expect(maxDelta).toBeLessThanOrEqual(0.0021);
    expect(ft0).not.toEqual(ft1);
    const bf = await generateModels({ size, dtype: 'BF16', tasks: 1 });
    expect(bf.modelBytes).toBe(a.elements * 2);
    const bfBase = decodeFloats(await bf.base.readTensor(name), 'BF16');
    bfBase.forEach((x, i) => expect(Math.abs(x - base[i]!)).toBeLessThanOrEqual(Math.abs(base[i]!) / 128));
  });
  it('write into a sink that counts bytes and keeps none', async () => {
    const sink = countingSink('out');
    await sink.write(new Uint8Array(10));
    await sink.write(new Uint8Array(5));
    expect(sink.bytes).toBe(15);
  });
});

describe('statistics', () => {
  it('takes medians of odd and even counts and refuses an empty list', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow();
  });
  it('runs warm-ups untimed and times every repetition', async () => {
    let calls = 0;
    const t = await timeIt({ warmups: 2, reps: 3 }, async () => void calls++);
    expect(calls).toBe(5);
    expect(t.runs).toHaveLength(3);
    expect(t.ms).toBe(median(t.runs));
    await expect(timeIt({ warmups: 0, reps: 0 }, async () => undefined)).rejects.toThrow(/reps/);
  });
});

describe('arguments and profiles', () => {
  it('parses options and names a bad one', () => {
    const a = parseArgs(['--profile', 'smoke', '--out', '/tmp/x', '--no-torch', '--budget-min', '2', '--require-hardware']);
    expect(a).toMatchObject({ profile: 'smoke', out: '/tmp/x', torch: false, budgetMinutes: 2, requireHardware: true });
    expect(parseArgs([]).python).toEqual(['python3', '/usr/bin/python3']);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/--frobnicate/);
    expect(() => parseArgs(['--out'])).toThrow(/--out needs a value/);
    expect(() => parseArgs(['--budget-min', 'soon'])).toThrow(/--budget-min/);
  });
  it('picks the profile by adapter and lists the known ones in errors', () => {
    expect(defaultProfile(true)).toBe('swiftshader');
    expect(defaultProfile(false)).toBe('gpu');
    expect(profileNamed('gpu').acceptance.size).toEqual(VIT_B32);
    // The second-call profiles measure at the gpu profile's sizes, without the parts the gpu profile's first call covers.
    for (const name of ['gpu-merges', 'gpu-matrix']) {
      const p = profileNamed(name);
      expect([p.acceptance.size, p.matrix.size], name).toEqual([VIT_B32, VIT_B32]);
      expect([p.opcm, p.evaluation], name).toEqual([[], null]);
    }
    expect(profileNamed('gpu-matrix').matrix.tasks).toEqual([2, 20]);
    const opcm = profileNamed('gpu-opcm');
    expect([opcm.acceptance.size, opcm.matrix.tasks, opcm.evaluation]).toEqual([VIT_B32, [], null]);
    expect(opcm.opcm.map((o) => [o.size, o.twin])).toEqual([[VIT_B32, false]]);
    // The full-size step on a software adapter: host SVDs only (the emulated Jacobi would take hours), no matrix.
    const softOpcm = profileNamed('full-size-opcm');
    expect(softOpcm.opcm.map((o) => [o.size, o.twin, o.otherSvd])).toEqual([[VIT_B32, false, false]]);
    expect([softOpcm.matrix.tasks, softOpcm.evaluation, softOpcm.acceptance.size]).toEqual([[], null, PROFILES.swiftshader!.acceptance.size]);
    // The usage names every profile.
    for (const name of Object.keys(PROFILES)) expect(USAGE, name).toContain(name);
    expect(() => profileNamed('fast')).toThrow(/swiftshader, gpu/);
    for (const p of Object.values(PROFILES)) expect(p.budgetMs).toBeGreaterThan(0);
  });
  it('knows which methods can merge how many models', () => {
    expect(BATCH_METHODS).toHaveLength(11);
    expect(modelCountProblem('slerp', 8)).toMatch(/at most 2/);
    expect(modelCountProblem('consensus', 1)).toMatch(/at least 2/);
    expect(modelCountProblem('ties', 20)).toBeNull();
  });
});

describe('breakdown arithmetic', () => {
  it('derives each part as a variant minus the one before it, as a share of the whole merge', () => {
    const variants = { upload: 10, kernel: 70, 'no output': 80, merge: 100 };
    const parts = partsOf(variants);
    expect(parts.map((p) => p.ms)).toEqual([10, 60, 10, 20]);
    expect(parts.map((p) => p.part)).toEqual(VARIANTS.map((v) => PARTS[v]));
    expect(parts.reduce((s, p) => s + p.fraction, 0)).toBeCloseTo(1, 12);
  });
});

describe('host profile summary', () => {
  // Nodes: the root, readTensorInto, the readback, the pacer's tick, V8's collector, a Dawn call, an engine function.
  const frame = (functionName: string, url = 'file:///x/bench.mjs', lineNumber = 9) => ({ functionName, url, lineNumber });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', '') },
      { id: 2, callFrame: frame('readTensorInto') },
      { id: 3, callFrame: frame('readStaged') },
      { id: 4, callFrame: frame('tick') },
      { id: 5, callFrame: frame('(garbage collector)', '') },
      { id: 6, callFrame: frame('', '') },
      { id: 7, callFrame: frame('submit', 'file:///x/bench.mjs', 99) },
    ],
    // Each sample's time is the delta recorded before the next sample (in us); the first delta is from the start.
    samples: [2, 2, 3, 4, 5, 6, 7, 2],
    timeDeltas: [50, 1000, 3000, 500, 2000, 250, 4000, 750],
  };
  it('gives each sample the time to the next one, by part and by function', () => {
    const h = summarizeProfile(profile, 3);
    const part = (i: number) => h.parts.find((p) => p.part === (i < HOST_PARTS.length ? HOST_PARTS[i]!.part : h.parts[i]!.part))!.ms;
    expect(h.sampledMs).toBeCloseTo(11.5, 9);
    // readTensorInto: 1 + 3 ms (the last sample has no next one); readStaged 0.5; tick 2; GC 0.25; idle 0.
    expect([0, 1, 2, 3, 4].map(part)).toEqual([4, 0.5, 2, 0.25, 0]);
    expect(h.parts.slice(HOST_PARTS.length)).toEqual([
      { part: 'native code (Dawn, V8 built-ins)', ms: 4 },
      { part: 'other JavaScript (the engine, the writer)', ms: 0.75 },
    ]);
    expect(h.parts.reduce((s, p) => s + p.ms, 0)).toBeCloseTo(h.sampledMs, 9);
    // Equal times keep the order first seen.
    expect(h.top).toEqual([
      { fn: 'readTensorInto (bench.mjs:10)', ms: 4 },
      { fn: '(anonymous)', ms: 4 },
      { fn: 'tick (bench.mjs:10)', ms: 2 },
    ]);
  });
  it('renders a table of the parts as shares of the merge', () => {
    const r = results();
    const size = r.acceptance.taskArithmetic!.size;
    r.acceptance.hostProfile = { method: 'task_arithmetic', tasks: 8, dtype: 'F32', size, mergeMs: 20, intervalUs: 200, ...summarizeProfile(profile, 2) };
    const md = renderMarkdown(r);
    expect(md).toContain("The host's main thread during one more cold Task Arithmetic merge (8 x F32");
    expect(md).toContain('| inputs copied into mapped staging buffers (readTensorInto) | 4.0 ms | 20% |');
    expect(md).toContain('Most self time: readTensorInto (bench.mjs:10) 4.0 ms; (anonymous) 4.0 ms.');
    expect(renderMarkdown(results())).not.toContain("The host's main thread");
  });
});

describe('PyTorch output parsing', () => {
  const job = { methods: ['ties'], tasks: 2, dtype: 'F32' as const, sizeLabel: 'x' };
  it('reads one figure per method', () => {
    const out = `${JSON.stringify({ method: 'ties', ms: 5, runs: [5], device: 'cpu', torch: '1.13', threads: 1, peak_rss_bytes: 10 })}\n{"done": true}\n`;
    expect(parseTorchOutput(out, job)).toEqual([{ method: 'ties', tasks: 2, dtype: 'F32', sizeLabel: 'x', ms: 5, runs: [5], device: 'cpu', torch: '1.13', threads: 1, peakRssBytes: 10 }]);
  });
  it('refuses an unfinished run or a missing method', () => {
    expect(() => parseTorchOutput('', job)).toThrow(/did not finish/);
    expect(() => parseTorchOutput('{"done": true}', job)).toThrow(/no result for ties/);
  });
});

/** A merge figure with the given time, for rendering tests. */
function figure(method: string, ms: number, fractionOfCopy: number, passes: EngineFigure['passes'] = []): EngineFigure {
  const size = { label: 'ViT-B/32 width/2, 1 layer', width: 384, layers: 1, params: 2_971_008, fractionOfVitB32: 0.034 };
  return {
    method, tasks: 8, dtype: 'F32', size, timing: { ms, runs: [ms], warmups: 0 }, bytesMoved: 1e8, effectiveGBs: 0.01, fractionOfCopy,
    paramsPerSecond: 1e6, peakGpuBytes: 2 ** 20, rssBeforeBytes: 2 ** 30, rssPeakBytes: 2 ** 31, passes, metrics: false,
  };
}

function results(over: Partial<BenchResults> = {}): BenchResults {
  const ta = figure('task_arithmetic', 1000, 0.02);
  const ties = figure('ties', 4000, 0.005, [{ phase: 'TIES statistics', ms: 2500 }, { phase: 'merge', ms: 1500 }]);
  return {
    format: RESULTS_FORMAT, date: '2026-01-02T03:04:05.000Z', profile: 'swiftshader', adapter: 'google/swiftshader/SwiftShader driver 5.0.0', isSoftware: true,
    host: { platform: 'linux-x64', cpus: 2, cpuModel: 'cpu', memoryBytes: 2 ** 34, node: 'v20', loadAverageStart: [1, 1, 1], loadAverageEnd: [2, 2, 2] },
    wallMs: 60_000, budgetMs: 480_000,
    probes: [
      { name: 'copy kernel (vec4)', what: 'x', msPerIteration: 10, iterations: 3, reps: 3, rate: 0.5, unit: 'GB/s' },
      { name: 'kernel launch + wait', what: 'y', msPerIteration: 2, iterations: 3, reps: 3, rate: 500, unit: 'launches/s' },
    ],
    copyGBs: 0.5, matmulGflops: 1,
    acceptance: {
      taskArithmetic: ta, ties, tiesOverTa: 4,
      breakdown: { method: 'task_arithmetic', tasks: 8, dtype: 'F32', size: ta.size, reps: 1, chunks: 23, spreads: { upload: 1, kernel: 1, 'no output': 1, merge: 150 }, variants: { upload: 10, kernel: 800, 'no output': 900, merge: 1000 }, parts: partsOf({ upload: 10, kernel: 800, 'no output': 900, merge: 1000 }) },
    },
    merges: [ta], metricsCost: [], torch: [{ method: 'task_arithmetic', tasks: 8, dtype: 'F32', sizeLabel: ta.size.label, ms: 250, runs: [250], device: 'cpu', torch: '1.13', threads: 1, peakRssBytes: 1 }],
    torchError: null, reference: [], skipped: [{ what: 'slerp, 8 x F32', reason: 'slerp takes at most 2 models' }], notMeasured: [{ what: 'OPCM', reason: 'not measured yet' }], notes: ['a note'],
    ...over,
  };
}

describe('summary', () => {
  it('states both acceptance figures against their targets with the margin', () => {
    const md = renderMarkdown(results());
    expect(md).toContain('0.01 GB/s / 0.5 GB/s = **2%**');
    expect(md).toContain('misses: 25x too slow');
    expect(md).toContain('4.00 s / 1.00 s = **4x**');
    expect(md).toContain('misses: 1.33x over');
    expect(md).toContain('| task_arithmetic | 8 | F32 | 1.00 s |');
    expect(md).toContain('250 ms | 0.25x |');
    expect(md).toContain('- slerp, 8 x F32: slerp takes at most 2 models');
    expect(md).toContain('## Not measured yet');
    expect(md).toContain('CPU-emulated GPU');
    const passing = results({ tiesOverTa: 2 } as Partial<BenchResults>);
    passing.acceptance = { ...passing.acceptance, tiesOverTa: 2, taskArithmetic: figure('task_arithmetic', 1000, 0.6) };
    const md2 = renderMarkdown(passing);
    expect(md2).toMatch(/\*\*60%\*\* \| >= 50% \| meets/);
    expect(md2).toMatch(/\*\*2x\*\* \| <= 3x \| meets/);
    // With paired copy probes, the median of the per-run ratios decides.
    const paired = results();
    paired.acceptance = { ...paired.acceptance, paired: { copyGBs: [1, 2, 1.5], taGBs: [0.6, 0.8, 0.75], ratios: [0.6, 0.4, 0.5], fraction: 0.5 } };
    const md3 = renderMarkdown(paired);
    expect(md3).toContain('the probe "copy kernel (vec4)" timed before each of 3 TA runs');
    expect(renderMarkdown({ ...paired, copyKernel: 'copy kernel (vec4x2)' })).toContain('divided by the fastest copy kernel, "copy kernel (vec4x2)" (0.5 GB/s)');
    expect(md3).toMatch(/ratios 60%, 40%, 50% = \*\*50%\*\* \| >= 50% \| meets/);
    expect(recommendations(paired).some((x) => x.startsWith('**Task Arithmetic reaches'))).toBe(false);
    // With TIES runs paired with those TA runs, the median of their time ratios decides (the two medians say 4x).
    paired.acceptance.paired = { ...paired.acceptance.paired!, taMs: [100, 120, 110], tiesMs: [290, 400, 300], tiesRatios: [2.9, 400 / 120, 300 / 110], tiesOverTa: 300 / 110 };
    const md4 = renderMarkdown(paired);
    expect(md4).toContain('TIES run right after each of the 3 TA runs above');
    expect(md4).toMatch(/300 ms \/ 110 ms \(medians\); ratios 2.9x, 3.33x, 2.73x = \*\*2.73x\*\* \| <= 3x \| meets/);
    expect(md4).not.toContain('with the raw inputs kept on the GPU');
    // Task Arithmetic with resident inputs in the same pairs: a row for reading, its own median of ratios.
    paired.acceptance.paired = { ...paired.acceptance.paired!, residentMs: [60, 70, 65], residentGBs: [1, 0.9, 0.95], residentRatios: [1, 0.45, 0.63], residentFraction: 0.63 };
    expect(renderMarkdown(paired)).toMatch(/raw inputs kept on the GPU by the previous merge.*\| 0.95 GB\/s \/ 1.5 GB\/s \(medians\); ratios 100%, 45%, 63% = \*\*63%\*\* \| - \| for reading \|/);
  });
  it('orders recommendations by their share of the merge and quotes the numbers', () => {
    const recs = recommendations(results());
    expect(recs[0]).toMatch(/^\*\*Task Arithmetic reaches 2% of the copy kernel's bandwidth/);
    expect(recs[1]).toMatch(/^\*\*fused kernel \(linear_merge.*0.79 s \(79% of Task Arithmetic\)/);
    expect(recs[2]).toMatch(/^\*\*Global TIES statistics before the output pass: 2.5 s \(63% of TIES; TIES statistics\)/);
    expect(recs[3]).toMatch(/^\*\*non-finite flags read back and checked: 0.1 s \(10% of Task Arithmetic\)/);
    expect(recs[5]).toMatch(/^\*\*Fixed cost per chunk: 2 ms.*23 chunks, 0.046 s \(4.6%\)/);
    expect(recs).toHaveLength(6);
    expect(recs.some((r) => r.startsWith('**read + upload'))).toBe(false);
  });
  it('names the methods that take several times Task Arithmetic on the same models', () => {
    const slow = figure('breadcrumbs', 9000, 0.001);
    const r = results({ merges: [figure('task_arithmetic', 1000, 0.02), slow, figure('magmax', 1500, 0.01)] });
    expect(slowMethods(r)).toEqual([{ method: 'breadcrumbs', ratio: 9, ms: 9000, taMs: 1000, where: '8 x F32, ViT-B/32 width/2, 1 layer' }]);
    expect(recommendations(r).some((x) => x.startsWith("**breadcrumbs takes 9x Task Arithmetic's time on the same models (9 s vs 1 s"))).toBe(true);
  });
  it('sets Task Arithmetic against the least time the measured transfers allow, and reads a hardware run by that bound', () => {
    const transfers = [
      { name: 'upload (UploadRing)', what: 'u', msPerIteration: 1, iterations: 1, reps: 1, rate: 8, unit: 'GB/s' as const },
      { name: 'readback (readBuffer)', what: 'r', msPerIteration: 1, iterations: 1, reps: 1, rate: 2, unit: 'GB/s' as const },
    ];
    const r = results();
    r.probes = [...r.probes, ...transfers];
    // 9 f32 models of 2,971,008 parameters in (106.96 MB at 8 GB/s: 13.4 ms) and 12 MB out (at 2 GB/s: 6 ms).
    const inBytes = 9 * 2_971_008 * 4;
    const ta = r.acceptance.taskArithmetic!;
    const withOutput = { ...ta, bytesMoved: inBytes + 12e6 };
    expect(transferBound(r, withOutput)).toEqual({ ms: inBytes / 8e6 + 12e6 / 2e6, inBytes, outBytes: 12e6, uploadGBs: 8, readbackGBs: 2 });
    expect(transferBound(results(), ta)).toBeNull();
    r.acceptance = { ...r.acceptance, taskArithmetic: withOutput };
    expect(renderMarkdown(r)).toContain('| 19.4 ms (0.107 GB at 8 GB/s, 0.012 GB at 2 GB/s) / 1.00 s = **1.94%** | - | for reading |');
    expect(renderMarkdown(r)).not.toContain('The two targets were set for SwiftShader');
    expect(recommendations(r).some((x) => x.includes('the least time the measured transfers allow'))).toBe(false);
    const gpu = { ...r, isSoftware: false, adapter: 'NVIDIA H100 80GB HBM3 (nvidia/NVIDIA: 580.159.04)' };
    expect(renderMarkdown(gpu)).toContain('The two targets were set for SwiftShader');
    const recs = recommendations(gpu);
    expect(recs[0]).toMatch(/^\*\*Task Arithmetic takes 51.6x the least time the measured transfers allow \(1 s against 0.0194 s\)/);
    expect(recs.some((x) => x.startsWith("**Task Arithmetic reaches"))).toBe(false);
    expect(recs.find((x) => x.startsWith('**Global TIES statistics'))).toContain('a larger cache saves the rest of the second upload');
  });
  it('prices the interference metrics: on, on with cached task-vector metrics, with resident inputs too, and the step without them', () => {
    const off = figure('task_arithmetic', 100, 0.5);
    const r = results({ metricsCost: [{ method: 'task_arithmetic', off, on: figure('task_arithmetic', 800, 0.1), cached: figure('task_arithmetic', 300, 0.2), resident: figure('task_arithmetic', 150, 0.3), offResident: figure('task_arithmetic', 40, 0.6) }] });
    expect(renderMarkdown(r)).toContain(`| task_arithmetic, 8 x F32, ${off.size.label} | 100 ms | 800 ms | 8x | 300 ms | 3x | 150 ms | 1.5x | 40.0 ms | 0.4x |`);
    const older = results({ metricsCost: [{ method: 'task_arithmetic', off, on: figure('task_arithmetic', 800, 0.1) }] });
    expect(renderMarkdown(older)).toContain('| 100 ms | 800 ms | 8x | - | - | - | - | - | - |');
  });
  it('marks breakdown parts smaller than the run-to-run spread', () => {
    const md = renderMarkdown(results());
    expect(md).toContain('| output read back + safetensors writer | 100 ms | 10% (within the spread) | 151 ms |');
    expect(md).toContain('| fused kernel (linear_merge: decode, combine, encode, non-finite flags) | 790 ms | 79% | 2.0 ms |');
  });
  it('formats times, significant digits and adapter labels', () => {
    expect(fmtMs(1234)).toBe('1.23 s');
    expect(fmtMs(12.34)).toBe('12.3 ms');
    expect(sig(0.0123456)).toBe('0.0123');
    expect(adapterSlug('google/swiftshader/SwiftShader driver 5.0.0')).toBe('swiftshader');
    expect(adapterSlug('nvidia/hopper/NVIDIA H100 80GB HBM3')).toBe('nvidia-hopper-nvidia-h100-80gb-hbm3');
  });
});
