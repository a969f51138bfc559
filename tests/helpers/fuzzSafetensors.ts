/**
 * Fuzz inputs for the safetensors reader, from a grammar: a valid layout of random tensors (any dtype, small shapes,
 * hostile names, optional metadata, gaps and trailing bytes the reader tolerates), into which 0 to 3 flaws may be
 * written (bad dtype, shape or offsets, overflowing shapes, overlaps, extra/missing/duplicate fields, duplicate or
 * empty names, bad metadata, bad UTF-8, trailing garbage, truncation). A file is valid exactly when it has no flaw,
 * which makes the grammar an oracle. Plus the checks every accepted file must pass, and a ByteSource that logs reads.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { MAX_HEADER_BYTES } from '../../src/engine/io/safetensorsHeader';
import { openSafetensors, type SafetensorsFile } from '../../src/engine/io/safetensorsReader';
import { serializeSafetensors } from '../../src/engine/io/safetensorsWriter';
import { DTYPE_BYTES, DTYPES, numelOf, type DType } from '../../src/engine/types';
import { HOSTILE_KEYS, HOSTILE_NAMES, Obj, Raw, toJson, type J } from './fuzz';

/** A generated file: its name (what errors must name), bytes, and the flaws written into it (none: valid). */
export interface FuzzFile {
  name: string;
  bytes: Uint8Array;
  flaws: string[];
}

/** A tensor of the valid layout. */
interface GenTensor {
  name: string;
  dtype: DType;
  shape: number[];
}

const ENTRY_FLAWS = ['dtype', 'shape-element', 'shape-type', 'overflow', 'offsets-type', 'reversed', 'span', 'out-of-range', 'overlap', 'extra-field', 'missing-field', 'duplicate-field', 'not-object', 'empty-name', 'duplicate-name', 'metadata-name'] as const;
const FILE_FLAWS = ['metadata-value', 'metadata-type', 'duplicate-metadata', 'root-type', 'trailing-garbage', 'bad-utf8', 'truncated'] as const;
type Flaw = (typeof ENTRY_FLAWS)[number] | (typeof FILE_FLAWS)[number];

const BAD_DTYPES: J[] = ['F8_E4M3', 'f32', 'FLOAT', '', 'F32 ', 'BF16\u0000', 'constructor', '__proto__', 3, null, true, ['F32'], new Obj([])];
const BAD_DIMS: J[] = [-1, 1.5, '4', null, true, [2], new Obj([]), 2 ** 53, new Raw('1e400')];
const BAD_SHAPES: J[] = [4, '2,2', null, new Obj([['0', 2]]), true];
const OVERFLOW_SHAPES = [[2 ** 40, 2 ** 40], [2 ** 26, 2 ** 26, 4], [2 ** 53 - 1, 2]];
const BAD_OFFSETS: J[] = ['0,4', null, [0], [0, 4, 8], new Obj([]), [0, '4'], [-1, 3], [0.5, 4], [0, 2 ** 60], new Raw('[0, 1e400]')];

/** Tensor names: plain, hostile (markup, prototype keys), unicode, long, and random. */
export const tensorName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('weight', 'encoder.layers.0.mlp.fc1.weight', 'a"b\\c', 'new\nline', ' ', 'ünïcødé 名前 🙂', 'x'.repeat(300), ...HOSTILE_KEYS, ...HOSTILE_NAMES),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }),
);

/** File names errors must name (markup included: they must come back as text). */
const fileName = fc.constantFrom('model.safetensors', 'dir/ünï 名.safetensors', '<img src=x onerror=alert(1)>.safetensors');

const shape = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom<number[]>([0, 2 ** 40], [2 ** 45, 0, 3], []) },
);

const genTensor = (name: string): fc.Arbitrary<GenTensor> => fc.record({ name: fc.constant(name), dtype: fc.constantFrom(...DTYPES), shape });

const metadata = fc.option(fc.dictionary(fc.oneof(fc.constantFrom('format', ...HOSTILE_KEYS), fc.string({ maxLength: 6 })), fc.string({ maxLength: 12 }), { maxKeys: 4 }), { nil: null });

/** The plan of one file before it is written out. */
interface Plan {
  file: string;
  tensors: GenTensor[];
  metadata: Record<string, string> | null;
  gaps: number[];
  trailing: number;
  padding: number;
  order: number[];
  flaws: { kind: Flaw; at: number; pick: number }[];
  seed: number;
}

