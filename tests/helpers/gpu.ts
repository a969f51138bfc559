/**
 * GPU test helpers: one GpuContext per test file (vitest isolates modules per file) on Dawn, which uses
 * SwiftShader on machines without a GPU, plus small upload/readback helpers for f32 data.
 */
import { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, uploadRaw } from '../../src/engine/gpu/kernels';
import { nodeGpu } from '../../src/platform/nodeGpu';

let shared: Promise<GpuContext> | null = null;

/** The test file's shared context, created on first use (release it with `afterAll(releaseTestContext)`). */
export function testContext(): Promise<GpuContext> {
  shared ??= nodeGpu().then((gpu) => GpuContext.create(gpu, { label: 'test device' }));
  return shared;
}

/** Destroys the shared context, if one was created. */
export async function releaseTestContext(): Promise<void> {
  const pending = shared;
  shared = null;
  if (pending) (await pending).destroy();
}

/** Usage of every test buffer: kernels may read or write it and tests may read it back. */
export function testUsage(): GPUBufferUsageFlags {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

/** Uploads f32 values into a new storage buffer. */
export function uploadF32(ctx: GpuContext, label: string, values: Float32Array): GPUBuffer {
  return uploadRaw(ctx, label, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** A new zero-filled storage buffer for `count` f32 values. */
export function emptyF32(ctx: GpuContext, label: string, count: number): GPUBuffer {
  return ctx.createBuffer(label, count * 4, testUsage());
}

/** Reads `count` f32 values back. */
export async function readF32(ctx: GpuContext, buf: GPUBuffer, count: number): Promise<Float32Array> {
  const bytes = await readBuffer(ctx, buf, count * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, count);
}
