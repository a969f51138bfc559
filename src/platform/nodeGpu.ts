/**
 * WebGPU in Node through the `webgpu` package (Dawn). On a machine without a GPU driver, Dawn can use the
 * SwiftShader Vulkan driver that Debian's chromium package ships, if VK_ICD_FILENAMES points to it before Dawn
 * creates its instance; this module sets it when the first attempt finds no adapter.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { installPacer } from './dawnPacer';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let globalsInstalled = false;

/** Puts GPUBufferUsage, GPUMapMode and the other WebGPU globals on globalThis (once), their waits paced (dawnPacer). */
function installGlobals(): void {
  if (globalsInstalled) return;
  installPacer(globals as unknown as Record<string, unknown>);
  Object.assign(globalThis, globals);
  globalsInstalled = true;
}

/**
 * A Dawn `GPU` object, falling back to SwiftShader when no hardware adapter is found. The caller owns it: Dawn
 * keeps Node alive while a reference to it exists, so nothing here holds on to it.
 */
export async function nodeGpu(opts: { log?: (msg: string) => void } = {}): Promise<GPU> {
  installGlobals();
  // The Vulkan loader complains on every start without a runtime directory (common in containers and CI).
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'merge-playground-'));
  const gpu = create([]);
  if (await gpu.requestAdapter()) return gpu;
  if (process.env.VK_ICD_FILENAMES || !existsSync(SWIFTSHADER_ICD)) return gpu;
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  opts.log?.(`No GPU adapter found; using the CPU SwiftShader driver (${SWIFTSHADER_ICD}).`);
  return create([]);
}

/** Whether Node can get a WebGPU adapter here (hardware or SwiftShader). */
export async function nodeGpuAvailable(): Promise<boolean> {
  try {
    const gpu = await nodeGpu();
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}
