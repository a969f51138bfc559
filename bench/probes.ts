/**
 * Physical-limit probes, measured in the same run as the merges: the device's achievable bandwidth (the fastest of
 * three buffer-copy kernels, bench/copy.wgsl), the engine's host transfers (UploadRing; StagingReader, and readBuffer
 * with a fresh staging buffer) and copyBufferToBuffer for context, and the peak of the engine's matmul kernel (src/engine/gpu/matmul.ts) at a large
 * square size. Each probe runs a batch of iterations long enough to time with the wall clock, once to warm up and then
 * `reps` times; the figure is the median per-iteration time.
 */
import { shaderPrelude } from '../src/engine/gpu/shaders';
import type { GpuContext } from '../src/engine/gpu/device';
import { workgroupGrid } from '../src/engine/gpu/dispatch';
import { WORKGROUP_SIZE } from '../src/engine/gpu/constants';
import { combine, readBuffer, StagingReader, uploadRaw } from '../src/engine/gpu/kernels';
import { UploadRing } from '../src/engine/gpu/uploadRing';
import { matmul } from '../src/engine/gpu/matmul';
import { gbPerSecond, median } from './stats';
import copyWgsl from './copy.wgsl?raw';

/** One probe's result. */
export interface ProbeResult {
  name: string;
  /** What one iteration moves or computes, in words. */
  what: string;
  /** Median milliseconds per iteration, and the iterations per timed batch. */
  msPerIteration: number;
  iterations: number;
  reps: number;
  /** GB/s (bandwidth probes: bytes read + bytes written), GFLOP/s (matmul) or launches/s. */
  rate: number;
  unit: 'GB/s' | 'GFLOP/s' | 'launches/s';
}

/** How long one timed batch should last at least, and how many batches to time. */
export interface ProbeSettings {
  minBatchMs: number;
  reps: number;
}

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Times `iteration` (which submits GPU work) in batches that end with the queue drained. */
async function timeBatches(ctx: GpuContext, s: ProbeSettings, iteration: () => Promise<void> | void): Promise<{ ms: number; iterations: number }> {
  const drained = async (n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await iteration();
    await ctx.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  const first = await drained(1);
  const iterations = Math.max(1, Math.min(1000, Math.ceil(s.minBatchMs / Math.max(first, 1e-3))));
  const runs: number[] = [];
  for (let r = 0; r < s.reps; r++) runs.push((await drained(iterations)) / iterations);
  return { ms: median(runs), iterations };
}

const copyPipelines = new WeakMap<GpuContext, Map<string, GPUComputePipeline>>();

/** The copy kernels: copy_vec4 with 1, 2 or 4 vec4s per thread (pipeline constant VEC4S), copy_f32 with one f32. */
export const COPY_VARIANTS = ['vec4', 'vec4x2', 'vec4x4', 'f32'] as const;
export type CopyVariant = (typeof COPY_VARIANTS)[number];
/** Bytes one thread of each variant copies (copy_vec4's VEC4S is this over 16). */
const THREAD_BYTES: Record<CopyVariant, number> = { vec4: 16, vec4x2: 32, vec4x4: 64, f32: 4 };

function copyPipeline(ctx: GpuContext, variant: CopyVariant): GPUComputePipeline {
  let map = copyPipelines.get(ctx);
  if (!map) copyPipelines.set(ctx, (map = new Map()));
  let p = map.get(variant);
  if (!p) {
    const module = ctx.device.createShaderModule({ label: 'bench copy', code: `${shaderPrelude()}${copyWgsl}` });
    const compute: GPUProgrammableStage = variant === 'f32' ? { module, entryPoint: 'copy_f32' } : { module, entryPoint: 'copy_vec4', constants: { VEC4S: THREAD_BYTES[variant] / 16 } };
    p = ctx.device.createComputePipeline({ label: `copy ${variant}`, layout: 'auto', compute });
    map.set(variant, p);
  }
  return p;
}

/**
 * A launcher of copy kernel `variant` from `src` to `dst` over their first `bytes` (a whole number of the variant's
 * threads): each launch() records and submits one dispatch. destroy() frees its parameter buffer.
 */
export function copyLauncher(ctx: GpuContext, variant: CopyVariant, src: GPUBuffer, dst: GPUBuffer, bytes: number): { launch: () => void; destroy: () => void } {
  const threads = bytes / THREAD_BYTES[variant];
  if (!Number.isInteger(threads)) throw new Error(`copy probe: ${bytes} bytes is not a whole number of ${variant} threads`);
  // The kernel's count: f32 elements for copy_f32, vec4s for copy_vec4.
  const count = variant === 'f32' ? threads : bytes / 16;
  const pipeline = copyPipeline(ctx, variant);
  const params = ctx.createBuffer('probe params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  ctx.device.queue.writeBuffer(params, 0, new Uint32Array([count, 0, 0, 0]));
  const first = variant === 'f32' ? 3 : 1;
  const bindGroup = ctx.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: first, resource: { buffer: src, size: bytes } },
      { binding: first + 1, resource: { buffer: dst, size: bytes } },
    ],
  });
  const grid = workgroupGrid(Math.ceil(threads / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension);
  return {
    launch: () => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(grid.x, grid.y);
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    },
    destroy: () => ctx.destroyBuffer(params),
  };
}

