/**
 * The copy kernels of the bandwidth probe copy exactly their bytes, whatever the variant: a probe whose kernel skipped
 * or repeated part of the buffer would report a bandwidth the device never reached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKGROUP_SIZE } from '../../src/engine/gpu/constants';
import { GpuContext } from '../../src/engine/gpu/device';
import { readBuffer, uploadRaw } from '../../src/engine/gpu/kernels';
import { nodeGpu } from '../../src/platform/nodeGpu';
import { COPY_VARIANTS, copyLauncher } from '../probes';

describe('copy probe kernels', () => {
  let ctx: GpuContext;
  beforeAll(async () => {
    ctx = await GpuContext.create(await nodeGpu(), { label: 'copy probe test' });
  });
  afterAll(() => ctx?.destroy());

  // Three workgroups' worth of the widest variant plus a tail of 5 of its threads, so the last workgroup is partial.
  const bytes = (3 * WORKGROUP_SIZE + 5) * 64;
  const sentinel = 0xa5a5a5a5;

  for (const variant of COPY_VARIANTS) {
    it(`${variant} copies the first ${bytes} bytes and nothing beyond them`, async () => {
      const words = new Uint32Array(bytes / 4 + 64);
      let s = 0x9e3779b9;
      for (let i = 0; i < words.length; i++) words[i] = s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const src = uploadRaw(ctx, 'copy test src', new Uint8Array(words.buffer));
      const dst = uploadRaw(ctx, 'copy test dst', new Uint8Array(new Uint32Array(words.length).fill(sentinel).buffer));
      const copy = copyLauncher(ctx, variant, src, dst, bytes);
      try {
        copy.launch();
        const got = new Uint32Array((await readBuffer(ctx, dst, words.byteLength)).buffer);
        expect(got.subarray(0, bytes / 4)).toEqual(words.subarray(0, bytes / 4));
        expect([...got.subarray(bytes / 4)].every((w) => w === sentinel)).toBe(true);
      } finally {
        copy.destroy();
        ctx.destroyBuffer(src);
        ctx.destroyBuffer(dst);
      }
    });
  }

  it('refuses a size that is not a whole number of threads', () => {
    const buf = uploadRaw(ctx, 'copy test', new Uint8Array(256));
    try {
      expect(() => copyLauncher(ctx, 'vec4x4', buf, buf, 48)).toThrow(/48 bytes is not a whole number of vec4x4 threads/);
    } finally {
      ctx.destroyBuffer(buf);
    }
  });
});
