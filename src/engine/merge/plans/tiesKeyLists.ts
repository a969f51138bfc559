/**
 * Global TIES's key lists made on the host, for a CPU-emulated adapter (tiesFast.ts's scan pass). The scan must list,
 * per task, the |tau| keys inside a bracket [lo, above); ties_scan can do it with atomic counters, but a CPU-emulated
 * device runs that listing code for every quad of every row, masked, whether or not a key is inside: it was half of
 * the scan kernel's time on SwiftShader (8 models, 4 MiB chunks: about 9.6 ms with it, 4.8 ms without). There the GPU
 * is the same CPU, so the host lists the keys with a WebAssembly SIMD loop (keyListWasm.ts: about 0.6 ns per element,
 * where a plain JS loop took 3.5 to 7 and was no faster than the kernel), and the same loop counts the keys above each
 * bracket: the scan pass then reads the chunks from the sources and neither uploads them nor runs ties_scan
 * (tiesFast.ts hostScan). Where WebAssembly cannot run (no
 * SIMD, or a Content-Security-Policy against compiling it) ties_scan lists and counts.
 *
 * The keys must be the GPU's own: tau = decode(model) - decode(theta0) in f32 (WebAssembly's f32x4.sub is IEEE, with
 * subnormals). WGSL lets a device flush subnormal operands and results (SwiftShader does); that changes no key of
 * magnitude 2^-100 or more (a subnormal operand is less than half an ulp of such a difference), so host lists are used
 * only when every bracket starts there or above (HOST_LIST_MIN_KEY) and ends at or below infinity's key (NaN payloads
 * are the device's business); `hostListsExact` says so. Twin of the lists: reference/tiesFused.ts tiesScanRef (same
 * keys, in element order).
 */
import type { RawDType } from '../../gpu/kernels';
import { decodeToF32 } from '../../tensor/dtype';
import { DTYPE_BYTES } from '../../types';
import type { KeyListWasm } from './keyListWasm';

const INF_BITS = 0x7f800000;
/** The key of 2^-100: brackets from here up list the same keys whether or not a device flushes subnormals. */
export const HOST_LIST_MIN_KEY = 0x0d800000;

/** Whether host lists equal the device's for these (lo, above) brackets (see the file comment). */
export function hostListsExact(brackets: Uint32Array): boolean {
  for (let t = 0; t < brackets.length; t += 2) {
    if (brackets[t]! < HOST_LIST_MIN_KEY || brackets[t + 1]! > INF_BITS) return false;
  }
  return true;
}

/**
 * One input of a chunk: the dtype the GPU reads it in (F32, F16 or BF16), and `fill`, which writes its raw bytes for
 * the chunk's `count` elements into the view it is given (exactly that long): straight into the WebAssembly memory
 * where the loop reads that dtype as stored (tiesFast.ts reads the sources into it, with no array of their own).
 */
export interface HostInput {
  dtype: RawDType;
  fill(into: Uint8Array): Promise<unknown>;
}

/**
 * Per task, the keys of every chunk it is shown that lie in the task's bracket, up to `cap` keys per task, and the
 * count of keys at or above the bracket (ties_scan's `above`).
 */
export class HostKeyLists {
  private readonly lists: Uint32Array[];
  private readonly sizes: number[];
  private readonly above: Float64Array;

  /** `wasm`: an instance of keyListWasm.ts, which this object uses from then on. */
  constructor(
    private readonly wasm: KeyListWasm,
    private readonly brackets: Uint32Array,
    private readonly cap: number,
  ) {
    const tasks = brackets.length / 2;
    this.lists = Array.from({ length: tasks }, () => new Uint32Array(Math.min(cap, 4096)));
    this.sizes = new Array<number>(tasks).fill(0);
    this.above = new Float64Array(tasks);
  }

  /**
   * Lists and counts the keys of one chunk: its inputs, theta0 then model r at 1 + r, `count` elements each. theta0
   * goes into the instance's memory as f32, each model as f32 or bf16, both padded with zeros to a multiple of 4
   * elements (a zero tau lists nothing and counts nothing: every bracket starts above 0).
   */
  async add(inputs: readonly HostInput[], count: number): Promise<void> {
    const w = this.wasm;
    const n4 = Math.ceil(count / 4) * 4;
    // The count of keys >= above goes to the 16 bytes after the list space.
    const [baseAt, modelAt, outAt, countedAt] = [0, 4 * n4, 8 * n4, 12 * n4];
    const need = 12 * n4 + 16;
    if (w.memory.buffer.byteLength < need) w.memory.grow(Math.ceil((need - w.memory.buffer.byteLength) / 65536));
    // The memory does not grow again before the loop below has run: views of it stay valid across the reads.
    const mem = w.memory.buffer;
    // Writes segment `seg` at `at` as f32, or as bf16 where `bf16ok`; returns whether it wrote bf16.
    const place = async (seg: HostInput, at: number, bf16ok: boolean): Promise<boolean> => {
      const size = DTYPE_BYTES[seg.dtype];
      if (seg.dtype === 'F32' || (seg.dtype === 'BF16' && bf16ok)) {
        const dst = new Uint8Array(mem, at, size * n4);
        await seg.fill(dst.subarray(0, size * count));
        dst.fill(0, size * count);
        return seg.dtype === 'BF16';
      }
      if (seg.dtype === 'BF16') {
        // theta0 in bf16: widened through the model's place, which is written after.
        const dst = new Uint8Array(mem, modelAt, 2 * n4);
        await seg.fill(dst.subarray(0, 2 * count));
        dst.fill(0, 2 * count);
        w.widen(modelAt, at, n4);
      } else {
        const src = new Uint8Array(size * count);
        await seg.fill(src);
        const dst = new Float32Array(mem, at, n4);
        dst.set(decodeToF32(src, seg.dtype));
        dst.fill(0, count);
      }
      return false;
    };
    await place(inputs[0]!, baseAt, false);
    for (let r = 0; r < this.lists.length; r++) {
      const bf16 = await place(inputs[r + 1]!, modelAt, true);
      const lo = this.brackets[2 * r]!;
      const above = this.brackets[2 * r + 1]!;
      const found = w.list(baseAt, modelAt, bf16 ? 1 : 0, n4, lo, above - lo, outAt, above, countedAt);
      this.append(r, new Uint32Array(mem, outAt, found));
      this.above[r] = this.above[r]! + new Uint32Array(mem, countedAt, 1)[0]!;
    }
  }

  /** Per task, the keys at or above its bracket's upper end in every chunk shown (as ties_scan counts them). */
  counts(): Float64Array {
    return this.above.slice();
  }

  /** Each task's keys in the order listed, or null where they did not fit in `cap`. */
  results(): (Uint32Array | null)[] {
    return this.lists.map((list, r) => (this.sizes[r]! <= this.cap ? list.slice(0, this.sizes[r]!) : null));
  }

  /** Appends task r's keys `found` (in order) to its list, as far as `cap` allows; the list grows as needed. */
  private append(r: number, found: Uint32Array): void {
    const n = this.sizes[r]!;
    const end = Math.min(n + found.length, this.cap);
    if (end > this.lists[r]!.length) {
      const grown = new Uint32Array(Math.min(this.cap, Math.max(end, 2 * this.lists[r]!.length)));
      grown.set(this.lists[r]!.subarray(0, n));
      this.lists[r] = grown;
    }
    if (end > n) this.lists[r]!.set(found.subarray(0, end - n), n);
    this.sizes[r] = n + found.length;
  }
}
