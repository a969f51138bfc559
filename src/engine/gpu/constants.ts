/**
 * Constants shared by host code and WGSL. This is their one source of truth: `wgslConstants()` turns them into
 * `const` declarations that the shader loader puts in front of every kernel, so no shader restates a number.
 */

/** Threads per workgroup of every 1-D elementwise kernel. */
export const WORKGROUP_SIZE = 256;

/** Codes for the element encodings a kernel reads or writes (uniform field `dtype`). */
export const DTYPE_CODE = { F32: 0, F16: 1, BF16: 2 } as const;
export type DTypeCode = (typeof DTYPE_CODE)[keyof typeof DTYPE_CODE];

/** WGSL source declaring the shared constants. */
export function wgslConstants(): string {
  return [
    `const WORKGROUP_SIZE: u32 = ${WORKGROUP_SIZE}u;`,
    `const DTYPE_F32: u32 = ${DTYPE_CODE.F32}u;`,
    `const DTYPE_F16: u32 = ${DTYPE_CODE.F16}u;`,
    `const DTYPE_BF16: u32 = ${DTYPE_CODE.BF16}u;`,
    '',
  ].join('\n');
}
