/**
 * Global TIES's trim thresholds in one pass over the raw models, where the exact radix select needs two passes over
 * the decoded task vectors:
 * 1. A sample: runs of up to SAMPLE_RUN consecutive elements (sampleRuns) spread over the model in proportion to
 *    tensor sizes, read from the sources, gives each task a bracket of |tau| keys around the wanted rank (the sampled
 *    rank +- 5 standard errors of the sampled share, the runs taken as clusters, plus a margin: bracketReach).
 * 2. One scan (ties_scan) counts the keys above each bracket and lists the keys inside it (on a CPU-emulated adapter
 *    the host does both from the chunks it reads, with nothing uploaded: tiesKeyLists.ts, hostScan below).
 * 3. The host selects the exact key at the rank among each task's listed keys.
 * The majority sign is exact only from a tally under the exact thresholds: a second scan with empty brackets
 * (`exactMajority`), or the fused output pass's own tally (ties_output), which needs the sign only for tied columns
 * and so starts from the sample's estimate.
 * When a bracket misses the rank or a list overflows, nothing is guessed: `tiesStatsFast` returns null and the caller
 * runs the exact select.
 */
import { throwIfAborted } from '../../errors';
import { LINEAR_MAX_TASKS } from '../../gpu/constants';
import { LINEAR_BLOCK } from '../../gpu/linearMerge';
import { TiesScan, type TiesScanResult } from '../../gpu/tiesFused';
import type { AlignedTensor } from '../align';
import { hostTaskVectors, inputDtypes, RawUploader, readRawInputInto, type RawChunkCache } from '../stream';
import { keyListWasm } from './keyListWasm';
import { HostKeyLists, hostListsExact, type HostInput } from './tiesKeyLists';
import { rawChunkStep, rawChunksInFlight, sharesDtype } from './fusedOutput';
import type { PlanContext } from './plan';

const MAG = 0x7fffffff;
/** Above every key: the upper end of a bracket that reaches the largest |tau|. */
const ABOVE_ALL = 0x80000000;
/** The sample: runs of SAMPLE_RUN consecutive elements, how many from the model's size (sampleRuns). */
export const SAMPLE_RUN = 1024;
const MIN_SAMPLE_RUNS = 64;
const MAX_SAMPLE_RUNS = 512;
/** Most bytes the scan's lists may take on the GPU (keys, and open columns). */
const LIST_BYTES = 64 * 2 ** 20;

/** Global TIES statistics: exact thresholds, and the majority sign (exact, or estimated from decided columns). */
export interface TiesStats {
  thresholds: Uint32Array;
  majority: -1 | 0 | 1;
  majorityExact: boolean;
}

/** Whether the one-pass statistics apply: at most LINEAR_MAX_TASKS models, each tensor stored in one dtype by all. */
export function tiesFastApplies(p: PlanContext): boolean {
  return p.tasks <= LINEAR_MAX_TASKS && p.stream.tensors.every((t) => sharesDtype(p.source, t));
}

/**
 * Runs in the sample of a model of `total` elements whose trim keeps the share `q`. A task's bracket holds about
 * total * 10 * sqrt(q (1 - q) / n) keys for a sample of n, so a larger sample costs the host more and the scan's lists
 * less; n = (5 total sqrt(q (1 - q)))^(2/3) balances the two. Clamped to [MIN_SAMPLE_RUNS, MAX_SAMPLE_RUNS] (a
 * smaller sample also estimates the majority sign less well): ViT-B/32 width/2 (3M elements, q = 0.2) takes the
 * minimum, 64 runs, whose host work took 25 ms against 45 ms for 128 runs (8 tasks), with the same scan time; the
 * whole ViT-B/32 (87.5M) takes 305 runs, so each task lists about 0.6M keys. With 128 runs it would list about 1M,
 * more than the 0.84M list space each of 20 tasks has, and a list that overflows sends the merge to the exact select.
 */
export function sampleRuns(total: number, q: number): number {
  const n = Math.pow(5 * total * Math.sqrt(q * (1 - q)), 2 / 3);
  const runs = Math.max(MIN_SAMPLE_RUNS, Math.min(MAX_SAMPLE_RUNS, Math.round(n / SAMPLE_RUN)));
  return Math.min(runs, Math.ceil(total / SAMPLE_RUN));
}

/** The sample: per task, tau (f32) at the same sampled elements, in the same order for every task; each run's length. */
interface Sample {
  tau: Float32Array[];
  runs: number[];
}

