/**
 * The suite end to end on this machine's adapter (SwiftShader without a GPU) with a tiny profile, and the GPU
 * machine's script run here: every section is filled, the ratios are computed from figures of the same run, and the
 * files are written.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuContext } from '../../src/engine/gpu/device';
import { nodeGpu } from '../../src/platform/nodeGpu';
import { HOST_PARTS } from '../hostProfile';
import { renderResults, writeResults } from '../output';
import { PROFILES, type Profile } from '../profiles';
import type { BenchResults } from '../results';
import { median } from '../stats';
import { BATCH_METHODS, runSuite } from '../suite';
import { parameterCount, vitTensors } from '../vitShapes';

const profile: Profile = {
  ...PROFILES.smoke!,
  name: 'test',
  budgetMs: 10 * 60_000,
  acceptance: { ...PROFILES.smoke!.acceptance, tasks: 2 },
  matrix: { ...PROFILES.smoke!.matrix, tasks: [2], dtypes: ['F32'] },
  metricsCost: { tasks: 2, methods: ['task_arithmetic'] },
  reference: { ...PROFILES.smoke!.reference, tasks: 2 },
};

describe('runSuite', () => {
  let ctx: GpuContext;
  let r: BenchResults;
  const snapshots: BenchResults[] = [];
  beforeAll(async () => {
    ctx = await GpuContext.create(await nodeGpu(), { label: 'bench test' });
    const checkpoint = async (s: BenchResults) => void snapshots.push(s);
    r = await runSuite(ctx, { profile, python: ['python3', '/usr/bin/python3'], torchScript: 'bench/torch_merge.py', log: () => undefined, checkpoint });
  });
  afterAll(() => ctx?.destroy());

  it('measures the probes and divides by the fastest copy kernel and the matmul peak', () => {
    expect(r.probes.map((p) => p.name)).toEqual([
      'copy kernel (vec4)', 'copy kernel (vec4x2)', 'copy kernel (vec4x4)', 'copy kernel (f32)', 'copyBufferToBuffer', 'upload (UploadRing)', 'readback (StagingReader)', 'fresh readback (readBuffer)',
      'kernel launch + wait', 'matmul (src/engine/gpu/matmul.ts)',
    ]);
    for (const p of r.probes) expect(p.rate, p.name).toBeGreaterThan(0);
    const copies = r.probes.slice(0, 4);
    expect(r.copyGBs).toBe(Math.max(...copies.map((p) => p.rate)));
    expect(r.copyKernel).toBe(copies.find((p) => p.rate === r.copyGBs)!.name);
    expect(r.matmulGflops).toBe(r.probes.at(-1)!.rate);
  });

  it('takes the acceptance figures and their ratio from the same run', () => {
    const { taskArithmetic: ta, ties, tiesOverTa, breakdown } = r.acceptance;
    expect(ta!.method).toBe('task_arithmetic');
    expect(tiesOverTa).toBeCloseTo(ties!.timing.ms / ta!.timing.ms, 12);
    expect(ta!.fractionOfCopy).toBeCloseTo(ta!.effectiveGBs / r.copyGBs, 12);
    const modelBytes = parameterCount(vitTensors(profile.acceptance.size)) * 4;
    // Inputs (base + 2 models) and one written model with its header.
    const header = ta!.bytesMoved - 4 * modelBytes;
    expect(header).toBeGreaterThan(0);
    expect(header).toBeLessThan(2 ** 16);
    expect(ties!.passes.map((p) => p.phase)).toEqual(['TIES statistics', 'merge']);
    const paired = r.acceptance.paired!;
    expect(paired.ratios).toHaveLength(profile.acceptance.repeats.reps);
    paired.ratios.forEach((x, i) => expect(x).toBeCloseTo(paired.taGBs[i]! / paired.copyGBs[i]!, 12));
    expect(paired.tiesRatios).toHaveLength(profile.acceptance.repeats.reps);
    paired.tiesRatios!.forEach((x, i) => expect(x).toBeCloseTo(paired.tiesMs![i]! / paired.taMs![i]!, 12));
    expect(paired.tiesOverTa).toBe(median(paired.tiesRatios!));
    // Task Arithmetic with resident inputs, in the same pairs: the same bytes over its own time.
    expect(paired.residentRatios).toHaveLength(profile.acceptance.repeats.reps);
    paired.residentRatios!.forEach((x, i) => expect(x).toBeCloseTo(paired.residentGBs![i]! / paired.copyGBs[i]!, 12));
    paired.residentMs!.forEach((ms, i) => expect(paired.residentGBs![i]! / paired.taGBs[i]!).toBeCloseTo(paired.taMs![i]! / ms, 9));
    expect(paired.residentFraction).toBe(median(paired.residentRatios!));
    expect(breakdown!.parts).toHaveLength(4);
    expect(breakdown!.parts.reduce((s, p) => s + p.ms, 0)).toBeCloseTo(breakdown!.variants.merge!, 6);
    expect(breakdown!.chunks).toBe(vitTensors(profile.acceptance.size).length);
    // The host's profile of one more merge: its parts add up to the time sampled, within the merge's.
    const host = r.acceptance.hostProfile!;
    expect(host.parts.reduce((s, p) => s + p.ms, 0)).toBeCloseTo(host.sampledMs, 6);
    expect(host.sampledMs).toBeGreaterThan(0);
    expect(host.sampledMs).toBeLessThan(host.mergeMs + 50);
    // Every part listed, measured or not (this profile's merge is a few ms: a handful of samples).
    expect(host.parts.map((p) => p.part)).toEqual([...HOST_PARTS.map((p) => p.part), 'native code (Dawn, V8 built-ins)', 'other JavaScript (the engine, the writer)']);
    expect(host.top.length).toBeGreaterThan(0);
  });

  it('runs every batch method with memory figures, and PyTorch and the CPU references on the same workloads', () => {
    expect(r.merges.map((f) => f.method)).toEqual(BATCH_METHODS);
    for (const f of r.merges) {
      expect(f.peakGpuBytes, f.method).toBeGreaterThan(0);
      expect(f.rssPeakBytes, f.method).toBeGreaterThan(0);
      expect(f.metrics).toBe(false);
    }
    const tall = r.merges.find((f) => f.method === 'tall_masks')!;
    const ta = r.merges.find((f) => f.method === 'task_arithmetic')!;
    expect(tall.bytesMoved - ta.bytesMoved).toBeGreaterThan(0.9 * (ta.bytesMoved / 4));
    expect(r.torchError).toBeNull();
    expect(r.torch.filter((t) => t.sizeLabel === ta.size.label && t.tasks === 2).map((t) => t.method)).toEqual(expect.arrayContaining(BATCH_METHODS));
    const refs = r.reference.filter((x) => x.size.label === ta.size.label);
    expect(refs.map((x) => x.method)).toEqual(expect.arrayContaining(BATCH_METHODS));
    for (const x of refs) expect(x.speedup).toBeCloseTo(x.timing.ms / x.engineMs, 12);
    expect(r.metricsCost).toHaveLength(1);
    expect(r.metricsCost[0]!.on.metrics).toBe(true);
    expect(r.metricsCost[0]!.cached?.metricsCached).toBe(true);
    expect(r.metricsCost[0]!.resident?.metricsCached).toBe(true);
    expect(r.metricsCost[0]!.resident?.residentInputs).toBe(true);
    expect(r.metricsCost[0]!.cached?.residentInputs).toBeUndefined();
    expect(r.metricsCost[0]!.offResident?.metrics).toBe(false);
    expect(r.metricsCost[0]!.offResident?.metricsCached).toBe(true);
    expect(r.metricsCost[0]!.offResident?.residentInputs).toBe(true);
    expect(r.skipped).toEqual([]);
    expect(r.notMeasured.length).toBeGreaterThan(0);
  });

  it('times one OPCM step on the GPU against the twin and PyTorch, and evaluation throughput on both paths', () => {
    expect(r.opcm).toHaveLength(1);
    const o = r.opcm![0]!;
    expect(o.gpu.projected).toBe(o.linearWeights.reduce((n, s) => n + s.count, 0));
    expect(o.gpu.peakGpuBytes).toBeGreaterThan(0);
    // On this CPU-emulated adapter the step is timed with its SVDs on the host (the default there), then with the
    // GPU's Jacobi SVDs, same-shape ones batched; only those report sweeps and a work count.
    expect(o.gpu.svd).toBe('host');
    expect(o.gpu.sweeps).toBeUndefined();
    expect(o.gpuOtherSvd!.svd).toBe('gpu');
    expect(o.gpuOtherSvd!.svdBatchBytes).toBe(256 * 2 ** 20);
    expect(o.gpuOtherSvd!.sweeps!.length).toBe(o.gpu.projected);
    expect(o.gpuOtherSvd!.timing.runs).toHaveLength(profile.opcm[0]!.repeats.reps);
    expect(o.gpuOtherBatching).toBeUndefined();
    expect(o.twin!.timing.ms).toBeGreaterThan(0);
    expect(o.torch!.svdMs).toBeGreaterThan(0);
    expect(o.torch!.svdMs).toBeLessThanOrEqual(o.torch!.ms);
    expect(r.evaluation!.map((e) => e.workload)).toEqual([expect.stringMatching(/^demo suite/), expect.stringMatching(/^random ViT-B\/32/)]);
    for (const e of r.evaluation!) {
      expect(e.gpu.imagesPerSecond, e.workload).toBeCloseTo(e.images / (e.gpu.timing.ms / 1000), 9);
      expect(e.gpu.fractionOfMatmul, e.workload).toBeCloseTo(e.gpu.gflops / r.matmulGflops, 9);
      expect(e.twin!.images, e.workload).toBeGreaterThan(0);
    }
    const demo = r.evaluation![0]!;
    expect(demo.images).toBe(8 * profile.evaluation!.demoSamples);
    expect(demo.agreement).toEqual({ compared: 8 * profile.evaluation!.demoTwinImages, same: 8 * profile.evaluation!.demoTwinImages });
    expect(r.notMeasured.map((n) => n.what).join(' ')).not.toMatch(/evaluation/);
  });

  it('hands a snapshot marked incomplete to the checkpoint before each workload, and a finished result without the mark', async () => {
    expect(snapshots[0]!.incomplete).toMatch(/^\[\d+ s\] probes$/);
    expect(snapshots[0]!.probes).toEqual([]);
    expect(snapshots.length).toBeGreaterThan(10);
    for (const s of snapshots) expect(s.incomplete).toMatch(/^\[\d+ s\] \S/);
    // Each snapshot holds what was measured before it: the last one has every merge, the first none.
    expect(snapshots.at(-1)!.merges.length).toBe(r.merges.length);
    expect(r.incomplete).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'bench-snapshot-'));
    const [json, md] = await writeResults(dir, snapshots[3]!);
    expect(readFileSync(md!, 'utf8')).toContain(`**Incomplete: the run was stopped before it finished.** This snapshot was written as "${snapshots[3]!.incomplete}" started`);
    // The finished results replace the snapshot under the same names, and no temporary file is left beside them.
    expect(await writeResults(dir, r)).toEqual([json, md]);
    expect(readFileSync(md!, 'utf8')).not.toContain('Incomplete');
    expect(readdirSync(dir).sort()).toEqual([json, md].map((p) => p!.slice(dir.length + 1)).sort());
  });

  it('writes JSON and markdown named by date, adapter and (non-default) profile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-'));
    const paths = await writeResults(dir, r);
    expect(paths).toHaveLength(2);
    expect(paths[0]).toMatch(/\d{4}-\d\d-\d\d-[a-z0-9-]+-test\.json$/);
    expect(JSON.parse(readFileSync(paths[0]!, 'utf8'))).toEqual(JSON.parse(JSON.stringify(r)));
    expect(readFileSync(paths[1]!, 'utf8')).toContain('## Acceptance figures');
    expect(existsSync(join(dir, 'latest.md'))).toBe(false);
    const md = readFileSync(paths[1]!, 'utf8');
    writeFileSync(paths[1]!, 'stale');
    expect(await renderResults(paths[0]!)).toEqual([paths[1]]);
    expect(readFileSync(paths[1]!, 'utf8')).toBe(md);
  });
});

describe('bench/gpu-machine.sh', () => {
  it('prepares the carried folder and runs the suite from it with the carried node binary', () => {
    execFileSync('bash', ['bench/gpu-machine.sh', 'prepare', '--no-debs'], { stdio: 'pipe' });
    for (const f of ['bench.mjs', 'node.xz', 'node_modules/webgpu/index.js', 'node_modules/webgpu/dist/linux-x64/dawn.node.gz']) {
      expect(existsSync(join('bench/.tmp/gpu', f)), f).toBe(true);
    }
    const out = mkdtempSync(join(tmpdir(), 'gpu-machine-'));
    execFileSync('bash', ['bench/gpu-machine.sh', 'run', '--profile', 'smoke', '--no-torch', '--budget-min', '0.05'], {
      stdio: 'pipe',
      env: { ...process.env, OUT: out, MP_CARRIED_NODE: '1' },
    });
    const files = readdirSync(out).sort();
    expect(files).toEqual(expect.arrayContaining(['bench-log.txt', 'gpu-machine-env.txt']));
    const json = files.find((f) => f.endsWith('-smoke.json'))!;
    const run = JSON.parse(readFileSync(join(out, json), 'utf8')) as BenchResults;
    expect(run.profile).toBe('smoke');
    expect(run.torchError).toMatch(/--no-torch/);
    expect(run.skipped.some((s) => s.reason === 'time budget')).toBe(true);
    expect(readFileSync(join(out, 'gpu-machine-env.txt'), 'utf8')).toMatch(/^node: \/tmp\/.*\/node v\d+/m);
    expect(readFileSync(join(out, 'bench-log.txt'), 'utf8')).toContain('bench: wrote');
  });
});