const flawList: fc.Arbitrary<Plan['flaws']> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Plan['flaws']>([]) },
  { weight: 1, arbitrary: fc.array(fc.record({ kind: fc.constantFrom<Flaw>(...ENTRY_FLAWS, ...FILE_FLAWS), at: fc.nat(), pick: fc.nat() }), { minLength: 1, maxLength: 3 }) },
);

const plan: fc.Arbitrary<Plan> = fc
  .uniqueArray(tensorName, { maxLength: 6 })
  .chain((names) =>
    fc.record({
      file: fileName,
      tensors: fc.tuple(...names.map(genTensor)),
      metadata,
      gaps: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5 })), { minLength: names.length, maxLength: names.length }),
      trailing: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 9 })),
      padding: fc.integer({ min: 0, max: 7 }),
      order: fc.shuffledSubarray(names.map((_, i) => i), { minLength: names.length, maxLength: names.length }),
      flaws: flawList,
      seed: fc.nat(),
    }),
  );

const byteSize = (t: GenTensor) => numelOf(t.shape) * DTYPE_BYTES[t.dtype];

/** Writes a plan out as a file, applying its flaws; the flaws that apply are listed in the result. */
function build(p: Plan): FuzzFile {
  const n = p.tensors.length;
  const offsets: [number, number][] = [];
  let at = 0;
  p.tensors.forEach((t, i) => {
    at += p.gaps[i] ?? 0;
    offsets.push([at, at + byteSize(t)]);
    at += byteSize(t);
  });
  let dataSize = at + p.trailing;
  const entries: { name: string; pairs: [string, J][] | null; value?: J }[] = p.tensors.map((t, i) => ({
    name: t.name,
    pairs: [['dtype', t.dtype], ['shape', t.shape], ['data_offsets', offsets[i]!]],
  }));
  let meta: J | undefined = p.metadata ? new Obj(Object.entries(p.metadata)) : undefined;
  const extraPairs: [string, J][] = [];
  const flaws: string[] = [];
  let root: J | undefined;
  let tail = '';
  let badUtf8 = -1;
  const setPair = (i: number, key: string, value: J) => {
    const pairs = entries[i]!.pairs!;
    const k = pairs.findIndex(([name]) => name === key);
    if (k >= 0) pairs[k] = [key, value];
  };
  // One flaw per entry at most: a second one could undo the first (e.g. drop the duplicate a first one added).
  const flawed = new Set<number>();
  for (const f of p.flaws) {
    const i = n ? f.at % n : -1;
    const pick = <T>(xs: readonly T[]) => xs[f.pick % xs.length]!;
    const entryFlaw = (ENTRY_FLAWS as readonly string[]).includes(f.kind);
    if (entryFlaw && (i < 0 || flawed.has(i))) continue;
    const size = i >= 0 ? byteSize(p.tensors[i]!) : 0;
    const [begin, end] = i >= 0 ? offsets[i]! : [0, 0];
    const others = p.tensors.map((_, j) => j).filter((j) => j !== i && entries[j]!.pairs !== null);
    switch (f.kind) {
      case 'dtype':
        setPair(i, 'dtype', pick(BAD_DTYPES));
        break;
      case 'shape-element': {
        const dims: J[] = [...p.tensors[i]!.shape];
        dims.splice(f.pick % (dims.length + 1), f.at % 2, pick(BAD_DIMS));
        setPair(i, 'shape', dims);
        break;
      }
      case 'shape-type':
        setPair(i, 'shape', pick(BAD_SHAPES));
        break;
      case 'overflow':
        setPair(i, 'shape', pick(OVERFLOW_SHAPES));
        break;
      case 'offsets-type':
        setPair(i, 'data_offsets', pick(BAD_OFFSETS));
        break;
      case 'reversed':
        setPair(i, 'data_offsets', size > 0 ? [end, begin] : [begin + 1, begin]);
        break;
      case 'span':
        setPair(i, 'data_offsets', [begin, end + 1 + (f.pick % 3)]);
        break;
      case 'out-of-range':
        setPair(i, 'data_offsets', new Raw(`[${dataSize + 1 + (f.pick % 5)}, ${dataSize + 1 + (f.pick % 5) + size}]`));
        break;
      case 'overlap': {
        const j = others.find((k) => byteSize(p.tensors[k]!) > 0);
        if (j === undefined || size === 0) continue;
        const src = p.tensors[j]!;
        setPair(i, 'dtype', src.dtype);
        setPair(i, 'shape', src.shape);
        setPair(i, 'data_offsets', offsets[j]!);
        break;
      }
      case 'extra-field':
        entries[i]!.pairs!.push([pick(['extra', 'offsets', 'DTYPE', ...HOSTILE_KEYS]), 1]);
        break;
      case 'missing-field': {
        const key = pick(['dtype', 'shape', 'data_offsets']);
        entries[i]!.pairs = entries[i]!.pairs!.filter(([k]) => k !== key);
        break;
      }
      case 'duplicate-field': {
        const [key, value] = entries[i]!.pairs![f.pick % entries[i]!.pairs!.length]!;
        entries[i]!.pairs!.push([key, value]);
        break;
      }
      case 'not-object':
        entries[i] = { name: entries[i]!.name, pairs: null, value: pick<J>([5, 'F32', null, [], new Raw('[{}]'), true]) };
        break;
      case 'empty-name':
        entries[i]!.name = '';
        break;
      case 'duplicate-name': {
        if (!others.length) continue;
        entries[i]!.name = entries[pick(others)]!.name;
        break;
      }
      case 'metadata-name':
        entries[i]!.name = '__metadata__';
        break;
      case 'metadata-value':
        meta = new Obj([...(meta instanceof Obj ? meta.pairs : []), [pick(['format', 'x', '__proto__']), pick<J>([1, null, new Obj([]), [], true])]]);
        break;
      case 'metadata-type':
        meta = pick<J>([[], 'pt', 5, null, true]);
        break;
      case 'duplicate-metadata':
        extraPairs.push(['__metadata__', new Obj([['format', 'pt']])]);
        if (meta === undefined) extraPairs.push(['__metadata__', new Obj([])]);
        break;
      case 'root-type':
        root = pick<J>([[], 5, 'x', null, new Raw('[{}]')]);
        break;
      case 'trailing-garbage':
        tail = pick(['x', ',', '}', '{', '"', ']', '0']);
        break;
      case 'bad-utf8':
        badUtf8 = f.pick;
        break;
      case 'truncated': {
        const last = Math.max(0, ...offsets.map(([, e]) => e));
        if (last === 0) continue;
        dataSize = last - 1 - (f.pick % last);
        break;
      }
    }
    if (entryFlaw) flawed.add(i);
    flaws.push(f.kind);
  }
  const pairs: [string, J][] = [];
  if (meta !== undefined) pairs.push(['__metadata__', meta]);
  for (const k of p.order) {
    const e = entries[k]!;
    pairs.push([e.name, e.pairs ? new Obj(e.pairs) : e.value!]);
  }
  pairs.push(...extraPairs);
  // Metadata first or anywhere: rotate it into place with the seed.
  if (pairs.length > 1 && meta !== undefined) pairs.splice(p.seed % pairs.length, 0, pairs.shift()!);
  let header = new TextEncoder().encode(`${toJson(root !== undefined ? root : new Obj(pairs))}${tail}${' '.repeat(p.padding)}`);
  if (badUtf8 >= 0) {
    const k = badUtf8 % (header.length + 1);
    header = Uint8Array.from([...header.subarray(0, k), 0xff, ...header.subarray(k)]);
  }
  const bytes = new Uint8Array(8 + header.length + Math.max(0, dataSize));
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  for (let k = 8 + header.length; k < bytes.length; k++) bytes[k] = (p.seed + k * 131) & 255;
  return { name: p.file, bytes, flaws };
}

