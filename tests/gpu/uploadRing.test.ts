/**
 * UploadRing (src/engine/gpu/uploadRing.ts): uploads of changing sizes through a ring of mapped staging buffers land
 * byte for byte at their destinations, in queue order with kernels that read the destination in between; a slot grows
 * when an upload outgrows it; an upload abandoned before its commit leaves the slot usable; destroy frees every
 * staging buffer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, scaleAdd } from '../../src/engine/gpu/kernels';
import { UploadRing } from '../../src/engine/gpu/uploadRing';
import { rngKey, rngU32 } from '../../src/engine/rng';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

function randomBytes(seed: number, n: number): Uint8Array {
  const key = rngKey(seed, 0, 0);
  return Uint8Array.from({ length: n }, (_, i) => rngU32(key, i) & 0xff);
}

describe('UploadRing', () => {
  it('delivers uploads of changing sizes in order, growing slots as needed', async () => {
    const before = ctx.allocatedBytes;
    const ring = new UploadRing(ctx, 'test upload', 2);
    const dst = ctx.createBuffer('dst', 1 << 16, testUsage());
    const sizes = [64, 4096, 16, 65536, 1024, 40000, 8];
    for (let i = 0; i < sizes.length; i++) {
      const bytes = randomBytes(i + 1, sizes[i]!);
      const up = await ring.begin(bytes.byteLength);
      expect(up.view.byteLength).toBeGreaterThanOrEqual(bytes.byteLength);
      up.view.set(bytes);
      up.commit(dst, 0, bytes.byteLength);
      expect(await readBuffer(ctx, dst, bytes.byteLength)).toEqual(bytes);
    }
    ring.destroy();
    ctx.destroyBuffer(dst);
    expect(ctx.allocatedBytes).toBe(before);
  });

  it('orders a copy after kernels submitted before it that read the destination', async () => {
    const ring = new UploadRing(ctx, 'test upload', 3);
    const n = 1024;
    const dst = ctx.createBuffer('dst', n * 4, testUsage());
    const acc = ctx.createBuffer('acc', n * 4, testUsage());
    ctx.device.queue.writeBuffer(acc, 0, new Float32Array(n));
    // acc += dst after each of three uploads of 1, 2, 3 everywhere: acc ends at 6 only if no copy overtakes a kernel.
    for (const v of [1, 2, 3]) {
      const up = await ring.begin(n * 4);
      new Float32Array(up.view.buffer, up.view.byteOffset, n).fill(v);
      up.commit(dst, 0, n * 4);
      scaleAdd(ctx, acc, 1, 1, dst, n);
    }
    const out = new Float32Array((await readBuffer(ctx, acc, n * 4)).slice().buffer);
    expect(Array.from(new Set(out))).toEqual([6]);
    ring.destroy();
    ctx.destroyBuffer(dst);
    ctx.destroyBuffer(acc);
  });

  it('keeps working after an upload was abandoned before its commit', async () => {
    const ring = new UploadRing(ctx, 'test upload', 1);
    const dst = ctx.createBuffer('dst', 256, testUsage());
    const abandoned = await ring.begin(256);
    abandoned.view.fill(0xee);
    const bytes = randomBytes(99, 256);
    const up = await ring.begin(256);
    up.view.set(bytes);
    up.commit(dst, 0, 256);
    expect(await readBuffer(ctx, dst, 256)).toEqual(bytes);
    ring.destroy();
    ctx.destroyBuffer(dst);
  });
});
