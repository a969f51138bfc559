/**
 * The fuzz harness shared by every untrusted-input parser: a seeded, bounded fast-check property that feeds generated
 * inputs to a parser and demands that each one is either accepted (and then passes the target's own checks) or
 * rejected with the one error class the parser promises, naming the file or field at fault. Anything else (another
 * exception, a hang, an input taking too long) fails. A new target (share links, mergekit YAML, parquet, images) is a
 * category in reliability.ts plus one line, e.g.
 *   fuzzCase({ category: 'fuzz-share-link', name: 'random links', input: fc.webUrl(), parse: decodeShareLink,
 *               rejects: configErrorNaming(), numRuns: 2000 });
 * or, for a file format, `input: mutatedBytes(validParquet)` and `rejects: formatErrorNaming('x.parquet')`.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, expect } from 'vitest';
import { ConfigError, FormatError } from '../../src/engine/errors';
import { reliabilityCase, type Category } from './reliability';

/** Seed of every fuzz property, so a run is reproducible; set FUZZ_SEED to explore other inputs. */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 0x5afe7e45);

/** How a parser must reject: its error class, and what the error must name (returns a problem, or null if fine). */
export interface Rejection<I> {
  error: abstract new (...args: never[]) => Error;
  names(e: Error, input: I): string | null;
}

/** One fuzz target. */
export interface ParserTarget<I, R> {
  category: Category;
  name: string;
  input: fc.Arbitrary<I>;
  parse(input: I): R | Promise<R>;
  rejects: Rejection<I>;
  /** Checks an accepted input's result; throws on a violation. */
  accepted?(result: R, input: I): void | Promise<void>;
  /** For grammar-built inputs that know whether they are valid: acceptance must then match exactly. */
  valid?(input: I): boolean;
  numRuns: number;
  /** Longest one input may take, parse and checks included (default 2000 ms). */
  maxMs?: number;
  /** Least share of inputs that must be accepted, and rejected, so a degenerate generator cannot pass (default 0). */
  minShare?: number;
}

/** What a fuzz run saw. */
export interface FuzzStats {
  runs: number;
  accepted: number;
  rejected: number;
}

/** Runs a target's property; throws (with fast-check's shrunk counterexample) on the first violation. */
export async function fuzzParser<I, R>(t: ParserTarget<I, R>): Promise<FuzzStats> {
  const maxMs = t.maxMs ?? 2000;
  let accepted = 0;
  let rejected = 0;
  const property = fc.asyncProperty(t.input, async (input) => {
    const started = performance.now();
    let result: R | undefined;
    let error: unknown;
    let threw = false;
    try {
      result = await t.parse(input);
    } catch (e) {
      error = e;
      threw = true;
    }
    const expectValid = t.valid?.(input);
    if (!threw) {
      if (expectValid === false) throw new Error('accepted an input the grammar made invalid');
      await t.accepted?.(result as R, input);
      accepted++;
    } else {
      const e = error as Error;
      if (!(error instanceof t.rejects.error)) throw new Error(`rejected with ${e?.name}: ${e?.message} (only ${t.rejects.error.name} is allowed)`);
      const problem = t.rejects.names(e, input);
      if (problem) throw new Error(`${problem}: ${e.message}`);
      if (expectValid === true) throw new Error(`rejected a valid input: ${e.message}`);
      rejected++;
    }
    const ms = performance.now() - started;
    if (ms > maxMs) throw new Error(`one input took ${ms.toFixed(0)} ms (limit ${maxMs} ms)`);
  });
  await fc.assert(property, { seed: FUZZ_SEED, numRuns: t.numRuns, timeout: maxMs, markInterruptAsFailure: true });
  // Shrinking reruns failing inputs; a passing run counts each generated input exactly once.
  const share = t.minShare ?? 0;
  if (accepted < share * t.numRuns || rejected < share * t.numRuns) {
    throw new Error(`degenerate inputs: ${accepted} accepted, ${rejected} rejected of ${t.numRuns} (each must be at least ${share * 100}%)`);
  }
  return { runs: t.numRuns, accepted, rejected };
}

/** Registers a fuzz target as a test and a reliability case. */
export function fuzzCase<I, R>(t: ParserTarget<I, R>, timeout = 60_000): void {
  reliabilityCase(
    t.category,
    t.name,
    async () => {
      const s = await fuzzParser(t);
      return { runs: s.runs, detail: `${s.accepted} accepted, ${s.rejected} rejected` };
    },
    timeout,
  );
}

/** Rejections must be FormatErrors naming `fileName` (as `error.file` and as the message's prefix). */
export function formatErrorNaming<I>(fileName: string | ((input: I) => string)): Rejection<I> {
  return {
    error: FormatError,
    names(e, input) {
      const file = typeof fileName === 'string' ? fileName : fileName(input);
      if ((e as FormatError).file !== file) return `FormatError names ${JSON.stringify((e as FormatError).file)}, not ${JSON.stringify(file)}`;
      return e.message.startsWith(`${file}: `) ? null : 'message does not start with the file name';
    },
  };
}

