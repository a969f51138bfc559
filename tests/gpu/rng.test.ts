/**
 * The WGSL RNG (shaders/common.wgsl) against src/engine/rng.ts, bit for bit, through a test-only kernel built
 * the way src/engine/gpu/shaders.ts builds every kernel: its prelude (constants + common.wgsl) + the kernel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shaderPrelude } from '../../src/engine/gpu/shaders';
import type { GpuContext } from '../../src/engine/gpu/device';
import { itemGrid } from '../../src/engine/gpu/dispatch';
import { readBuffer } from '../../src/engine/gpu/kernels';
import { rngKey, rngU32, rngUniform, stringId } from '../../src/engine/rng';
import { releaseTestContext, testContext, testUsage } from '../helpers/gpu';

// out[2i] = rng_u32(key, first + i), out[2i + 1] = bits of rng_uniform(key, first + i), for i < count.
const RNG_PROBE = `
struct Params { key: u32, first: u32, count: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= params.count) {
    return;
  }
  let index = params.first + i;
  out[2u * i] = rng_u32(params.key, index);
  out[2u * i + 1u] = bitcast<u32>(rng_uniform(params.key, index));
}
`;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** Runs the probe kernel and returns its output words. */
async function gpuRng(key: number, first: number, count: number): Promise<Uint32Array> {
  const { device } = ctx;
  const module = device.createShaderModule({ label: 'rng probe', code: `${shaderPrelude()}${RNG_PROBE}` });
  const pipeline = device.createComputePipeline({ label: 'rng probe', layout: 'auto', compute: { module, entryPoint: 'main' } });
  const params = ctx.createBuffer('rng params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  const out = ctx.createBuffer('rng out', count * 8, testUsage());
  await ctx.scoped('rng probe', () => {
    device.queue.writeBuffer(params, 0, new Uint32Array([key, first, count, 0]));
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: out } },
      ],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const grid = itemGrid(count, ctx.info.limits.maxComputeWorkgroupsPerDimension);
    pass.dispatchWorkgroups(grid.x, grid.y);
    pass.end();
    device.queue.submit([encoder.finish()]);
  });
  const bytes = await readBuffer(ctx, out, count * 8);
  ctx.destroyBuffer(params);
  ctx.destroyBuffer(out);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, count * 2);
}

describe('WGSL rng_u32 / rng_uniform', () => {
  const keys = [rngKey(0, 0, 0), rngKey(42, 1, stringId('vision_model.encoder.layers.0.mlp.fc1.weight')), 0xffffffff];
  const ranges = [
    { first: 0, count: 100_000 },
    { first: 2 ** 32 - 50_000, count: 50_000 }, // the top of the u32 index range
  ];

  it.each(keys)('matches src/engine/rng.ts bit for bit under key %i', async (key) => {
    for (const { first, count } of ranges) {
      const words = await gpuRng(key, first, count);
      const uniforms = new Float32Array(words.buffer, words.byteOffset, words.length);
      const mismatches: string[] = [];
      for (let i = 0; i < count && mismatches.length < 5; i++) {
        const index = first + i;
        if (words[2 * i] !== rngU32(key, index)) mismatches.push(`rng_u32 @${index}: gpu ${words[2 * i]} cpu ${rngU32(key, index)}`);
        if (uniforms[2 * i + 1] !== rngUniform(key, index)) {
          mismatches.push(`rng_uniform @${index}: gpu ${uniforms[2 * i + 1]} cpu ${rngUniform(key, index)}`);
        }
      }
      expect(mismatches).toEqual([]);
    }
  });
});
