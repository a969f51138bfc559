/**
 * The WebGPU runtime: one GpuContext wraps one GPUDevice (limits, features, labelled and tracked buffers, cached
 * pipelines, error scopes, device loss); GpuRuntime hands out the current context and replaces it after a loss.
 * The `GPU` object is injected (src/platform/nodeGpu.ts or browserGpu.ts), so this file runs anywhere.
 */
import { GpuError } from '../errors';
import { shaderSource } from './shaders';

/** Device limits the engine relies on, as granted to the device. */
export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
}

/** What the page and the CLI report about the device. */
export interface GpuInfo {
  /** The device name, then vendor / architecture / description in brackets, whichever the adapter reports. */
  adapter: string;
  /** A CPU implementation (SwiftShader, llvmpipe, WARP): fine for tests, slow for real models. */
  isSoftware: boolean;
  /** Whether the device has the optional `shader-f16` feature enabled. */
  hasF16: boolean;
  limits: GpuLimits;
}

/** Options for creating a context. */
export interface GpuContextOptions {
  /** Device label (appears in Dawn/browser error messages). */
  label?: string;
  /** Do not request `shader-f16` even when the adapter has it (tests the path without it). */
  disableF16?: boolean;
  /** Called once when the device is lost other than by `destroy()`. */
  onLost?: (reason: string) => void;
  /**
   * Treat the device as having only this many bytes for buffers: an allocation that would take `allocatedBytes`
   * above it fails with the OutOfMemoryError a real exhaustion gives. Lets the out-of-memory fallback be exercised
   * on any device.
   */
  maxAllocatedBytes?: number;
}

/** A buffer allocation the device cannot satisfy: names the buffer, the bytes asked for and the bytes in use. */
export class OutOfMemoryError extends GpuError {
  constructor(
    readonly label: string,
    readonly bytes: number,
    readonly inUse: number,
    why: string,
  ) {
    super('out-of-memory', `${label}: ${bytes} bytes ${why}`);
  }
}

const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
] as const satisfies readonly (keyof GpuLimits)[];

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|warp|basic render|software/i;

/** Error scopes pushed by `scoped`, innermost last (popped in reverse order). */
const SCOPES = ['internal', 'out-of-memory', 'validation'] as const satisfies readonly GPUErrorFilter[];

