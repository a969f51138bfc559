/**
 * General matrix multiply on the GPU: C = alpha * op(A) op(B) + beta * C for one or a batch of row-major f32
 * matrices (shaders/matmul.wgsl), any sizes, op = identity or transpose for each of A and B, element offsets and
 * batch strides (stride 0 broadcasts one A or B). Used by the SVD, the OPCM projection and transformer inference.
 *
 * The kernel is register-blocked and barrier-free (each thread computes an 8 x 8 block of C); it reads an operand as
 * vec4s when that operand's layout allows (its contiguous direction, offset and batch stride are multiples of 4), so
 * the same buffer is bound twice, as f32s and as vec4s. The CPU twin is src/engine/reference/matmul.ts.
 */
import { GpuError } from '../errors';
import { resolveMatmul, type MatmulShape, type ResolvedMatmul } from '../reference/matmul';
import { MATMUL_TILE } from './constants';
import type { GpuContext } from './device';
import { workgroupGrid, type Grid } from './dispatch';
import { bind, f32Bits } from './launch';
import { shaderSource } from './shaders';

export type { MatmulShape } from '../reference/matmul';

const KERNEL = 'matmul';
const F32_BYTES = 4;
const VEC4_BYTES = 16;
/** params.flags bit of shaders/matmul.wgsl: beta != 0, so the old C is read. */
const READ_C = 1;

/** The kernel's override constants: which layout each operand has and whether it is read as vec4s. */
interface Variant {
  TRANS_A: boolean;
  TRANS_B: boolean;
  A_VEC4: boolean;
  B_VEC4: boolean;
}

/**
 * Pipelines of matmul.wgsl per override combination, per context. GpuContext.pipeline caches one pipeline per
 * kernel without override constants, so the variants are cached here; the module is compiled once per context.
 */
const variants = new WeakMap<GpuContext, { module: GPUShaderModule; pipelines: Map<string, GPUComputePipeline> }>();

function variantPipeline(ctx: GpuContext, v: Variant): GPUComputePipeline {
  let entry = variants.get(ctx);
  if (!entry) {
    entry = { module: ctx.device.createShaderModule({ label: KERNEL, code: shaderSource(KERNEL) }), pipelines: new Map() };
    variants.set(ctx, entry);
  }
  const key = JSON.stringify(v);
  let pipeline = entry.pipelines.get(key);
  if (!pipeline) {
    const constants = { TRANS_A: Number(v.TRANS_A), TRANS_B: Number(v.TRANS_B), A_VEC4: Number(v.A_VEC4), B_VEC4: Number(v.B_VEC4) };
    pipeline = ctx.device.createComputePipeline({ label: `${KERNEL} ${key}`, layout: 'auto', compute: { module: entry.module, entryPoint: 'main', constants } });
    entry.pipelines.set(key, pipeline);
  }
  return pipeline;
}

