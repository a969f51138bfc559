/** WebGPU in the browser: navigator.gpu, where the browser offers it. */

/** Shown when the browser has no WebGPU. */
export const NO_WEBGPU_MESSAGE =
  'This browser has no WebGPU, which the merge runs on. Use a recent Chrome, Edge, Safari or Firefox with WebGPU ' +
  'enabled (on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu).';

/** The browser's `GPU` object, or null when WebGPU is missing (see NO_WEBGPU_MESSAGE). */
export function browserGpu(): GPU | null {
  if (typeof navigator === 'undefined') return null;
  return navigator.gpu ?? null;
}