/** Rounds a byte count up to a multiple of 4 (copies and bindings need 4-byte sizes). */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** `bytes` rounded up to whole 16-byte quads (at least one): the size of a binding of vec4s that covers them. */
export function align16(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** A WebGPU device with what the engine needs around it. Create with `GpuContext.create`. */
export class GpuContext {
  private readonly sizes = new Map<GPUBuffer, number>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private allocated = 0;
  private peak = 0;
  private lost: string | null = null;
  private destroyed = false;

  /**
   * The GPU object and adapter the device came from. Dawn (Node) tears its instance down when the `GPU`
   * object is garbage-collected, even with a device still in use (a crash), so the context holds them
   * until `destroy()`; dropping them then lets Node exit.
   */
  private owners: { gpu: GPU; adapter: GPUAdapter } | null;

  private constructor(
    readonly device: GPUDevice,
    readonly info: GpuInfo,
    owners: { gpu: GPU; adapter: GPUAdapter },
    onLost: ((reason: string) => void) | undefined,
    private readonly maxAllocated = Infinity,
  ) {
    this.owners = owners;
    void device.lost.then((lostInfo) => {
      this.lost = lostInfo.message || `device lost (${lostInfo.reason})`;
      if (!this.destroyed) onLost?.(this.lost);
    });
  }

  /** Requests a high-performance adapter and a device with the adapter's maximum limits (and shader-f16 if offered). */
  static async create(gpu: GPU, opts: GpuContextOptions = {}): Promise<GpuContext> {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new GpuError(
        'unavailable',
        'No WebGPU adapter found. In a browser, use a recent Chrome or Edge (or enable WebGPU in Firefox/Safari); ' +
          'in Node without a GPU, install Chromium so that its SwiftShader driver can be used.',
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of LIMIT_NAMES) requiredLimits[name] = adapter.limits[name];
    const wantF16 = adapter.features.has('shader-f16') && !opts.disableF16;
    const label = opts.label ?? 'merge-playground';
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ label, requiredLimits, requiredFeatures: wantF16 ? ['shader-f16'] : [] });
    } catch (err) {
      throw new GpuError('unavailable', `${label}: requestDevice failed: ${(err as Error).message}`);
    }
    const a = adapter.info;
    // The device name first where the adapter gives one (Dawn on Vulkan: the GPU's name; its description is the driver).
    const driver = [a.vendor, a.architecture, a.description].filter((s) => s).join('/');
    const adapterName = (a.device ? `${a.device}${driver ? ` (${driver})` : ''}` : driver) || 'unknown adapter';
    const limits = {} as GpuLimits;
    for (const name of LIMIT_NAMES) limits[name] = device.limits[name];
    const info: GpuInfo = {
      adapter: adapterName,
      isSoftware: a.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(`${adapterName} ${a.device}`),
      hasF16: device.features.has('shader-f16'),
      limits,
    };
    return new GpuContext(device, info, { gpu, adapter }, opts.onLost, opts.maxAllocatedBytes);
  }

  /** Why the device was lost, or null while it works. */
  get lostReason(): string | null {
    return this.lost;
  }

  /** Bytes of live buffers created through this context. */
  get allocatedBytes(): number {
    return this.allocated;
  }

  /** Highest `allocatedBytes` since creation or the last `resetPeak()`. */
  get peakBytes(): number {
    return this.peak;
  }

  /** Starts a new peak measurement at the current allocation. */
  resetPeak(): void {
    this.peak = this.allocated;
  }

  /** Throws GpuError('device-lost') if the device is gone. */
  assertAlive(): void {
    if (this.lost !== null || this.destroyed) {
      throw new GpuError('device-lost', `GPU device lost: ${this.lost ?? 'context destroyed'}`);
    }
  }

  /**
   * A labelled, tracked buffer. The size is rounded up to whole 16-byte quads, so a kernel may bind any buffer's data
   * as an array of vec4s (bindQuads in launch.ts; the words past the data are padding, never data).
   */
  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags, mappedAtCreation = false): GPUBuffer {
    this.assertAlive();
    const bytes = align16(size);
    if (bytes > this.info.limits.maxBufferSize) {
      throw new OutOfMemoryError(label, bytes, this.allocated, `exceeds the device's maxBufferSize (${this.info.limits.maxBufferSize})`);
    }
    if (this.allocated + bytes > this.maxAllocated) {
      throw new OutOfMemoryError(label, bytes, this.allocated, `do not fit: ${this.allocated} of the device's ${this.maxAllocated} bytes are in use`);
    }
    const buffer = this.device.createBuffer({ label, size: bytes, usage, mappedAtCreation });
    this.sizes.set(buffer, bytes);
    this.allocated += bytes;
    this.peak = Math.max(this.peak, this.allocated);
    return buffer;
  }

  /** Destroys a buffer (GPU work already submitted still completes) and stops counting it. */
  destroyBuffer(buffer: GPUBuffer): void {
    const bytes = this.sizes.get(buffer);
    if (bytes !== undefined) {
      this.sizes.delete(buffer);
      this.allocated -= bytes;
    }
    buffer.destroy();
  }

  /** The compute pipeline of kernel `shaders/<kernel>.wgsl` (entry point `main`), created once. */
  pipeline(kernel: string): GPUComputePipeline {
    this.assertAlive();
    let pipeline = this.pipelines.get(kernel);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: kernel, code: shaderSource(kernel) });
      pipeline = this.device.createComputePipeline({ label: kernel, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(kernel, pipeline);
    }
    return pipeline;
  }

  /**
   * Runs `fn` inside validation, out-of-memory and internal error scopes; a captured error becomes
   * GpuError(kind, `${label}: message`). Scopes belong to the device, not to this call: GPU calls that other
   * code makes while `fn` awaits are captured too.
   */
  async scoped<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
    this.assertAlive();
    for (const filter of SCOPES) this.device.pushErrorScope(filter);
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await fn() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    // Pop even when fn threw, so the device's scope stack stays balanced. Pops happen in call order.
    const popped = [...SCOPES].reverse().map((filter) => ({ filter, error: this.device.popErrorScope().catch(() => null) }));
    for (const { filter, error } of popped) {
      const captured = await error;
      // A GPU error explains a failure better than whatever it made fn throw afterwards.
      if (captured) {
        this.assertAlive();
        throw new GpuError(filter, `${label}: ${captured.message}`);
      }
    }
    if (!outcome.ok) throw outcome.error;
    this.assertAlive();
    return outcome.value;
  }

  /** Destroys the device and everything on it. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.sizes.clear();
    this.pipelines.clear();
    this.allocated = 0;
    this.device.destroy();
    this.owners = null;
  }

  /** Whether `destroy()` was called: the owner ended the device on purpose (unlike a loss, nothing to recover). */
  get released(): boolean {
    return this.destroyed;
  }

  /** Whether this context can still be used. */
  get usable(): boolean {
    return this.lost === null && !this.destroyed;
  }
}

/** Owns "the current context": the first `context()` creates it, and after a device loss the next call creates a new one. */
export class GpuRuntime {
  private current: Promise<GpuContext> | null = null;

  constructor(
    private readonly gpu: GPU,
    private readonly opts: GpuContextOptions = {},
  ) {}

  /** The current working context, creating one if there is none or the last one was lost. */
  async context(): Promise<GpuContext> {
    const pending = this.current;
    if (pending) {
      const ctx = await pending.catch(() => null);
      if (ctx?.usable) return ctx;
      // Another caller may have started the replacement while this one waited.
      if (this.current !== pending) return this.context();
    }
    this.current = GpuContext.create(this.gpu, this.opts);
    return this.current;
  }

  /** Destroys the current context; a later `context()` starts a new device. */
  destroy(): void {
    const pending = this.current;
    this.current = null;
    void pending?.then((ctx) => ctx.destroy()).catch(() => undefined);
  }
}