/** launch() for a pipeline variant: a fresh uniform parameter buffer at binding 0, then `bindings`, one pass. */
function launchVariant(ctx: GpuContext, v: Variant, params: readonly number[], bindings: readonly GPUBufferBinding[], grid: Grid): void {
  ctx.assertAlive();
  const pipeline = variantPipeline(ctx, v);
  const words = new Uint32Array(Math.ceil(params.length / 4) * 4);
  words.set(params.map((x) => x >>> 0));
  const paramBuf = ctx.createBuffer(`${KERNEL} params`, words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  try {
    ctx.device.queue.writeBuffer(paramBuf, 0, words);
    const entries = [{ buffer: paramBuf }, ...bindings].map((resource, binding) => ({ binding, resource }));
    const bindGroup = ctx.device.createBindGroup({ label: KERNEL, layout: pipeline.getBindGroupLayout(0), entries });
    const encoder = ctx.device.createCommandEncoder({ label: KERNEL });
    const pass = encoder.beginComputePass({ label: KERNEL });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(grid.x, grid.y);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
  } finally {
    ctx.destroyBuffer(paramBuf);
  }
}

function checkInt(what: string, x: number, min: number): void {
  if (!Number.isInteger(x) || x < min || x > 0xffffffff) {
    throw new GpuError('validation', `${KERNEL}: ${what} must be an integer >= ${min}, got ${x}`);
  }
}

/** Elements of a buffer that an operand with this offset, batch stride and matrix size touches. */
function extent(offset: number, stride: number, batch: number, size: number): number {
  return offset + (batch - 1) * stride + size;
}

/** Whether an operand can be read as vec4s: contiguous direction, offset and batch stride all multiples of 4. */
function vec4Layout(contiguous: number, offset: number, stride: number, batch: number): boolean {
  return contiguous % 4 === 0 && offset % 4 === 0 && (batch === 1 || stride % 4 === 0);
}

/**
 * Binds buf as f32s (the elements the operand uses) and as vec4s (whole vec4s of that range; a small scratch buffer
 * when the range has fewer than 4 elements, since the vec4 view is then unused).
 */
function bindOperand(ctx: GpuContext, buf: GPUBuffer, elements: number, scratch: () => GPUBuffer): GPUBufferBinding[] {
  const bytes = elements * F32_BYTES;
  const vecBytes = Math.floor(bytes / VEC4_BYTES) * VEC4_BYTES;
  const asF32 = bind(ctx, KERNEL, buf, bytes);
  const asVec4 = vecBytes > 0 ? { buffer: buf, size: vecBytes } : { buffer: scratch(), size: VEC4_BYTES };
  return [asF32, asVec4];
}

function validate(a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, s: ResolvedMatmul): void {
  checkInt('m', s.m, 1);
  checkInt('n', s.n, 1);
  checkInt('k', s.k, 0);
  checkInt('batch', s.batch, 1);
  for (const key of ['strideA', 'strideB', 'strideC', 'offsetA', 'offsetB', 'offsetC'] as const) checkInt(key, s[key], 0);
  if (s.batch > 1 && s.strideC < s.m * s.n) {
    throw new GpuError('validation', `${KERNEL}: strideC ${s.strideC} makes the ${s.m}x${s.n} outputs of the batch overlap`);
  }
  if (!Number.isFinite(s.alpha) || !Number.isFinite(s.beta)) {
    throw new GpuError('validation', `${KERNEL}: alpha and beta must be finite, got ${s.alpha}, ${s.beta}`);
  }
  if (c === a || c === b) {
    throw new GpuError('validation', `${KERNEL}: the output buffer '${c.label}' must differ from the input buffers`);
  }
  const limit = 0xffffffff;
  if (extent(s.offsetA, s.strideA, s.batch, s.m * s.k) > limit || extent(s.offsetB, s.strideB, s.batch, s.k * s.n) > limit) {
    throw new GpuError('validation', `${KERNEL}: operands too large for 32-bit indexing`);
  }
}

/**
 * Encodes and submits C = alpha * op(A) op(B) + beta * C (defaults alpha = 1, beta = 0) for every batch entry.
 * C must be a different buffer from A and B; A and B may share one.
 */
export function matmul(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, shape: MatmulShape): void {
  const s = resolveMatmul(shape);
  validate(a, b, c, s);
  let scratchBuf: GPUBuffer | null = null;
  const scratch = () => (scratchBuf ??= ctx.createBuffer(`${KERNEL} unused vec4 view`, VEC4_BYTES, GPUBufferUsage.STORAGE));
  try {
    const variant: Variant = {
      TRANS_A: s.transA,
      TRANS_B: s.transB,
      A_VEC4: vec4Layout(s.transA ? s.m : s.k, s.offsetA, s.strideA, s.batch),
      B_VEC4: vec4Layout(s.transB ? s.k : s.n, s.offsetB, s.strideB, s.batch),
    };
    const bindings = [
      ...bindOperand(ctx, a, extent(s.offsetA, s.strideA, s.batch, s.m * s.k), scratch),
      ...bindOperand(ctx, b, extent(s.offsetB, s.strideB, s.batch, s.k * s.n), scratch),
      bind(ctx, KERNEL, c, extent(s.offsetC, s.strideC, s.batch, s.m * s.n) * F32_BYTES),
    ];
    const tilesM = Math.ceil(s.m / MATMUL_TILE);
    const tilesN = Math.ceil(s.n / MATMUL_TILE);
    const params = [
      s.m, s.n, s.k, s.beta !== 0 ? READ_C : 0,
      s.strideA, s.strideB, s.strideC, tilesM,
      s.offsetA, s.offsetB, s.offsetC, tilesN,
      f32Bits(s.alpha), f32Bits(s.beta), s.batch,
    ];
    const grid = workgroupGrid(tilesM * tilesN * s.batch, ctx.info.limits.maxComputeWorkgroupsPerDimension);
    launchVariant(ctx, variant, params, bindings, grid);
  } finally {
    if (scratchBuf) ctx.destroyBuffer(scratchBuf);
  }
}
