/** The WebGPU runtime: limits, features, labels, error scopes, buffer accounting, device loss, dispatch grids. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GpuError } from '../../src/engine/errors';
import { GpuContext, GpuRuntime } from '../../src/engine/gpu/device';
import { itemGrid, workgroupGrid } from '../../src/engine/gpu/dispatch';
import { combine, packAdd, readBuffer, sumSquares, taskVector, unpack, uploadRaw } from '../../src/engine/gpu/kernels';
import { browserGpu } from '../../src/platform/browserGpu';
import { nodeGpu, nodeGpuAvailable } from '../../src/platform/nodeGpu';
import { emptyF32, readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';

const KERNELS = ['unpack', 'task_vector', 'combine', 'pack_add', 'sum_squares'];
const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
] as const;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('GpuContext.create', () => {
  it("requests the adapter's maximum for every limit the engine uses", async () => {
    const adapter = await (await nodeGpu()).requestAdapter({ powerPreference: 'high-performance' });
    expect(adapter).not.toBeNull();
    for (const name of LIMITS) {
      expect(ctx.device.limits[name], name).toBe(adapter!.limits[name]);
      expect(ctx.info.limits[name], name).toBe(adapter!.limits[name]);
    }
  });

  it('describes the adapter and reports shader-f16 as the device has it', async () => {
    expect(ctx.info.adapter.length).toBeGreaterThan(0);
    expect(ctx.info.hasF16).toBe(ctx.device.features.has('shader-f16'));
    const noF16 = await GpuContext.create(await nodeGpu(), { disableF16: true });
    expect(noF16.info.hasF16).toBe(false);
    expect(noF16.device.features.has('shader-f16')).toBe(false);
    noF16.destroy();
  });

  it("fails with GpuError('unavailable') when there is no adapter", async () => {
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    const err = await rejection(GpuContext.create(noAdapter));
    expect(err).toBeInstanceOf(GpuError);
    expect((err as GpuError).kind).toBe('unavailable');
    expect((err as GpuError).message).toMatch(/No WebGPU adapter/);
  });
});

describe('labels and pipelines', () => {
  it('labels the device, buffers and pipelines', () => {
    expect(ctx.device.label).toBe('test device');
    const buf = ctx.createBuffer('my weights', 16, GPUBufferUsage.STORAGE);
    expect(buf.label).toBe('my weights');
    ctx.destroyBuffer(buf);
    for (const kernel of KERNELS) expect(ctx.pipeline(kernel).label).toBe(kernel);
  });

  it('compiles every kernel without errors and caches its pipeline', async () => {
    for (const kernel of KERNELS) {
      const first = await ctx.scoped(`compile ${kernel}`, () => ctx.pipeline(kernel));
      expect(ctx.pipeline(kernel)).toBe(first);
    }
  });
});

describe('scoped', () => {
  it('turns a validation error into a GpuError naming the label', async () => {
    const err = await rejection(
      ctx.scoped('make bad buffer', () => ctx.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE })),
    );
    expect(err).toBeInstanceOf(GpuError);
    expect((err as GpuError).kind).toBe('validation');
    expect((err as GpuError).message).toMatch(/^make bad buffer: /);
  });

  it("rethrows fn's own error and leaves the device's scope stack balanced", async () => {
    await expect(ctx.scoped('throws', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(ctx.scoped('fine', () => 42)).resolves.toBe(42);
    // Every scope pushed was popped: one more pop finds the stack empty.
    await expect(ctx.device.popErrorScope()).rejects.toThrow();
  });
});

describe('buffer accounting', () => {
  it('rounds sizes up to whole 16-byte quads and tracks live and peak bytes', () => {
    const base = ctx.allocatedBytes;
    ctx.resetPeak();
    const a = ctx.createBuffer('a', 5, GPUBufferUsage.STORAGE);
    const b = ctx.createBuffer('b', 100, GPUBufferUsage.STORAGE);
    expect(a.size).toBe(16);
    expect(b.size).toBe(112);
    expect(ctx.allocatedBytes).toBe(base + 128);
    ctx.destroyBuffer(a);
    expect(ctx.allocatedBytes).toBe(base + 112);
    expect(ctx.peakBytes).toBe(base + 128);
    ctx.destroyBuffer(b);
    expect(ctx.allocatedBytes).toBe(base);
  });

  it('refuses a buffer over maxBufferSize, naming it', () => {
    expect(() => ctx.createBuffer('huge', ctx.info.limits.maxBufferSize + 4, GPUBufferUsage.STORAGE)).toThrow(/huge/);
  });

  it('returns to the baseline after every kernel and readback', async () => {
    const numel = 1001;
    const baseline = ctx.allocatedBytes;
    const raw = uploadRaw(ctx, 'raw', new Uint8Array(numel * 2));
    const base = uploadF32(ctx, 'base', new Float32Array(numel).fill(1));
    const stack = emptyF32(ctx, 'stack', 3 * numel);
    const merged = emptyF32(ctx, 'merged', numel);
    const packed = emptyF32(ctx, 'packed', numel);
    const withInputs = ctx.allocatedBytes;
    await ctx.scoped('all kernels', async () => {
      unpack(ctx, raw, 'F16', numel, merged);
      for (let row = 0; row < 3; row++) taskVector(ctx, raw, 'BF16', base, numel, stack, row);
      combine(ctx, stack, 3, numel, new Float32Array([1, 2, 3]), merged);
      packAdd(ctx, base, merged, numel, 'F16', packed);
      await sumSquares(ctx, stack, 3, numel);
      await readBuffer(ctx, packed, 10);
    });
    expect(ctx.allocatedBytes).toBe(withInputs);
    // 0 - 1 in each row, times 1 + 2 + 3, plus 1.
    expect(Array.from(await readF32(ctx, merged, 2))).toEqual([-6, -6]);
    [raw, base, stack, merged, packed].forEach((b) => ctx.destroyBuffer(b));
    expect(ctx.allocatedBytes).toBe(baseline);
  });
});

describe('device loss', () => {
  it('makes the lost context throw and the runtime create a fresh working device', async () => {
    const onLost = vi.fn();
    const runtime = new GpuRuntime(await nodeGpu(), { label: 'runtime device', onLost });
    const first = await runtime.context();
    expect(await runtime.context()).toBe(first);
    first.device.destroy();
    await first.device.lost;
    expect(first.lostReason).not.toBeNull();
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(() => first.createBuffer('x', 4, GPUBufferUsage.STORAGE)).toThrow(expect.objectContaining({ kind: 'device-lost' }));

    const second = await runtime.context();
    expect(second).not.toBe(first);
    expect(second.lostReason).toBeNull();
    const raw = uploadRaw(second, 'raw', new Uint8Array([0x00, 0x3c, 0x00, 0xc0])); // f16 1, -2
    const out = second.createBuffer('out', 8, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    await second.scoped('unpack on the new device', () => unpack(second, raw, 'F16', 2, out));
    const bytes = await readBuffer(second, out, 8);
    expect(Array.from(new Float32Array(bytes.buffer))).toEqual([1, -2]);
    runtime.destroy();
  });

  it('does not report a loss it caused through destroy()', async () => {
    const onLost = vi.fn();
    const own = await GpuContext.create(await nodeGpu(), { onLost });
    own.destroy();
    await own.device.lost;
    expect(onLost).not.toHaveBeenCalled();
    expect(() => own.pipeline('unpack')).toThrow(GpuError);
  });
});

describe('dispatch grids', () => {
  it('spreads workgroups over x then y within the per-dimension limit', () => {
    expect(workgroupGrid(1, 65535)).toEqual({ x: 1, y: 1 });
    expect(workgroupGrid(65536, 65535)).toEqual({ x: 65535, y: 2 });
    expect(workgroupGrid(10, 4)).toEqual({ x: 4, y: 3 });
    expect(itemGrid(65535 * 256 + 1, 65535)).toEqual({ x: 65535, y: 2 });
    expect(() => workgroupGrid(17, 4)).toThrow(GpuError);
  });
});

describe('platform', () => {
  it('finds a Node adapter here and no browser GPU in Node', async () => {
    expect(await nodeGpuAvailable()).toBe(true);
    expect(browserGpu()).toBeNull();
  });

  it("returns the browser's navigator.gpu when there is one", () => {
    const fake = {} as GPU;
    vi.stubGlobal('navigator', { gpu: fake });
    try {
      expect(browserGpu()).toBe(fake);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
