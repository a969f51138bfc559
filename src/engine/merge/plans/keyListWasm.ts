/**
 * The inner loop of tiesKeyLists.ts in WebAssembly SIMD, assembled here from the instructions below (no build step,
 * no binary file). Per task and chunk it reads theta0 and the model as f32 (or the model as bf16) four elements at a
 * time, forms the |tau| keys, appends those inside [lo, lo + span) to a list, in element order, and counts those at or
 * above `above`. A JS loop doing the
 * same took about 3.5 to 5 ns per element on the 2-core machine; this one about a tenth of that (bench/README.md).
 * Fixed-width SIMD arithmetic is IEEE (subnormals kept, no flush): each key is that of the correctly rounded f32
 * difference (tiesKeyLists.ts says where that equals the device's).
 *
 *   list(base, model, bf16, count, lo, span, out, above, counted) -> n
 *     base: byte address of `count` f32 (theta0); model: of `count` f32, or bf16 when `bf16` is 1; count: a multiple
 *     of 4 (pad with zeros: a zero tau lists nothing for lo > 0 and counts nothing for above > 0); out: where the n
 *     listed keys go (room for count); counted: where the count of keys >= above (unsigned) goes, as one i32.
 *   widen(src, dst, count): `count` bf16 at src as f32 at dst (count a multiple of 4).
 *
 * keyListWasm() returns null where the host cannot run it; the engine then lists in ties_scan (tiesFast.ts).
 */

/** Unsigned LEB128 (sizes, indices, alignment, SIMD opcodes). */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const I32 = 0x7f;
const V128 = 0x7b;
const VOID = 0x40;

/** The instructions used, by name (core opcodes, and 0xfd-prefixed SIMD ones). */
const op = {
  block: (type: number) => [0x02, type],
  loop: (type: number) => [0x03, type],
  if: (type: number) => [0x04, type],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  tee: (local: number) => [0x22, ...uleb(local)],
  i32Store: [0x36, 2, 0],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32And: [0x71],
  i32Shl: [0x74],
  v128Load: [0xfd, ...uleb(0x00), 2, 0],
  v128Load16x4U: [0xfd, ...uleb(0x04), 1, 0],
  v128Store: [0xfd, ...uleb(0x0b), 2, 0],
  v128Const: (words: number[]) => [0xfd, ...uleb(0x0c), ...words.flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24])],
  i32x4Splat: [0xfd, ...uleb(0x11)],
  i32x4ExtractLane: (lane: number) => [0xfd, ...uleb(0x1b), lane],
  i32x4LtU: [0xfd, ...uleb(0x3a)],
  i32x4GeU: [0xfd, ...uleb(0x40)],
  v128And: [0xfd, ...uleb(0x4e)],
  i32x4Bitmask: [0xfd, ...uleb(0xa4)],
  i32x4Shl: [0xfd, ...uleb(0xab)],
  i32x4Sub: [0xfd, ...uleb(0xb1)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
};

/** address = base + (index << shift) */
const address = (base: number, index: number, shift: number) => [...op.get(base), ...op.get(index), ...op.i32Const(shift), ...op.i32Shl, ...op.i32Add];
/** local += by */
const bump = (local: number, by: number) => [...op.get(local), ...op.i32Const(by), ...op.i32Add, ...op.set(local)];
/** Four bf16 at byte address (on the stack) as f32 bits. */
const bf16x4 = [...op.v128Load16x4U, ...op.i32Const(16), ...op.i32x4Shl];

// list's parameters and locals.
const [BASE, MODEL, BF16, COUNT, LO, SPAN, OUT, ABOVE, COUNTED] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const [I, N, KEY, LO4, SPAN4, ABOVE4, ACC, MASK] = [9, 10, 11, 12, 13, 14, 15, 16];

