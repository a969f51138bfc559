/**
 * Fuzzing the safetensors reader (seeded, bounded): grammar-built headers (valid exactly when flawless), random byte
 * edits and truncations of valid files, random header lengths and plain random bytes. Each input either opens (then
 * every tensor reads back its exact bytes with bounded reads and the file round-trips through the writer) or fails
 * with a FormatError naming the file; nothing else, and nothing slow.
 */
import fc from 'fast-check';
import { describe } from 'vitest';
import { fuzzCase, formatErrorNaming, mutatedBytes } from '../helpers/fuzz';
import { checkAccepted, grammarFile, openLogged, validFile, type FuzzFile } from '../helpers/fuzzSafetensors';

const rejects = formatErrorNaming<FuzzFile>((f) => f.name);
const open = (f: FuzzFile) => openLogged(f);

/** A valid file whose 8-byte header length is replaced by a random, edge or near-correct value. */
const relengthed = fc
  .tuple(validFile, fc.oneof(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(0n, 300n), fc.integer({ min: -8, max: 8 }).map(BigInt), fc.constantFrom(0n, 100_000_000n, 100_000_001n, 2n ** 53n, 2n ** 64n - 1n)))
  .map(([f, v]): FuzzFile => {
    const bytes = f.bytes.slice();
    const view = new DataView(bytes.buffer);
    // Small values are taken relative to the true length, so that near misses are tried too.
    const value = v <= 8n && v >= -8n ? view.getBigUint64(0, true) + v : v;
    view.setBigUint64(0, BigInt.asUintN(64, value), true);
    return { ...f, bytes };
  });

/** Random bytes, sometimes behind a plausible little header length. */
const noise = fc
  .tuple(fc.uint8Array({ maxLength: 96 }), fc.option(fc.integer({ min: 0, max: 120 })))
  .map(([body, length]): FuzzFile => {
    if (length === null) return { name: 'noise.safetensors', bytes: body, flaws: ['noise'] };
    const bytes = new Uint8Array(8 + body.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(length), true);
    bytes.set(body, 8);
    return { name: 'noise.safetensors', bytes, flaws: ['noise'] };
  });

describe('fuzz: safetensors reader', () => {
  fuzzCase({
    category: 'fuzz-safetensors',
    name: 'grammar headers: valid files open, every flawed file is rejected',
    input: grammarFile,
    parse: open,
    rejects,
    valid: (f) => f.flaws.length === 0,
    accepted: checkAccepted,
    numRuns: 3000,
    minShare: 0.25,
  });

  fuzzCase({
    category: 'fuzz-safetensors',
    name: 'byte edits, insertions, deletions and truncations of valid files',
    input: mutatedBytes(validFile),
    parse: open,
    rejects,
    accepted: checkAccepted,
    numRuns: 3000,
    minShare: 0.02,
  });

  fuzzCase({
    category: 'fuzz-safetensors',
    name: 'random header lengths in front of valid headers',
    input: relengthed,
    parse: open,
    rejects,
    accepted: checkAccepted,
    numRuns: 1000,
  });

  fuzzCase({
    category: 'fuzz-safetensors',
    name: 'random bytes',
    input: noise,
    parse: open,
    rejects,
    accepted: checkAccepted,
    numRuns: 1000,
  });
});