/**
 * Rejections must be ConfigErrors naming a field (message prefixed by it); `fields(input)` lists the fields that are
 * wrong in a grammar-built input (the error must name one of them, or a part of one), or null when unknown.
 */
export function configErrorNaming<I>(fields: (input: I) => readonly string[] | null = () => null): Rejection<I> {
  return {
    error: ConfigError,
    names(e, input) {
      const field = (e as ConfigError).field;
      if (!field) return 'ConfigError names no field';
      if (!e.message.startsWith(`${field}: `)) return 'message does not start with the field';
      const wrong = fields(input);
      if (wrong && !wrong.some((w) => field === w || field.startsWith(`${w}.`) || field.startsWith(`${w}[`))) {
        return `ConfigError names ${JSON.stringify(field)}, but the wrong fields are ${JSON.stringify(wrong)}`;
      }
      return null;
    },
  };
}

/** One change to a byte string. */
type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'u64'; at: number; value: bigint };

/** Interesting little-endian u64 values: edges of sizes, caps and integer widths. */
const EDGE_U64 = [0n, 1n, 7n, 8n, 255n, 65_535n, 100_000_000n, 100_000_001n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...'{}[]":,\\-0e '.split('').map((c) => c.charCodeAt(0)))) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('u64' as const), at: fc.constantFrom(0, 0, 0, 8), value: fc.oneof(fc.constantFrom(...EDGE_U64), fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(0n, 4096n)) }) },
);

/** Applies mutations in order; positions wrap around the current length. */
export function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (const m of mutations) {
    const at = out.length ? m.at % (out.length + 1) : 0;
    if (m.kind === 'set' && out.length) out[m.at % out.length] = m.byte;
    else if (m.kind === 'truncate') out = out.slice(0, at);
    else if (m.kind === 'insert') out = concat(out.subarray(0, at), m.bytes, out.subarray(at));
    else if (m.kind === 'delete') out = concat(out.subarray(0, at), out.subarray(at + m.count));
    else if (m.kind === 'u64' && out.length >= m.at + 8) new DataView(out.buffer).setBigUint64(m.at, m.value, true);
  }
  return out;
}

/** Valid inputs from `valid`, each changed by 1 to `max` random mutations (byte edits, truncations, length prefixes). */
export function mutatedBytes<T extends { bytes: Uint8Array }>(valid: fc.Arbitrary<T>, max = 4): fc.Arbitrary<T> {
  return fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: max })).map(([v, ms]) => ({ ...v, bytes: mutate(v.bytes, ms) }));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** JSON text written verbatim (numbers JSON.stringify cannot write, such as 1e400, or broken fragments). */
export class Raw {
  constructor(readonly text: string) {}
}
/** A JSON object as an ordered list of pairs, so that keys can repeat or be "__proto__". */
export class Obj {
  constructor(readonly pairs: [string, J][]) {}
}
/** A JSON value to be written as text by toJson. */
export type J = null | boolean | number | string | J[] | Obj | Raw;

/** JSON text of a value (Raw verbatim, Obj pairs in order). */
export function toJson(v: J): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj) return `{${v.pairs.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  return JSON.stringify(v);
}

/** Keys that try to reach an object's prototype when a parser copies them with plain assignment. */
export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'] as const;

/** Names that must come back as plain text wherever they are shown. */
export const HOSTILE_NAMES = ['<script>alert(1)</script>', '<img src=x onerror="alert(1)">', '"><svg onload=alert(1)>', '&lt;b&gt;&amp;', 'a\u202Eb', '{{constructor.constructor("alert(1)")()}}'] as const;

/** Arbitrary JSON values whose objects often carry hostile keys, as JSON.parse builds them (own "__proto__" included). */
export function hostileJson(): fc.Arbitrary<unknown> {
  const key = fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 }));
  const object = (value: fc.Arbitrary<unknown>) =>
    fc.array(fc.tuple(key, value), { maxLength: 4 }).map((pairs) => JSON.parse(`{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`) as unknown);
  return fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom(null, true, false, 0, -1, 1e308, 0.5, '', 'auto'),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ maxLength: 10 }),
      fc.array(tie('value'), { maxLength: 4 }),
      object(tie('value')),
    ),
  })).value;
}

/** Own property names of the built-in prototypes, to check that no parser added to them. */
export function prototypeSnapshot(): string {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype].map((p) => Object.getOwnPropertyNames(p).sort().join(',')).join('|');
}

/** Registers hooks that fail a test after which a shared prototype changed (a write through a "__proto__" key). */
export function guardPrototypes(): void {
  let before = '';
  beforeEach(() => {
    before = prototypeSnapshot();
  });
  afterEach(() => {
    expect(prototypeSnapshot()).toBe(before);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
}

/** The ConfigError `f` throws; fails the test if it throws something else or nothing. */
export function expectConfigError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** Throws if any object inside `value` has a prototype other than Object's, Array's or none (a replaced prototype). */
export function checkPlainTree(value: unknown, path = 'value', seen = new Set<unknown>()): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) throw new Error(`${path} has a replaced prototype`);
  for (const k of Object.keys(value)) checkPlainTree((value as Record<string, unknown>)[k], `${path}[${JSON.stringify(k)}]`, seen);
}