/** Files from the grammar; about half are valid. */
export const grammarFile: fc.Arbitrary<FuzzFile> = plan.map(build);

/** Valid files only (inputs to mutation and round-trip targets). */
export const validFile: fc.Arbitrary<FuzzFile> = plan.map((p) => build({ ...p, flaws: [] }));

/** A read made through a logging source. */
export interface Read {
  offset: number;
  length: number;
}

/** A memory source that logs every read, so tests can bound what the reader asks for. */
export function loggingSource(name: string, bytes: Uint8Array): { source: ByteSource; reads: Read[] } {
  const inner = memorySource(name, bytes);
  const reads: Read[] = [];
  const source: ByteSource = {
    name,
    size: inner.size,
    read(offset, length, signal) {
      reads.push({ offset, length });
      return inner.read(offset, length, signal);
    },
  };
  return { source, reads };
}

/** Opening reads at most the 8-byte length and then the header, never more than the cap nor past the file. */
export function checkOpenReads(reads: readonly Read[], size: number): string | null {
  if (reads.length > 2) return `opening made ${reads.length} reads`;
  const [first, second] = reads;
  if (first && (first.offset !== 0 || first.length > 8)) return `first read was ${first.length} bytes at ${first.offset}`;
  if (second && (second.offset !== 8 || second.length > Math.min(MAX_HEADER_BYTES, size - 8))) return `header read was ${second.length} bytes at ${second.offset}`;
  return null;
}