const listBody = [
  ...op.get(LO), ...op.i32x4Splat, ...op.set(LO4),
  ...op.get(SPAN), ...op.i32x4Splat, ...op.set(SPAN4),
  ...op.get(ABOVE), ...op.i32x4Splat, ...op.set(ABOVE4),
  ...op.block(VOID), ...op.loop(VOID),
  ...op.get(I), ...op.get(COUNT), ...op.i32GeU, ...op.brIf(1),
  // tau = model[i..i+3] - base[i..i+3] (f32), key = bits(tau) & 0x7fffffff
  ...op.get(BF16), ...op.if(V128),
  ...address(MODEL, I, 1), ...bf16x4,
  ...op.else,
  ...address(MODEL, I, 2), ...op.v128Load,
  ...op.end,
  ...address(BASE, I, 2), ...op.v128Load,
  ...op.f32x4Sub,
  ...op.v128Const([0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff]), ...op.v128And,
  ...op.set(KEY),
  // counted: acc - (key >= above), the comparison's lanes being -1 where true
  ...op.get(ACC), ...op.get(KEY), ...op.get(ABOVE4), ...op.i32x4GeU, ...op.i32x4Sub, ...op.set(ACC),
  // inside: key - lo < span, unsigned; one bit per lane
  ...op.get(KEY), ...op.get(LO4), ...op.i32x4Sub, ...op.get(SPAN4), ...op.i32x4LtU, ...op.i32x4Bitmask,
  ...op.tee(MASK), ...op.if(VOID),
  ...[0, 1, 2, 3].flatMap((lane) => [
    ...op.get(MASK), ...op.i32Const(1 << lane), ...op.i32And, ...op.if(VOID),
    ...address(OUT, N, 2), ...op.get(KEY), ...op.i32x4ExtractLane(lane), ...op.i32Store,
    ...bump(N, 1),
    ...op.end,
  ]),
  ...op.end,
  ...bump(I, 4),
  ...op.br(0),
  ...op.end, ...op.end,
  ...op.get(COUNTED),
  ...[0, 1, 2, 3].flatMap((lane) => [...op.get(ACC), ...op.i32x4ExtractLane(lane), ...(lane > 0 ? op.i32Add : [])]),
  ...op.i32Store,
  ...op.get(N),
];

// widen's parameters and locals.
const [SRC, DST, WCOUNT, J] = [0, 1, 2, 3];
const widenBody = [
  ...op.block(VOID), ...op.loop(VOID),
  ...op.get(J), ...op.get(WCOUNT), ...op.i32GeU, ...op.brIf(1),
  ...address(DST, J, 2),
  ...address(SRC, J, 1), ...bf16x4,
  ...op.v128Store,
  ...bump(J, 4),
  ...op.br(0),
  ...op.end, ...op.end,
];

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
/** A function body: local declarations as (count, type) runs, the code, end. */
const func = (locals: [number, number][], code: number[]) => {
  const body = [...vec(locals.map(([n, t]) => [...uleb(n), t])), ...code, ...op.end];
  return [...uleb(body.length), ...body];
};

function moduleBytes(): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([[I32]])],
      [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])],
    ])),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      [...name('list'), 0x00, 0],
      [...name('widen'), 0x00, 1],
    ])),
    ...section(10, vec([
      func([[2, I32], [1, V128], [4, V128], [1, I32]], listBody),
      func([[1, I32]], widenBody),
    ])),
  ]);
}

export interface KeyListWasm {
  memory: WebAssembly.Memory;
  list(base: number, model: number, bf16: number, count: number, lo: number, span: number, out: number, above: number, counted: number): number;
  widen(src: number, dst: number, count: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/**
 * A new instance (its own memory), or null where the host cannot run it: no WebAssembly SIMD, or a page whose
 * Content-Security-Policy does not allow compiling WebAssembly (the playground's allows only 'self' scripts).
 */
export function keyListWasm(): KeyListWasm | null {
  try {
    if (compiled === undefined) {
      const bytes = moduleBytes();
      compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    return compiled && (new WebAssembly.Instance(compiled).exports as unknown as KeyListWasm);
  } catch {
    compiled = null;
    return null;
  }
}
