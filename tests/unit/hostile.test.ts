/**
 * Hostile inputs, each a named case: safetensors files built to break a reader (lying header lengths, nesting bombs,
 * huge strings, bad or overlapping offsets, overflowing shapes, duplicate keys), configs built to pollute prototypes or
 * overflow the stack, and markup in names, which must come back unchanged as text (the page renders text nodes only).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect } from 'vitest';
import { ConfigError, FormatError } from '../../src/engine/errors';
import { memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openShardedModel } from '../../src/engine/io/model';
import { MAX_HEADER_BYTES } from '../../src/engine/io/safetensorsHeader';
import { openSafetensors } from '../../src/engine/io/safetensorsReader';
import { serializeSafetensors } from '../../src/engine/io/safetensorsWriter';
import { resolveConfig } from '../../src/engine/merge/config';
import { coefficientAt, validateCoefficient, type CoefficientSetting } from '../../src/engine/methods/scaling';
import { prototypeSnapshot } from '../helpers/fuzz';
import { loggingSource, type Read } from '../helpers/fuzzSafetensors';
import { reliabilityCase } from '../helpers/reliability';

const FILE = 'hostile.safetensors';

/** A file from raw header text (so keys can repeat), `dataSize` data bytes and an optional lying length. */
function rawFile(header: string, dataSize = 0, declared?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataSize);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const entry = (dtype: string, shape: number[], offsets: [number, number]) => JSON.stringify({ dtype, shape, data_offsets: offsets });

/** Opening `bytes` must fail with a FormatError naming the file and matching `pattern`; returns the error and reads. */
async function rejected(bytes: Uint8Array, pattern: RegExp, name = FILE): Promise<{ error: FormatError; reads: Read[] }> {
  const { source, reads } = loggingSource(name, bytes);
  const error = await openSafetensors(source).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FormatError);
  expect((error as FormatError).file).toBe(name);
  expect((error as Error).message.startsWith(`${name}: `)).toBe(true);
  expect((error as Error).message).toMatch(pattern);
  return { error: error as FormatError, reads };
}

/** A file of `size` bytes that exists only as reads: 8 header-length bytes, then `fill` everywhere; reads are logged. */
function virtualFile(size: number, headerLength: bigint, fill = 0x20): { source: ByteSource; reads: Read[] } {
  const reads: Read[] = [];
  const source: ByteSource = {
    name: FILE,
    size,
    async read(offset, length) {
      reads.push({ offset, length });
      const out = new Uint8Array(length).fill(fill);
      if (offset === 0) new DataView(out.buffer).setBigUint64(0, headerLength, true);
      return out;
    },
  };
  return { source, reads };
}

const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const MB20 = 'x'.repeat(20_000_000);
/** Time limit of the cases that build or parse tens of megabytes (the machine may be busy). */
const SLOW = 60_000;