/** Opens a file through a logging source, failing (with a non-FormatError) if opening read more than it may. */
export async function openLogged(file: FuzzFile): Promise<{ st: SafetensorsFile; reads: Read[] }> {
  const { source, reads } = loggingSource(file.name, file.bytes);
  try {
    return { st: await openSafetensors(source), reads };
  } finally {
    const problem = checkOpenReads(reads, file.bytes.length);
    if (problem) throw new Error(`unbounded read: ${problem}`);
  }
}

/**
 * What every accepted file must satisfy: entries in bounds, sized by dtype x shape, sorted, disjoint and uniquely
 * named as in the raw JSON; each tensor read returns exactly its bytes with one read of its size; an element range
 * reads its slice; and the file round-trips through the writer (re-serialising the result is byte-identical).
 */
export async function checkAccepted({ st, reads }: { st: SafetensorsFile; reads: Read[] }, file: FuzzFile): Promise<void> {
  const { header } = st;
  const json = JSON.parse(new TextDecoder().decode(file.bytes.subarray(8, 8 + header.headerLength))) as Record<string, unknown>;
  expect(header.tensors.map((t) => t.name).sort()).toEqual(Object.keys(json).filter((k) => k !== '__metadata__').sort());
  expect(header.dataOffset + header.dataSize).toBe(file.bytes.length);
  let lastEnd = 0;
  for (const t of header.tensors) {
    expect(t.end - t.begin).toBe(numelOf(t.shape) * DTYPE_BYTES[t.dtype]);
    expect(t.begin).toBeGreaterThanOrEqual(0);
    expect(t.end).toBeLessThanOrEqual(header.dataSize);
    if (t.end > t.begin) {
      expect(t.begin).toBeGreaterThanOrEqual(lastEnd);
      lastEnd = t.end;
    }
  }
  const datas = [];
  for (const t of header.tensors) {
    const before = reads.length;
    const data = await st.readTensor(t.name);
    expect(reads.slice(before)).toEqual([{ offset: header.dataOffset + t.begin, length: t.end - t.begin }]);
    expect(data).toEqual(file.bytes.subarray(header.dataOffset + t.begin, header.dataOffset + t.end));
    const numel = numelOf(t.shape);
    if (numel > 0) {
      const start = Math.floor(numel / 3);
      const count = Math.min(numel - start, 2);
      const size = DTYPE_BYTES[t.dtype];
      expect(await st.readTensor(t.name, { start, count })).toEqual(data.subarray(start * size, (start + count) * size));
    }
    datas.push({ name: t.name, dtype: t.dtype, shape: t.shape, data });
  }
  // Empty tensors sharing an offset sort by name, so the writer may list them in another order: compare by name.
  const metadata = header.metadata ?? undefined;
  const written = serializeSafetensors(datas, metadata);
  const again = await openSafetensors(memorySource('round-trip.safetensors', written));
  const byName = (ts: { name: string }[]) => [...ts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const reread = await Promise.all(again.header.tensors.map(async ({ name, dtype, shape }) => ({ name, dtype, shape, data: await again.readTensor(name) })));
  expect(byName(reread)).toEqual(byName(datas));
  expect(Object.entries(again.header.metadata ?? {})).toEqual(Object.entries(metadata ?? {}));
  // Writing what was read back is a fixed point: the same bytes again.
  const third = await openSafetensors(memorySource('round-trip.safetensors', serializeSafetensors(reread, again.header.metadata ?? undefined)));
  expect(third.header).toEqual(again.header);
}
