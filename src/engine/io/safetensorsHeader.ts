/**
 * Parsing and validation of a safetensors header: an 8-byte little-endian length, then that many bytes of
 * UTF-8 JSON mapping tensor names to {dtype, shape, data_offsets}, plus an optional `__metadata__` map.
 * Everything a later read relies on (sizes, bounds, no overlaps) is checked here, once, so that a corrupt or
 * hostile file fails with a FormatError naming the field instead of a wrong read later.
 */
import { FormatError } from '../errors';
import { DTYPE_BYTES, DTYPES, type DType, type TensorInfo } from '../types';

/** Largest header we accept (the reference implementation uses the same cap). */
export const MAX_HEADER_BYTES = 100_000_000;

/** A parsed, validated header. */
export interface SafetensorsHeader {
  /** Tensors sorted by their begin offset. */
  tensors: TensorInfo[];
  metadata: Record<string, string> | null;
  headerLength: number;
  /** Absolute file offset of the data area: 8 + headerLength. */
  dataOffset: number;
  /** Bytes in the data area (file size minus 8 minus headerLength). */
  dataSize: number;
}

/** Reads and checks the u64 little-endian header length from a file's first 8 bytes. */
export function readHeaderLength(fileName: string, fileSize: number, first8: Uint8Array): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new FormatError(fileName, `file is truncated: ${fileSize} bytes, but a safetensors file starts with an 8-byte header length`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const length = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (length === 0) throw new FormatError(fileName, 'header length is 0 (the header must hold at least "{}")');
  if (length > MAX_HEADER_BYTES) {
    throw new FormatError(fileName, `header length ${length} is above the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  if (length > fileSize - 8) {
    throw new FormatError(fileName, `header length ${length} is beyond the end of the file (only ${fileSize - 8} bytes follow the length)`);
  }
  return length;
}

/** Parses and validates the JSON header; `json` holds exactly `headerLength` bytes. */
export function parseHeader(fileName: string, fileSize: number, headerLength: number, json: Uint8Array): SafetensorsHeader {
  const fail = (message: string): never => {
    throw new FormatError(fileName, message);
  };
  if (json.byteLength !== headerLength) fail(`header has ${json.byteLength} bytes, expected ${headerLength}`);
  const dataOffset = 8 + headerLength;
  const dataSize = fileSize - dataOffset;
  if (dataSize < 0) fail(`header length ${headerLength} is beyond the end of the file (${fileSize} bytes)`);

  const root = parseJsonObject(fileName, json);
  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(root)) {
    if (name === '__metadata__') metadata = parseMetadata(fileName, entry);
    else tensors.push(parseTensor(fileName, name, entry, dataSize));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : 1));
  checkNoOverlap(fileName, tensors);
  return { tensors, metadata, headerLength, dataOffset, dataSize };
}

/** Decodes strict UTF-8 and parses JSON; any failure (deep nesting included) becomes a FormatError. */
function parseJsonObject(fileName: string, json: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new FormatError(fileName, 'header is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // A stack overflow (RangeError) from pathological nesting must not escape as a crash.
    const why = e instanceof RangeError ? 'it is nested too deeply' : (e as Error).message;
    throw new FormatError(fileName, `header is not valid JSON: ${why}`);
  }
  if (!isPlainObject(value)) throw new FormatError(fileName, `header must be a JSON object, got ${describe(value)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate) throw new FormatError(fileName, duplicate);
  return value;
}

/**
 * JSON.parse keeps the last of repeated keys, so a header naming a tensor (or a tensor's dtype) twice would read as
 * one file here and as another in a reader that keeps the first; the format forbids duplicates, so they are refused.
 * Scans the already-validated text for a key repeated in the root object or in one of its member objects (entries,
 * __metadata__); deeper levels hold no keys a valid header uses. Iterative, so nesting depth costs no stack.
 */
function findDuplicateKey(text: string): string | null {
  const root = new Set<string>();
  let member: Set<string> | null = null;
  let owner = '';
  let lastRootKey = '';
  let depth = 0;
  // Jumps from one bracket or quote to the next: numbers, commas and spaces need no look.
  const token = /["{}[\]]/g;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const i = m.index;
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 2) {
        member = c === 0x7b ? new Set() : null;
        owner = lastRootKey;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else {
      let end = text.indexOf('"', i + 1);
      while (end >= 0 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end < 0) break; // unreachable for text JSON.parse accepted; guards the loop all the same
      let next = end + 1;
      while (isJsonSpace(text.charCodeAt(next))) next++;
      if (depth <= 2 && text.charCodeAt(next) === 0x3a /* : */) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (depth === 1) {
          if (root.has(key)) return key === '__metadata__' ? '"__metadata__" appears twice in the header' : `tensor "${shown(key)}" appears twice in the header (names must be unique)`;
          root.add(key);
          lastRootKey = key;
        } else if (member) {
          if (member.has(key)) return `${owner === '__metadata__' ? '__metadata__' : `tensor "${shown(owner)}":`} key "${shown(key)}" appears twice`;
          member.add(key);
        }
      }
      token.lastIndex = end + 1;
    }
  }
  return null;
}

/** Whether the quote at `q` is escaped: preceded by an odd number of backslashes. */
function isEscaped(text: string, q: number): boolean {
  let n = 0;
  while (text.charCodeAt(q - 1 - n) === 0x5c) n++;
  return n % 2 === 1;
}

/** Validates one tensor entry against the data area. */
function parseTensor(fileName: string, name: string, entry: unknown, dataSize: number): TensorInfo {
  const fail = (message: string): never => {
    throw new FormatError(fileName, name === '' ? `tensor with an empty name: ${message}` : `tensor "${shown(name)}": ${message}`);
  };
  if (name === '') fail('tensor names must be non-empty');
  if (!isPlainObject(entry)) return fail(`entry must be an object with dtype, shape and data_offsets, got ${describe(entry)}`);
  const keys = Object.keys(entry);
  const expected = ['dtype', 'shape', 'data_offsets'];
  const extra = keys.filter((k) => !expected.includes(k));
  const missing = expected.filter((k) => !keys.includes(k));
  if (extra.length) fail(`unexpected field(s) ${extra.map((k) => `"${shown(k)}"`).join(', ')} (allowed: dtype, shape, data_offsets)`);
  if (missing.length) fail(`missing field(s) ${missing.join(', ')}`);

  const dtype = entry['dtype'];
  if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
    fail(`dtype ${typeof dtype === 'string' ? JSON.stringify(shown(dtype)) : describe(dtype)} is not supported (allowed: ${DTYPES.join(', ')})`);
  }
  const shape = entry['shape'];
  if (!Array.isArray(shape)) return fail(`shape must be an array, got ${describe(shape)}`);
  shape.forEach((d, i) => {
    if (!isSize(d)) fail(`shape[${i}] = ${describe(d)} is not a non-negative integer`);
  });
  const offsets = entry['data_offsets'];
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    const got = Array.isArray(offsets) ? `an array of ${offsets.length}` : describe(offsets);
    return fail(`data_offsets must be [begin, end], got ${got}`);
  }
  const [begin, end] = offsets as unknown[];
  if (!isSize(begin) || !isSize(end)) return fail(`data_offsets [${describe(begin)}, ${describe(end)}] must be non-negative integers`);
  if (begin > end) fail(`data_offsets begin ${begin} is after end ${end}`);

  const byteSize = safeByteSize(shape as number[], DTYPE_BYTES[dtype as DType]);
  if (byteSize === null) fail(`shape [${shape.join(', ')}] is too large (its byte size exceeds ${Number.MAX_SAFE_INTEGER})`);
  if (end - begin !== byteSize) {
    fail(`data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${byteSize}`);
  }
  if (end > dataSize) {
    fail(`data_offsets [${begin}, ${end}] lie outside the data area (${dataSize} bytes): the file is truncated or corrupt`);
  }
  return { name, dtype: dtype as DType, shape: shape as number[], begin, end };
}