describe('hostile safetensors files', () => {
  reliabilityCase('hostile-safetensors', 'header length larger than the file: rejected after reading 8 bytes', async () => {
    const { reads } = await rejected(rawFile('{}', 16, 10_000n), /header length 10000 is beyond the end of the file/);
    expect(reads).toEqual([{ offset: 0, length: 8 }]);
  });

  reliabilityCase('hostile-safetensors', 'header length above the 100 MB cap in a 1 TB file: rejected after reading 8 bytes', async () => {
    for (const length of [BigInt(MAX_HEADER_BYTES) + 1n, 2n ** 53n, 2n ** 64n - 1n]) {
      const { source, reads } = virtualFile(2 ** 40, length);
      await expect(openSafetensors(source)).rejects.toThrow(/above the limit of 100000000 bytes/);
      expect(reads).toEqual([{ offset: 0, length: 8 }]);
    }
    return 3;
  });

  reliabilityCase('hostile-safetensors', 'header exactly at the cap: one read of the cap, never more', async () => {
    const { source, reads } = virtualFile(2 ** 40, BigInt(MAX_HEADER_BYTES));
    await expect(openSafetensors(source)).rejects.toThrow(FormatError);
    expect(reads).toEqual([{ offset: 0, length: 8 }, { offset: 8, length: MAX_HEADER_BYTES }]);
  }, SLOW);

  reliabilityCase('hostile-safetensors', 'files shorter than the 8-byte length', async () => {
    for (const size of [0, 1, 7]) await rejected(new Uint8Array(size), /truncated/);
    return 3;
  });

  reliabilityCase('hostile-safetensors', 'nesting bombs: a million levels of arrays or objects anywhere in the header', async () => {
    const n = 1_000_000;
    await rejected(rawFile(`{"t": {"dtype": "F32", "shape": ${deepArray(n)}, "data_offsets": [0, 0]}}`), /tensor "t": shape\[0\] = an array/);
    await rejected(rawFile(`{"t": {"dtype": "F32", "shape": [], "data_offsets": ${deepArray(n)}}}`), /tensor "t": data_offsets must be \[begin, end\]/);
    await rejected(rawFile(deepObject(n)), /tensor "a": unexpected field\(s\) "a"/);
    await rejected(rawFile(`{"__metadata__": ${deepObject(n)}}`), /__metadata__ "a" must be a string, got an object/);
    await rejected(rawFile(deepArray(n)), /header must be a JSON object, got an array/);
    await rejected(rawFile('['.repeat(n)), /header is not valid JSON/);
    return 6;
  }, SLOW);

  reliabilityCase('hostile-safetensors', 'huge strings: 20 MB dtype, name, field and metadata key give short messages', async () => {
    const cases: [string, RegExp][] = [
      [`{"t": {"dtype": "${MB20}", "shape": [], "data_offsets": [0, 4]}}`, /tensor "t": dtype "x{200}\.\.\. \(20000000 characters\)" is not supported/],
      [`{"${MB20}": 5}`, /tensor "x{200}\.\.\. \(20000000 characters\)": entry must be an object/],
      [`{"t": {"dtype": "F32", "shape": [], "data_offsets": [0, 4], "${MB20}": 1}}`, /unexpected field\(s\) "x{200}\.\.\. \(20000000 characters\)"/],
      [`{"__metadata__": {"${MB20}": 1}}`, /__metadata__ "x{200}\.\.\. \(20000000 characters\)" must be a string/],
    ];
    for (const [header, pattern] of cases) {
      const { error } = await rejected(rawFile(header, 4), pattern);
      expect(error.message.length).toBeLessThan(500);
    }
    return cases.length;
  }, SLOW);

  reliabilityCase('hostile-safetensors', 'a 20 MB metadata value is valid and read back whole', async () => {
    const st = await openSafetensors(memorySource(FILE, rawFile(`{"__metadata__": {"notes": "${MB20}"}}`)));
    expect(st.header.metadata?.['notes']).toHaveLength(20_000_000);
  }, SLOW);

  reliabilityCase('hostile-safetensors', 'offsets out of range: past the data area, reversed, wrong span, past 2^53', async () => {
    await rejected(rawFile(`{"t": ${entry('F32', [4], [0, 16])}}`, 12), /tensor "t": data_offsets \[0, 16\] lie outside the data area \(12 bytes\)/);
    await rejected(rawFile(`{"t": ${entry('F32', [1], [8, 4])}}`, 12), /begin 8 is after end 4/);
    await rejected(rawFile(`{"t": ${entry('F32', [2], [0, 12])}}`, 12), /span 12 bytes, but F32 \[2\] needs 8/);
    await rejected(rawFile(`{"t": {"dtype": "U8", "shape": [1], "data_offsets": [9007199254740992, 9007199254740993]}}`, 1), /must be non-negative integers/);
    return 4;
  });

  reliabilityCase('hostile-safetensors', 'overlapping offsets: partial, identical and nested ranges name both tensors', async () => {
    await rejected(rawFile(`{"a": ${entry('F32', [4], [0, 16])}, "b": ${entry('F32', [4], [8, 24])}}`, 24), /"a" \[0, 16\] and "b" \[8, 24\] overlap/);
    await rejected(rawFile(`{"a": ${entry('U8', [8], [0, 8])}, "b": ${entry('U8', [8], [0, 8])}}`, 8), /"a" \[0, 8\] and "b" \[0, 8\] overlap/);
    await rejected(rawFile(`{"big": ${entry('U8', [32], [0, 32])}, "in": ${entry('U8', [4], [4, 8])}}`, 32), /"big" \[0, 32\] and "in" \[4, 8\] overlap/);
    return 3;
  });

  reliabilityCase('hostile-safetensors', 'touching ranges and an empty tensor inside another are not overlaps', async () => {
    const st = await openSafetensors(memorySource(FILE, rawFile(`{"a": ${entry('U8', [4], [0, 4])}, "b": ${entry('U8', [4], [4, 8])}, "e": ${entry('F32', [0, 2 ** 40], [2, 2])}}`, 8)));
    expect(st.header.tensors.map((t) => t.name)).toEqual(['a', 'e', 'b']);
  });

  reliabilityCase('hostile-safetensors', 'shape x dtype overflow: [2^40, 2^40] and friends are too large, never wrapped', async () => {
    for (const [dtype, shape] of [['F32', [2 ** 40, 2 ** 40]], ['U8', [2 ** 26, 2 ** 26, 4]], ['BOOL', [2 ** 53 - 1, 2]], ['F64', [2 ** 50, 8]]] as const) {
      await rejected(rawFile(`{"t": ${entry(dtype, [...shape], [0, 0])}}`), /tensor "t": shape .* is too large/);
    }
    return 4;
  });

  reliabilityCase('hostile-safetensors', 'duplicate tensor names are rejected (JSON.parse would silently keep the last)', async () => {
    await rejected(rawFile(`{"w": ${entry('U8', [4], [0, 4])}, "w": ${entry('U8', [4], [4, 8])}}`, 8), /tensor "w" appears twice in the header/);
    // The same name spelled with an escape is the same key.
    await rejected(rawFile(`{"w": ${entry('U8', [4], [0, 4])}, "\\u0077": ${entry('U8', [4], [4, 8])}}`, 8), /tensor "w" appears twice/);
    // Escaped quotes and backslashes inside names neither hide a duplicate nor make one.
    await rejected(rawFile(`{"a\\"\\\\": ${entry('U8', [4], [0, 4])}, "a\\"\\\\": ${entry('U8', [4], [4, 8])}}`, 8), /tensor "a"\\" appears twice/);
    const distinct = await openSafetensors(memorySource(FILE, rawFile(`{"a\\\\": ${entry('U8', [4], [0, 4])}, "a": ${entry('U8', [4], [4, 8])}, "a\\"": ${entry('U8', [0], [8, 8])}}`, 8)));
    expect(distinct.header.tensors.map((t) => t.name)).toEqual(['a\\', 'a', 'a"']);
    return 4;
  });

  reliabilityCase('hostile-safetensors', 'duplicate keys inside an entry or in __metadata__ are rejected', async () => {
    await rejected(rawFile(`{"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4], "dtype": "F32"}}`, 16), /tensor "w": key "dtype" appears twice/);
    await rejected(rawFile(`{"__metadata__": {"a": "1"}, "__metadata__": {"a": "2"}}`), /"__metadata__" appears twice/);
    await rejected(rawFile(`{"__metadata__": {"a": "1", "a": "2"}}`), /__metadata__ key "a" appears twice/);
    return 3;
  });

  reliabilityCase('hostile-safetensors', 'the same field names in different entries are not duplicates', async () => {
    const st = await openSafetensors(memorySource(FILE, rawFile(`{"a": ${entry('U8', [1], [0, 1])}, "b": ${entry('U8', [1], [1, 2])}, "__metadata__": {"a": "b"}}`, 2)));
    expect(st.header.tensors).toHaveLength(2);
  });

  reliabilityCase('hostile-safetensors', 'prototype keys as tensor names and metadata keys open and read like any name', async () => {
    const before = prototypeSnapshot();
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
    const bytes = serializeSafetensors(
      names.map((name, i) => ({ name, dtype: 'U8', shape: [1], data: Uint8Array.of(i + 1) })),
      JSON.parse('{"__proto__": "meta", "constructor": "c"}') as Record<string, string>,
    );
    const st = await openSafetensors(memorySource(FILE, bytes));
    expect(st.header.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    for (const [i, name] of names.entries()) expect(await st.readTensor(name)).toEqual(Uint8Array.of(i + 1));
    expect(Object.entries(st.header.metadata!)).toEqual([['__proto__', 'meta'], ['constructor', 'c']]);
    expect(prototypeSnapshot()).toBe(before);
  });

  reliabilityCase('hostile-safetensors', 'a sharded index cannot point outside its folder', async () => {
    for (const shard of ['../secret.safetensors', '/etc/passwd', 'a/../../b.safetensors', '..', 'c:\\x.safetensors']) {
      const index = memorySource('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: { w: shard } })));
      const opened: string[] = [];
      const err = await openShardedModel('m', index, async (f) => {
        opened.push(f);
        return memorySource(f, new Uint8Array(0));
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(/is not a plain file name/);
      expect(opened).toEqual([]);
    }
    return 5;
  });
});

describe('hostile merge configs', () => {
  const configError = (raw: unknown, field: string | RegExp): ConfigError => {
    const before = prototypeSnapshot();
    let error: unknown;
    try {
      resolveConfig(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    if (typeof field === 'string') expect((error as ConfigError).field).toBe(field);
    else expect((error as ConfigError).field).toMatch(field);
    expect(prototypeSnapshot()).toBe(before);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    return error as ConfigError;
  };

  reliabilityCase('hostile-config', '"__proto__", "constructor" and "prototype" keys at every level pollute nothing', () => {
    const texts: [string, string][] = [
      ['{"__proto__": {"polluted": 1}, "method": "ties"}', '__proto__'],
      ['{"method": "ties", "constructor": {"prototype": {"polluted": 1}}}', 'constructor'],
      ['{"method": "ties", "params": {"__proto__": {"polluted": 1}}}', 'params.__proto__'],
      ['{"method": "ties", "params": {"constructor": {"prototype": {"polluted": 1}}}}', 'params.constructor'],
      ['{"method": "ties", "options": {"__proto__": {"polluted": 1}}}', 'options.__proto__'],
      ['{"method": "ties", "params": {"lambda": [{"value": 1, "__proto__": {"polluted": 1}}]}}', 'params.lambda[0].__proto__'],
    ];
    for (const [text, field] of texts) configError(JSON.parse(text), field);
    return texts.length;
  });

  reliabilityCase('hostile-config', 'prototype member names are not method ids', () => {
    const ids = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
    for (const method of ids) configError({ method }, 'method');
    return ids.length;
  });

  reliabilityCase('hostile-config', 'a coefficient table row keyed "__proto__" stays a row, and the table keeps its prototype', () => {
    const setting = validateCoefficient('params.lambda', JSON.parse('{"table": {"__proto__": [0.25, 0.75], "w": [1, 2]}}'));
    const table = (setting as { table: Record<string, number[]> }).table;
    expect(Object.keys(table).sort()).toEqual(['__proto__', 'w']);
    expect(Object.getPrototypeOf(table) === Object.prototype || Object.getPrototypeOf(table) === null).toBe(true);
    expect(coefficientAt(setting, { tensor: '__proto__', task: 1, layers: 1 }, 0)).toBe(0.75);
  });

  reliabilityCase('hostile-config', 'tensors named like prototype members find only their own table rows', () => {
    const setting: CoefficientSetting = validateCoefficient('params.lambda', JSON.parse('{"table": {"constructor": [0.7]}, "default": 0.1}'));
    expect(coefficientAt(setting, { tensor: 'constructor', task: 0, layers: 1 }, 0)).toBe(0.7);
    for (const tensor of ['toString', 'hasOwnProperty', '__proto__', 'valueOf']) expect(coefficientAt(setting, { tensor, task: 0, layers: 1 }, 0)).toBe(0.1);
    return 5;
  });

  reliabilityCase('hostile-config', '1e400 (infinity in JSON) is refused as a number, a coefficient and a chunk size', () => {
    configError(JSON.parse('{"method": "ties", "params": {"k": 1e400}}'), 'params.k');
    configError(JSON.parse('{"method": "ties", "params": {"lambda": 1e400}}'), 'params.lambda');
    configError(JSON.parse('{"method": "ties", "params": {"lambda": [0.1, -1e400]}}'), 'params.lambda');
    configError(JSON.parse('{"method": "ties", "options": {"chunkElements": 1e400}}'), 'options.chunkElements');
    return 4;
  });

  reliabilityCase('hostile-config', 'nesting bombs (100 000 levels) in any value are a ConfigError, not a stack overflow', () => {
    const deep = deepArray(100_000);
    const texts: [string, string | RegExp][] = [
      [`{"method": "ties", "params": {"lambda": ${deep}}}`, /^params\.lambda/],
      [`{"method": "ties", "params": {"lambda": [{"value": ${deep}}]}}`, 'params.lambda[0].value'],
      [`{"method": "ties", "params": {"k": ${deep}}}`, 'params.k'],
      [`{"method": "ties", "params": {"merge": ${deep}}}`, 'params.merge'],
      [`{"method": "ties", "options": {"outputDtype": ${deep}}}`, 'options.outputDtype'],
      [`{"format": ${deep}, "method": "ties"}`, 'format'],
      [`{"method": ${deep}}`, 'method'],
    ];
    for (const [text, field] of texts) configError(JSON.parse(text), field);
    return texts.length;
  }, SLOW);

  reliabilityCase('hostile-config', 'a 20 MB string value gives a short error', () => {
    const texts: [string, string][] = [
      [`{"method": "${MB20}"}`, 'method'],
      [`{"format": "${MB20}", "method": "ties"}`, 'format'],
      [`{"method": "ties", "params": {"merge": "${MB20}"}}`, 'params.merge'],
      [`{"method": "ties", "params": {"lambda": "${MB20}"}}`, 'params.lambda'],
      [`{"method": "ties", "options": {"outputDtype": "${MB20}"}}`, 'options.outputDtype'],
    ];
    for (const [text, field] of texts) expect(configError(JSON.parse(text), field).message.length).toBeLessThan(500);
    return texts.length;
  }, SLOW);
});

describe('markup in names comes back as text', () => {
  const script = '<script>alert(1)</script>';
  const img = '<img src=x onerror=alert(1)>.safetensors';

  reliabilityCase('hostile-text', 'a tensor name with markup comes back unchanged in the error', async () => {
    await rejected(rawFile(`{${JSON.stringify(script)}: ${entry('F8', [1], [0, 1])}}`, 1), new RegExp(`tensor "${script.replace(/[()]/g, '\\$&')}": dtype "F8"`));
  });

  reliabilityCase('hostile-text', 'a file name with markup comes back unchanged at the start of the error', async () => {
    const { error } = await rejected(rawFile('{"t": 5}'), /entry must be an object/, img);
    expect(error.message.startsWith(`${img}: tensor "t"`)).toBe(true);
  });

  reliabilityCase('hostile-text', 'tensor names with markup are kept byte for byte through the reader and the writer', async () => {
    const names = [script, '"><svg onload=alert(1)>', '&lt;b&gt;&amp;', 'a\u202Eb'];
    const bytes = serializeSafetensors(names.map((name) => ({ name, dtype: 'U8', shape: [0], data: new Uint8Array(0) })));
    const st = await openSafetensors(memorySource(img, bytes));
    expect(st.name).toBe(img);
    expect(st.header.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    return names.length;
  });

  reliabilityCase('hostile-text', 'a parameter name with markup comes back unchanged in the config error', () => {
    let error: unknown;
    try {
      resolveConfig({ method: 'ties', params: { [script]: 1 } });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).field).toBe(`params.${script}`);
    expect((error as Error).message.startsWith(`params.${script}: `)).toBe(true);
  });

  reliabilityCase('hostile-text', 'the page never writes HTML: no innerHTML, dangerouslySetInnerHTML or other HTML sinks in src/', () => {
    const names = ['dangerouslySetInnerHTML', '\\.innerHTML\\b', '\\.outerHTML\\b', 'insertAdjacentHTML', 'document\\.write', 'createContextualFragment', '\\bsrcdoc\\b', 'DOMParser', 'parseHTMLUnsafe', 'setHTMLUnsafe'];
    const sinks = new RegExp(names.join('|'));
    // The scan itself must be able to fail.
    for (const sample of ['el.innerHTML = x', '<div dangerouslySetInnerHTML={{ __html: x }} />', 'document.write(x)']) expect(sample).toMatch(sinks);
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? files(p) : /\.(ts|tsx)$/.test(n) ? [p] : [];
      });
    const sources = files(join(process.cwd(), 'src'));
    expect(sources.some((f) => f.includes(join('src', 'ui')))).toBe(true);
    const offenders = sources.filter((f) => sinks.test(readFileSync(f, 'utf8'))).map((f) => relative(process.cwd(), f));
    expect(offenders).toEqual([]);
    return names.length;
  });
});