/** Per task, tau (f32) at the same sampled elements (`runs` runs), in the same order for every task. */
async function sampleTau(p: PlanContext, total: number, runs: number): Promise<Sample> {
  const { tensors } = p.stream;
  const spans: { t: AlignedTensor; start: number; count: number }[] = [];
  let first = 0;
  let ti = 0;
  for (let i = 0; i < runs; i++) {
    // The run's start in whole-model element numbering, then its tensor.
    const at = Math.floor(((i + 0.5) * total) / runs);
    while (first + tensors[ti]!.numel <= at) first += tensors[ti++]!.numel;
    const t = tensors[ti]!;
    const start = Math.min(at - first, Math.max(0, t.numel - SAMPLE_RUN));
    spans.push({ t, start, count: Math.min(SAMPLE_RUN, t.numel - start) });
  }
  const size = spans.reduce((n, r) => n + r.count, 0);
  const out = Array.from({ length: p.tasks }, () => new Float32Array(size));
  let at = 0;
  for (const { t, start, count } of spans) {
    throwIfAborted(p.source.signal);
    (await hostTaskVectors(p.source, t, start, count)).forEach((tau, m) => out[m]!.set(tau, at));
    at += count;
  }
  return { tau: out, runs: spans.map((r) => r.count) };
}

/** |tau| keys of f32 values (read as int32, which keeps V8 on 32-bit integer arithmetic). */
function keysOf(tau: Float32Array): Uint32Array {
  const bits = new Int32Array(tau.buffer, tau.byteOffset, tau.length);
  const keys = new Uint32Array(tau.length);
  for (let j = 0; j < keys.length; j++) keys[j] = bits[j]! & MAG;
  return keys;
}

/**
 * The majority sign the sample suggests: every 4th sampled column's trimmed sum at the sampled thresholds (f32, row
 * order). Only a provisional value: the fused output pass checks it against its exact tally.
 */
function estimateMajority(sample: Float32Array[], keys: Uint32Array[], thresholds: Uint32Array): -1 | 1 {
  // Task by task over all sampled columns (each column's sum still adds its tasks in row order).
  const sums = new Float32Array(Math.ceil(sample[0]!.length / 4));
  sample.forEach((tau, t) => {
    const key = keys[t]!;
    const threshold = thresholds[t]!;
    for (let j = 0, c = 0; j < tau.length; j += 4, c++) if (key[j]! >= threshold) sums[c] = sums[c]! + tau[j]!;
  });
  let balance = 0;
  for (const s of sums) {
    if (s > 0) balance++;
    else if (s < 0) balance--;
  }
  return balance < 0 ? -1 : 1;
}

/** Histograms keysAt reuses from call to call (zeroed after use): allocating them each time cost more than filling them. */
const scratch = { high: new Uint32Array(0), lows: [] as Uint32Array[], slot: new Int8Array(0) };

/**
 * The values at ascending positions `ns` of `a` (u32 keys; `a` is not changed), by two 16-bit radix passes: one
 * histogram of the high halves, then one of the low halves within each wanted high half. A few ms for a task's
 * sample, where a selection per position took several times longer; it also reads the exact threshold from the
 * listed keys.
 */
export function keysAt(a: Uint32Array, ns: readonly number[]): number[] {
  if (scratch.high.length === 0) {
    scratch.high = new Uint32Array(1 << 16);
    scratch.slot = new Int8Array(1 << 16).fill(-1);
  }
  const { high, slot } = scratch;
  for (let i = 0; i < a.length; i++) high[a[i]! >>> 16]!++;
  // One walk up the histogram for every position (in ascending order): each position's digit and rank inside it.
  const digits = (hist: Uint32Array, want: readonly number[]) => {
    const order = want.map((n, i) => ({ n, i })).sort((x, y) => x.n - y.n);
    const out = new Array<{ d: number; rest: number }>(want.length);
    let below = 0;
    let d = 0;
    for (const { n, i } of order) {
      while (below + hist[d]! <= n) below += hist[d++]!;
      out[i] = { d, rest: n - below };
    }
    return out;
  };
  const tops = digits(high, ns);
  high.fill(0);
  const wanted = [...new Set(tops.map((t) => t.d))];
  while (scratch.lows.length < wanted.length) scratch.lows.push(new Uint32Array(1 << 16));
  wanted.forEach((d, i) => (slot[d] = i));
  const lows = scratch.lows;
  for (let i = 0; i < a.length; i++) {
    const at = slot[a[i]! >>> 16]!;
    if (at >= 0) lows[at]![a[i]! & 0xffff]!++;
  }
  const out = tops.map((t) => ((t.d << 16) | digits(lows[slot[t.d]!]!, [t.rest])[0]!.d) >>> 0);
  for (const d of wanted) {
    lows[slot[d]!]!.fill(0);
    slot[d] = -1;
  }
  return out;
}