/** The copy kernel over `bytes` (a multiple of 64): each iteration reads and writes `bytes`. */
export async function copyKernelProbe(ctx: GpuContext, bytes: number, variant: CopyVariant, s: ProbeSettings): Promise<ProbeResult> {
  const src = ctx.createBuffer('probe src', bytes, storage());
  const dst = ctx.createBuffer('probe dst', bytes, storage());
  let copy: ReturnType<typeof copyLauncher> | null = null;
  try {
    copy = copyLauncher(ctx, variant, src, dst, bytes);
    const t = await timeBatches(ctx, s, copy.launch);
    const by = variant === 'f32' ? 'copy_f32' : `copy_vec4 (${THREAD_BYTES[variant] / 16} vec4 per thread)`;
    return bandwidth(`copy kernel (${variant})`, `${mib(bytes)} read + ${mib(bytes)} written by ${by}`, 2 * bytes, t, s.reps);
  } finally {
    copy?.destroy();
    ctx.destroyBuffer(src);
    ctx.destroyBuffer(dst);
  }
}

/** copyBufferToBuffer of `bytes`: each iteration reads and writes `bytes`. */
export async function copyBufferProbe(ctx: GpuContext, bytes: number, s: ProbeSettings): Promise<ProbeResult> {
  const src = ctx.createBuffer('probe src', bytes, storage());
  const dst = ctx.createBuffer('probe dst', bytes, storage());
  try {
    const t = await timeBatches(ctx, s, () => {
      const enc = ctx.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
      ctx.device.queue.submit([enc.finish()]);
    });
    return bandwidth('copyBufferToBuffer', `${mib(bytes)} read + ${mib(bytes)} written`, 2 * bytes, t, s.reps);
  } finally {
    ctx.destroyBuffer(src);
    ctx.destroyBuffer(dst);
  }
}

/**
 * The engine's upload path for merges: bytes written into a mapped staging buffer of UploadRing (the ring RawUploader
 * uses, 4 slots) and copied to a storage buffer, `chunkBytes` per iteration.
 */
export async function uploadProbe(ctx: GpuContext, chunkBytes: number, s: ProbeSettings): Promise<ProbeResult> {
  const data = new Uint8Array(chunkBytes).fill(1);
  const ring = new UploadRing(ctx, 'probe upload', 4);
  const dst = ctx.createBuffer('probe upload target', chunkBytes, storage());
  try {
    const t = await timeBatches(ctx, s, async () => {
      const up = await ring.begin(chunkBytes);
      up.view.set(data);
      up.commit(dst, 0, chunkBytes);
    });
    return bandwidth('upload (UploadRing)', `${mib(chunkBytes)} host -> GPU`, chunkBytes, t, s.reps);
  } finally {
    ring.destroy();
    ctx.destroyBuffer(dst);
  }
}

/**
 * The readback path of a merge's output: StagingReader (staging copy + mapAsync + copy out, its staging buffer reused
 * from one read to the next, as FusedOutput and StackOutput read their chunks) of `chunkBytes`.
 */
