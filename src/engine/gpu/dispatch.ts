/**
 * Dispatch helpers. A 1-D kernel over many elements needs more workgroups than one grid dimension allows
 * (maxComputeWorkgroupsPerDimension, 65535 on most devices), so the workgroups are spread over x and y and
 * each kernel recovers its linear index with `workgroup_index` / `flat_index` (shaders/common.wgsl).
 */
import { GpuError } from '../errors';
import { WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';

/** A 2-D grid of workgroups covering at least the requested number (the surplus must check bounds). */
export interface Grid {
  readonly x: number;
  readonly y: number;
}

/** An x-major grid of at least `workgroups` workgroups with x, y <= maxPerDimension. */
export function workgroupGrid(workgroups: number, maxPerDimension: number): Grid {
  if (!Number.isInteger(workgroups) || workgroups < 1) {
    throw new GpuError('validation', `dispatch: workgroup count must be a positive integer, got ${workgroups}`);
  }
  const x = Math.min(workgroups, maxPerDimension);
  const y = Math.ceil(workgroups / x);
  if (y > maxPerDimension) {
    throw new GpuError('validation', `dispatch: ${workgroups} workgroups exceed a ${maxPerDimension}x${maxPerDimension} grid`);
  }
  return { x, y };
}

/** Grid for a 1-D kernel with one thread per item (WORKGROUP_SIZE threads per workgroup). */
export function itemGrid(items: number, maxPerDimension: number): Grid {
  return workgroupGrid(Math.ceil(items / WORKGROUP_SIZE), maxPerDimension);
}

/**
 * Records one compute pass into `encoder`: kernel `kernel`'s pipeline (or a pipeline built with pipeline constants),
 * one bind group (group 0) whose entry i is `bindings[i]`, dispatched over `grid`. Several passes and copies can
 * share an encoder and one submit.
 */
export function encodeComputePass(
  ctx: GpuContext,
  encoder: GPUCommandEncoder,
  label: string,
  kernel: string | GPUComputePipeline,
  bindings: readonly GPUBufferBinding[],
  grid: Grid,
): void {
  const pipeline = typeof kernel === 'string' ? ctx.pipeline(kernel) : kernel;
  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((resource, binding) => ({ binding, resource })),
  });
  const pass = encoder.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(grid.x, grid.y);
  pass.end();
}

/** Encodes and submits one compute pass (see encodeComputePass). */
export function runComputePass(
  ctx: GpuContext,
  label: string,
  kernel: string | GPUComputePipeline,
  bindings: readonly GPUBufferBinding[],
  grid: Grid,
): void {
  const encoder = ctx.device.createCommandEncoder({ label });
  encodeComputePass(ctx, encoder, label, kernel, bindings, grid);
  ctx.device.queue.submit([encoder.finish({ label })]);
}