/**
 * How far, in sample positions, a bracket reaches either side of the sampled rank: 5 standard errors of the sampled
 * share of keys at or above `guess`, plus a margin. Runs are clusters (consecutive elements of one tensor are alike,
 * and tensors differ in scale), so the standard error is the cluster one, from how the runs' shares vary; it is never
 * taken below the independent-sample one, sqrt(q (1 - q) / n), to which it comes down when the runs are alike. On the
 * demo suite (72 tensors of different scales, 64 runs) the independent one missed the rank and sent TIES to the exact
 * select.
 */
function bracketReach(keys: Uint32Array, runs: readonly number[], guess: number, q: number): number {
  const n = keys.length;
  let sum = 0;
  let at = 0;
  const above = runs.map((len) => {
    let c = 0;
    for (let j = at; j < at + len; j++) if (keys[j]! >= guess) c++;
    at += len;
    sum += c;
    return c;
  });
  const share = sum / n;
  let spread = 0;
  runs.forEach((len, i) => (spread += (above[i]! - share * len) ** 2));
  const m = runs.length;
  const clusterVar = m > 1 ? (m / (m - 1)) * spread / (n * n) : 0;
  const se = Math.sqrt(Math.max(clusterVar, (q * (1 - q)) / n));
  return Math.ceil(5 * se * n) + 32;
}

/** Per task (lo, above) around descending rank `rank` of `total` keys from the sampled keys, and the key at it. */
function bracketsFrom(keys: Uint32Array[], runs: readonly number[], rank: number, total: number): { brackets: Uint32Array; guess: Uint32Array } {
  const brackets = new Uint32Array(2 * keys.length);
  const guess = new Uint32Array(keys.length);
  keys.forEach((k, t) => {
    const n = k.length;
    const q = rank / total;
    // Descending position i is ascending position n - 1 - i.
    const mid = n - 1 - Math.min(n - 1, Math.floor(q * n));
    const atMid = keysAt(k, [mid])[0]!;
    const margin = bracketReach(k, runs, atMid, q);
    const hi = n - 1 - (Math.floor(q * n) - margin);
    const lo = n - 1 - (Math.ceil(q * n) + margin);
    const [atLo, atHi] = keysAt(k, [Math.max(lo, 0), Math.min(hi, n - 1)]);
    guess[t] = atMid;
    brackets[2 * t] = lo < 0 ? 0 : atLo!;
    brackets[2 * t + 1] = hi > n - 1 ? ABOVE_ALL : atHi! + 1;
  });
  return { brackets, guess };
}

/** Key-list capacity per task from the largest share of sampled keys inside a bracket (twice that, plus slack). */
function listCapacity(sample: readonly Uint32Array[], brackets: Uint32Array, total: number, tasks: number): number {
  let widest = 0;
  for (let t = 0; t < sample.length; t++) {
    const keys = sample[t]!;
    const lo = brackets[2 * t]!;
    const above = brackets[2 * t + 1]!;
    let c = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i]! >= lo && keys[i]! < above) c++;
    widest = Math.max(widest, c / keys.length);
  }
  return Math.min(Math.ceil(2 * widest * total) + 4096, Math.floor(LIST_BYTES / 4 / tasks), total);
}

/**
 * The host's key lists for a scan with these (not all empty) brackets (tiesKeyLists.ts), on a CPU-emulated adapter
 * where they are the device's and WebAssembly runs; else null, and ties_scan lists.
 */
function hostLists(p: PlanContext, brackets: Uint32Array, listCap: number): HostKeyLists | null {
  if (!p.ctx.info.isSoftware || !hostListsExact(brackets)) return null;
  const wasm = keyListWasm();
  return wasm && new HostKeyLists(wasm, brackets, listCap);
}

function emptyBrackets(brackets: Uint32Array): boolean {
  for (let t = 0; t < brackets.length; t += 2) if (brackets[t]! < brackets[t + 1]!) return false;
  return true;
}

/**
 * The scan on the host alone, where the host lists the keys (a CPU-emulated adapter): it counts the keys above each
 * bracket in the same WebAssembly loop, from the chunks read straight from the sources, so nothing is uploaded and no
 * kernel runs. The GPU there is the same CPU: uploading every input byte and running ties_scan's count took about as
 * long as Task Arithmetic's whole merge (8 x F32, ViT-B/32), the host's loop a fraction of it. Nothing is left in
 * `keep` for the output pass.
 */