/** numel * elementSize, or null if any intermediate product exceeds Number.MAX_SAFE_INTEGER. */
function safeByteSize(shape: number[], elementSize: number): number | null {
  if (shape.includes(0)) return 0;
  let n = elementSize;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return null;
  }
  return n;
}

/**
 * Ranges are sorted by begin, so any overlap shows between neighbours. Empty ranges occupy no bytes and are
 * skipped: they cannot overlap anything.
 */
function checkNoOverlap(fileName: string, tensors: TensorInfo[]): void {
  let last: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin === t.end) continue;
    if (last && t.begin < last.end) {
      throw new FormatError(
        fileName,
        `tensors "${shown(last.name)}" [${last.begin}, ${last.end}] and "${shown(t.name)}" [${t.begin}, ${t.end}] overlap in the data area`,
      );
    }
    last = t;
  }
}

/** `__metadata__` must map strings to strings. */
function parseMetadata(fileName: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) throw new FormatError(fileName, `__metadata__ must be an object of strings, got ${describe(value)}`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new FormatError(fileName, `__metadata__ "${shown(k)}" must be a string, got ${describe(v)}`);
  }
  return value as Record<string, string>;
}

/** A name or key as messages show it: whole, unless absurdly long (a hostile header may hold a 100 MB key). */
function shown(name: string): string {
  return name.length <= 200 ? name : `${name.slice(0, 200)}... (${name.length} characters)`;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Short description of a JSON value for error messages (never the whole value: it may be huge). */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 40 ? `${s.slice(0, 40)}...` : s}`;
}