export async function readbackProbe(ctx: GpuContext, chunkBytes: number, s: ProbeSettings): Promise<ProbeResult> {
  const buf = ctx.createBuffer('probe readback', chunkBytes, storage());
  const reader = new StagingReader(ctx, 'probe readback');
  try {
    const t = await timeBatches(ctx, s, async () => void (await reader.start(ctx.device.createCommandEncoder(), [{ buffer: buf, bytes: chunkBytes }])()));
    return bandwidth('readback (StagingReader)', `${mib(chunkBytes)} GPU -> host, staging reused`, chunkBytes, t, s.reps);
  } finally {
    reader.destroy();
    ctx.destroyBuffer(buf);
  }
}

/** readBuffer's readback of `chunkBytes` (a fresh staging buffer per read, as the engine's one-off reads make). */
export async function freshReadbackProbe(ctx: GpuContext, chunkBytes: number, s: ProbeSettings): Promise<ProbeResult> {
  const buf = ctx.createBuffer('probe readback', chunkBytes, storage());
  try {
    const t = await timeBatches(ctx, s, async () => void (await readBuffer(ctx, buf, chunkBytes)));
    return bandwidth('fresh readback (readBuffer)', `${mib(chunkBytes)} GPU -> host, a new staging buffer each time`, chunkBytes, t, s.reps);
  } finally {
    ctx.destroyBuffer(buf);
  }
}

/**
 * The fixed cost of one small kernel launch as the engine makes it (combine of 8 rows x 4096 elements: a parameter
 * buffer, a bind group, one submit) followed by waiting for the queue: the per-dispatch overhead a merge pays per
 * kernel, whatever the tensor size.
 */
export async function launchProbe(ctx: GpuContext, s: ProbeSettings): Promise<ProbeResult> {
  const rows = 8;
  const numel = 4096;
  const stack = ctx.createBuffer('probe stack', rows * numel * 4, storage());
  const out = ctx.createBuffer('probe out', numel * 4, storage());
  const coeffs = new Float32Array(rows).fill(0.3);
  try {
    const t = await timeBatches(ctx, s, async () => {
      combine(ctx, stack, rows, numel, coeffs, out);
      await ctx.device.queue.onSubmittedWorkDone();
    });
    return { name: 'kernel launch + wait', what: `combine ${rows} x ${numel}, then onSubmittedWorkDone`, msPerIteration: t.ms, iterations: t.iterations, reps: s.reps, rate: 1000 / t.ms, unit: 'launches/s' };
  } finally {
    ctx.destroyBuffer(stack);
    ctx.destroyBuffer(out);
  }
}

/** The engine's matmul kernel on n x n x n f32 matrices: 2 n^3 floating-point operations per iteration. */
export async function matmulProbe(ctx: GpuContext, n: number, s: ProbeSettings): Promise<ProbeResult> {
  const bytes = n * n * 4;
  const values = new Float32Array(n * n);
  for (let i = 0; i < values.length; i++) values[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const upload = (label: string) => uploadRaw(ctx, label, new Uint8Array(values.buffer));
  const a = upload('probe A');
  const b = upload('probe B');
  const c = ctx.createBuffer('probe C', bytes, storage());
  try {
    const t = await timeBatches(ctx, s, () => matmul(ctx, a, b, c, { m: n, n, k: n }));
    const flops = 2 * n ** 3;
    return { name: 'matmul (src/engine/gpu/matmul.ts)', what: `${n}x${n}x${n} f32`, msPerIteration: t.ms, iterations: t.iterations, reps: s.reps, rate: flops / t.ms / 1e6, unit: 'GFLOP/s' };
  } finally {
    for (const x of [a, b, c]) ctx.destroyBuffer(x);
  }
}

function bandwidth(name: string, what: string, bytes: number, t: { ms: number; iterations: number }, reps: number): ProbeResult {
  return { name, what, msPerIteration: t.ms, iterations: t.iterations, reps, rate: gbPerSecond(bytes, t.ms), unit: 'GB/s' };
}

function mib(bytes: number): string {
  return `${+(bytes / 2 ** 20).toFixed(1)} MiB`;
}