async function hostScan(p: PlanContext, host: HostKeyLists, step: number): Promise<TiesScanResult> {
  const { source } = p;
  for (const t of p.stream.tensors) {
    for (let start = 0; start < t.numel; start += step) {
      throwIfAborted(source.signal);
      const count = Math.min(step, t.numel - start);
      const dtypes = inputDtypes(source, t);
      // Each input read straight into the WebAssembly memory where its dtype allows (readRawInputInto).
      const inputs: HostInput[] = dtypes.map((dtype, i) => ({ dtype, fill: (into) => readRawInputInto(source, i, t, start, count, into, 0, p.stream.options.onRead) }));
      await host.add(inputs, count);
    }
  }
  return { above: host.counts(), positive: 0, negative: 0, listed: host.results() };
}

/** One scan pass over every tensor's raw chunks. */
async function scanPass(p: PlanContext, brackets: Uint32Array, listCap: number, signs: boolean, keep: RawChunkCache | null = null): Promise<TiesScanResult> {
  const { ctx } = p;
  const step = rawChunkStep(ctx, p.tasks, p.chunkElements);
  // Empty brackets (the exact thresholds) have nothing to list.
  const empty = emptyBrackets(brackets);
  // Signs are only elected with empty brackets (the exact majority), which the host never lists.
  const host = empty || signs ? null : hostLists(p, brackets, listCap);
  if (host) return hostScan(p, host, step);
  const depth = rawChunksInFlight(ctx);
  const uploader = new RawUploader(ctx, p.source, p.stream.options.onRead, LINEAR_BLOCK, depth + 1);
  let scan: TiesScan | null = null;
  try {
    scan = new TiesScan(ctx, { brackets, maxNumel: step, listCap, signs, list: !empty });
    await ctx.scoped('ties scan', async () => {
      for (const t of p.stream.tensors) {
        for (let start = 0; start < t.numel; start += step) {
          throwIfAborted(p.source.signal);
          const count = Math.min(step, t.numel - start);
          const raw = keep ? await keep.upload(uploader, t, start, count) : await uploader.upload(t, start, count);
          const encoder = ctx.device.createCommandEncoder({ label: `ties scan ${t.name}` });
          scan!.encode(encoder, { inputs: raw.buffer, segments: raw.segments, numel: count });
          ctx.device.queue.submit([encoder.finish()]);
        }
      }
    });
    return await scan.results();
  } finally {
    scan?.destroy();
    uploader.destroy();
  }
}

/** The key at descending `rank` from the scan, or null where the bracket missed it or its list overflowed. */
function thresholdOf(above: number, listed: Uint32Array | null, rank: number): number | null {
  if (!listed || rank < above || rank >= above + listed.length) return null;
  // Descending position rank - above is ascending position length - 1 - (rank - above).
  return keysAt(listed, [listed.length - 1 - (rank - above)])[0]!;
}

const signOf = (r: TiesScanResult) => Math.sign(r.positive - r.negative) as -1 | 0 | 1;

/**
 * The statistics in one scan, with the majority sign estimated from the sample (or exact from a second scan when
 * `exactMajority`); null where the exact select must run. The scan leaves the raw chunks it read in `keep` (as far as
 * they fit), for the output pass.
 */
export async function tiesStatsFast(p: PlanContext, k: number, exactMajority: boolean, keep: RawChunkCache | null = null): Promise<TiesStats | null> {
  const total = p.stream.tensors.reduce((n, t) => n + t.numel, 0);
  const rank = Math.trunc(total * k);
  const thresholds = new Uint32Array(p.tasks);
  // The exact majority: signs elected under the exact thresholds, by a scan with empty brackets.
  // Its own phase: it reads every input again (progress counts the bytes read per phase).
  const exact = async () => {
    p.phase('TIES majority sign');
    return signOf(await scanPass(p, Uint32Array.from({ length: 2 * p.tasks }, (_, i) => thresholds[i >> 1]!), 1, true));
  };
  if (rank >= total || total === 0) return { thresholds, majority: await exact(), majorityExact: true };
  const sample = await sampleTau(p, total, sampleRuns(total, rank / total));
  const keys = sample.tau.map(keysOf);
  const { brackets, guess } = bracketsFrom(keys, sample.runs, rank, total);
  const r = await scanPass(p, brackets, listCapacity(keys, brackets, total, p.tasks), false, keep);
  for (let t = 0; t < p.tasks; t++) {
    const key = thresholdOf(r.above[t]!, r.listed[t]!, rank);
    if (key === null) return null;
    thresholds[t] = key;
  }
  if (exactMajority) return { thresholds, majority: await exact(), majorityExact: true };
  return { thresholds, majority: estimateMajority(sample.tau, keys, guess), majorityExact: false };
}
