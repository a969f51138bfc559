/**
 * An independent oracle for merge tests: its own minimal safetensors parsing and f16/bf16 decoding (by formula, not
 * by the engine's bit tricks) and float64 arithmetic. Tests compare the engine's output files against it.
 */

/** Tensors of a safetensors file decoded to float64 (float dtypes only). */
export function readFloatTensors(bytes: Uint8Array): Map<string, { dtype: string; shape: number[]; values: Float64Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; values: Float64Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b] = t.data_offsets;
    const at = 8 + n + b;
    const count = t.shape.reduce((a, d) => a * d, 1);
    const values = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      if (t.dtype === 'F32') values[i] = view.getFloat32(at + 4 * i, true);
      else if (t.dtype === 'F64') values[i] = view.getFloat64(at + 8 * i, true);
      else if (t.dtype === 'F16') values[i] = halfValue(view.getUint16(at + 2 * i, true));
      else if (t.dtype === 'BF16') values[i] = bfloatValue(view.getUint16(at + 2 * i, true));
      else continue;
    }
    if (['F32', 'F64', 'F16', 'BF16'].includes(t.dtype)) out.set(name, { dtype: t.dtype, shape: t.shape, values });
  }
  return out;
}

/** The `__metadata__` of a safetensors file. */
export function readMetadata(bytes: Uint8Array): Record<string, string> | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  return (JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as { __metadata__?: Record<string, string> }).__metadata__;
}

function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * Math.pow(2, -24);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
}

function bfloatValue(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const exp = (b >> 7) & 0xff;
  const frac = b & 0x7f;
  if (exp === 0) return sign * frac * Math.pow(2, -133);
  if (exp === 255) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 128) * Math.pow(2, exp - 127);
}

/** Unit in the last place of `x` in a dtype (for tolerances on rounded outputs). */
export function ulp(x: number, dtype: string): number {
  const mant = dtype === 'F16' ? 10 : dtype === 'BF16' ? 7 : dtype === 'F32' ? 23 : 52;
  const minExp = dtype === 'F16' ? -14 : dtype === 'F64' ? -1022 : -126;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x) || Number.MIN_VALUE)), minExp);
  return Math.pow(2, e - mant);
}

/** theta0 + sum_t c_t (theta_t - theta0) in float64, for every float tensor of the base. */
export function linearMergeOracle(base: Uint8Array, models: Uint8Array[], coeffs: number[]): Map<string, Float64Array> {
  const b = readFloatTensors(base);
  const ms = models.map(readFloatTensors);
  const out = new Map<string, Float64Array>();
  for (const [name, t] of b) {
    const v = t.values.slice();
    ms.forEach((m, i) => {
      const mv = m.get(name)!.values;
      for (let j = 0; j < v.length; j++) v[j] = v[j]! + coeffs[i]! * (mv[j]! - t.values[j]!);
    });
    out.set(name, v);
  }
  return out;
}

/** Largest error of `got` against `want` in units of the output dtype's ulp (plus f32 accumulation slack). */
export function maxUlpError(got: Float64Array, want: Float64Array, dtype: string, scale: number): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    // f32 arithmetic on values of size ~scale leaves errors of a few f32 ulps of `scale` before the final rounding.
    const slack = 8 * ulp(scale, 'F32');
    worst = Math.max(worst, Math.max(0, err - slack) / ulp(want[i]!, dtype));
  }
  return worst;
}
