/**
 * Interference metrics measured on the GPU while a merge streams (methods.md section 11): float64 sums of GPU
 * reductions per layer group, in the shapes of the CPU twin (src/engine/reference/metrics.ts) so they can be compared.
 * Per chunk, before the method changes the stack: the Gram matrix of the task vectors (cosines), their row stats
 * (norms, non-finite entries) and sign statistics; after: the method's contributions (kept fractions, sign conflicts
 * left after trimming), its usage counts (TALL / Consensus) and the merged delta's norm. The top-k curve needs a
 * global selection: `topkRetained` runs it as extra passes.
 */
import type { GpuContext } from '../gpu/device';
import type { Model } from '../io/model';
import { rowStats, signStats, stackStats, topkEnergy, usageHistogram, type SignStatsCounts } from '../gpu/mergeReductions';
import { selectTaskRanks } from './plans/hostSelect';
import { layerIndexOf } from '../methods/scaling';
import type { AlignedTensor } from './align';
import type { EmitInfo, PlanContext } from './plans/plan';
import { taskSegments } from './plans/util';
import type { Chunk } from './stream';
import { PlanMemo } from './planMemo';

/** Sign statistics over a set of coordinates (as reference/metrics.ts SignStats). */
export interface SignStats {
  coordinates: number;
  conflictRate: number;
  agreement: number;
}

type Layer = number | null;

/** Every interference metric of a merge. Per-layer lists: tensors outside the blocks first (layer null), then blocks. */
export interface InterferenceReport {
  /** Pairwise cosine of the task vectors, [T][T], over the whole model and per layer group. */
  cosine: { total: number[][]; layers: { layer: Layer; cos: number[][] }[] };
  /** L2 norms of [tau_1 .. tau_T, merged task vector], whole model and per layer group. */
  norms: { total: number[]; layers: { layer: Layer; norms: number[] }[] };
  /** Sign conflicts between the task vectors (before) and between the method's contributions (after trimming/masking). */
  signs: {
    taskVectors: { total: SignStats; layers: ({ layer: Layer } & SignStats)[] };
    contributions: { total: SignStats; layers: ({ layer: Layer } & SignStats)[] } | null;
  };
  /** Fraction of each task's entries the method keeps (non-zero contributions), whole model and per layer group. */
  kept: { total: number[]; layers: { layer: Layer; kept: number[] }[] } | null;
  /** TALL / Consensus: weights used by exactly c of the T task masks (c = 0..T). */
  usage: { total: number[]; layers: { layer: Layer; counts: number[] }[] } | null;
  /** Norm kept by the TIES global trim at each fraction k: retained[t][i] = ||trim_{ks[i]}(tau_t)|| / ||tau_t||. */
  topk: { ks: number[]; retained: number[][] } | null;
  /** Non-finite (NaN or infinite) task-vector entries per tensor and model: such entries spread into any merge. */
  nonFinite: { tensor: string; model: number; count: number }[];
}

/** The fractions k of the top-k curve. */
export const TOPK_FRACTIONS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1];

interface SignAcc {
  columns: number;
  conflicts: number;
  agreementSum: number;
}

/** Float64 accumulators of one layer group. */
interface Group {
  gram: Float64Array;
  sq: Float64Array;
  signs: SignAcc;
  after: SignAcc;
  nonZero: Float64Array;
  elements: number;
  usage: Float64Array;
}

const signStatsOf = (a: SignAcc): SignStats => ({
  coordinates: a.columns,
  conflictRate: a.columns ? a.conflicts / a.columns : 0,
  agreement: a.columns ? a.agreementSum / a.columns : 1,
});

/** The key of a chunk's statistics in `known` (MetricsCache): its tensor and first element. */
const chunkKey = (tensor: string, start: number) => `${tensor}@${start}`;

/**
 * What the metrics measure of one chunk's method output besides the merged delta (`after`): each task's non-zero
 * contributions, the sign statistics of the contributions and the usage counts' histogram (null where the method
 * reports no contributions or no usage).
 */
export interface ContributionStats {
  nonZero: number[] | null;
  signs: SignStatsCounts | null;
  usage: number[] | null;
}

/** Contribution statistics per chunk (`tensor@start`), as one merge measured them. */
export type ContributionMetrics = Map<string, ContributionStats>;

/** Whether `stats` holds every chunk of `tensors` (cut as `chunks` cuts each). */
export function coversAll(stats: ReadonlyMap<string, unknown>, tensors: readonly AlignedTensor[], chunks: (t: AlignedTensor) => readonly { start: number }[]): boolean {
  return tensors.every((t) => chunks(t).every((r) => stats.has(chunkKey(t.name, r.start))));
}

/** Bytes a ContributionMetrics takes, about (for PlanMemo's bound). */
export function contributionBytes(stats: ContributionMetrics, tasks: number): number {
  return stats.size * (128 + 16 * (tasks + 4));
}

/** Collects the metrics of one merge chunk by chunk. */
export class MetricsAccumulator {
  private readonly groups = new Map<Layer, Group>();
  private readonly total: Group;
  private sawContributions = false;
  private sawUsage = false;
  private readonly nonFinite: InterferenceReport['nonFinite'] = [];
  private topk: InterferenceReport['topk'] = null;

  /**
   * `known`: chunk statistics measured by an earlier merge of the same task vectors (MetricsCache); new ones are added.
   * `record`: where `after` puts each chunk's contribution statistics (for PlanContext.memo), or null.
   */
  constructor(
    private readonly tasks: number,
    private readonly known: Map<string, ChunkStats> | null = null,
    private readonly record: ContributionMetrics | null = null,
  ) {
    this.total = this.newGroup();
  }

  private newGroup(): Group {
    const T = this.tasks;
    const signs = () => ({ columns: 0, conflicts: 0, agreementSum: 0 });
    return { gram: new Float64Array(T * T), sq: new Float64Array(T + 1), signs: signs(), after: signs(), nonZero: new Float64Array(T), elements: 0, usage: new Float64Array(T + 1) };
  }

  private groupsOf(tensor: string): Group[] {
    const layer = layerIndexOf(tensor);
    let g = this.groups.get(layer);
    if (!g) this.groups.set(layer, (g = this.newGroup()));
    return [g, this.total];
  }

  /**
   * Launches the task-vector statistics of a chunk (call before the method changes the stack). Resolves, once they
   * are read back, to a function that adds them to the totals and returns each row's sum of squares: the caller calls
   * these in chunk order, so the totals do not depend on when readbacks complete.
   */
  async before(ctx: GpuContext, c: Chunk): Promise<() => Float64Array> {
    const T = this.tasks;
    const key = chunkKey(c.tensor.name, c.start);
    let stats = this.known?.get(key);
    if (!stats) {
      stats = await stackStats(ctx, c.stack, T, c.count);
      this.known?.set(key, stats);
    }
    const measured = stats;
    return () => this.addStats(c.tensor.name, c.count, measured);
  }

  /** Adds one chunk's task-vector statistics to the totals; returns each row's sum of squares. */
  private addStats(tensor: string, count: number, { gram: g, rows, signs }: ChunkStats): Float64Array {
    rows.forEach((r, t) => {
      if (r.nonFinite > 0) this.nonFinite.push({ tensor, model: t, count: r.nonFinite });
    });
    for (const group of this.groupsOf(tensor)) {
      g.forEach((v, i) => (group.gram[i] = group.gram[i]! + v));
      rows.forEach((r, t) => (group.sq[t] = group.sq[t]! + r.sumSquares));
      group.signs.columns += signs.columns;
      group.signs.conflicts += signs.conflicts;
      group.signs.agreementSum += signs.agreementSum;
      group.elements += count;
    }
    return Float64Array.from(rows, (r) => r.sumSquares);
  }

  /** Whether the cache holds the statistics of every chunk (`tensor@start`, as `chunks` cuts each tensor). */
  knowsAll(tensors: readonly AlignedTensor[], chunks: (t: AlignedTensor) => readonly { start: number }[]): boolean {
    const known = this.known;
    return !!known && tensors.every((t) => chunks(t).every((r) => known.has(chunkKey(t.name, r.start))));
  }

  /**
   * For a tensor merged without the stack (a fused pass of a method that reports no contributions, or whose
   * contribution statistics an earlier merge measured: `contributions`; see knowsAll): adds its chunks' cached
   * statistics, in chunk order, and its merged delta's sum of squares, as `before` and `after` would have. Returns each
   * task vector's sum of squares over the tensor (for its report's norms).
   */
  addKnownTensor(t: AlignedTensor, chunks: readonly { start: number; count: number }[], mergedSq: number, contributions: ContributionMetrics | null = null): Float64Array {
    const T = this.tasks;
    const tvSq = new Float64Array(T);
    for (const r of chunks) this.addStats(t.name, r.count, this.known!.get(chunkKey(t.name, r.start))!).forEach((v, i) => (tvSq[i] = tvSq[i]! + v));
    for (const group of this.groupsOf(t.name)) group.sq[T] = group.sq[T]! + mergedSq;
    if (contributions) for (const r of chunks) this.addContributions(t.name, contributions.get(chunkKey(t.name, r.start))!);
    return tvSq;
  }

  /** Adds one chunk's contribution statistics to the totals. */
  private addContributions(tensor: string, { nonZero, signs, usage }: ContributionStats): void {
    this.sawContributions ||= nonZero !== null;
    this.sawUsage ||= usage !== null;
    for (const group of this.groupsOf(tensor)) {
      nonZero?.forEach((n, t) => (group.nonZero[t] = group.nonZero[t]! + n));
      if (signs) {
        group.after.columns += signs.columns;
        group.after.conflicts += signs.conflicts;
        group.after.agreementSum += signs.agreementSum;
      }
      usage?.forEach((n, i) => (group.usage[i] = group.usage[i]! + n));
    }
  }

  /**
   * Launches the statistics of the method's output of a chunk: contributions, usage counts and the merged delta. Every
   * kernel is submitted before this returns its promise (the next chunk may then overwrite these buffers). Resolves to
   * a function that adds them to the totals and returns the delta's sum of squares (call in chunk order, as `before`).
   */
  async after(ctx: GpuContext, c: Chunk, info: EmitInfo | void, delta: GPUBuffer): Promise<() => number> {
    const T = this.tasks;
    const contributions = info?.contributions;
    const [[merged], kept, signs, usage] = await Promise.all([
      rowStats(ctx, delta, 1, c.count),
      contributions ? rowStats(ctx, contributions, T, c.count) : null,
      contributions ? signStats(ctx, contributions, T, c.count) : null,
      info?.usage ? usageHistogram(ctx, info.usage, c.count, T) : null,
    ]);
    const stats: ContributionStats = { nonZero: kept?.map((r) => r.nonZero) ?? null, signs, usage };
    return () => {
      for (const group of this.groupsOf(c.tensor.name)) group.sq[T] = group.sq[T]! + merged!.sumSquares;
      this.addContributions(c.tensor.name, stats);
      this.record?.set(chunkKey(c.tensor.name, c.start), stats);
      return merged!.sumSquares;
    };
  }

  /** Records the top-k curve (see topkRetained). */
  setTopk(topk: InterferenceReport['topk']): void {
    this.topk = topk;
  }

  result(): InterferenceReport {
    const T = this.tasks;
    const layers = [...this.groups.keys()].sort((a, b) => (a === null ? -1 : b === null ? 1 : a - b));
    const cos = (g: Group) =>
      Array.from({ length: T }, (_, i) =>
        Array.from({ length: T }, (_, j) => {
          const d = Math.sqrt(g.gram[i * T + i]! * g.gram[j * T + j]!);
          return i === j ? (d > 0 ? 1 : 0) : d > 0 ? g.gram[i * T + j]! / d : 0;
        }),
      );
    const norms = (g: Group) => Array.from(g.sq, Math.sqrt);
    const each = <R>(f: (g: Group) => R) => layers.map((layer) => ({ layer, ...(f(this.groups.get(layer)!) as object) })) as ({ layer: Layer } & R)[];
    return {
      cosine: { total: cos(this.total), layers: layers.map((layer) => ({ layer, cos: cos(this.groups.get(layer)!) })) },
      norms: { total: norms(this.total), layers: layers.map((layer) => ({ layer, norms: norms(this.groups.get(layer)!) })) },
      signs: {
        taskVectors: { total: signStatsOf(this.total.signs), layers: each((g) => signStatsOf(g.signs)) },
        contributions: this.sawContributions ? { total: signStatsOf(this.total.after), layers: each((g) => signStatsOf(g.after)) } : null,
      },
      kept: this.sawContributions
        ? {
            total: Array.from(this.total.nonZero, (n) => (this.total.elements ? n / this.total.elements : 0)),
            layers: layers.map((layer) => {
              const g = this.groups.get(layer)!;
              return { layer, kept: Array.from(g.nonZero, (n) => (g.elements ? n / g.elements : 0)) };
            }),
          }
        : null,
      usage: this.sawUsage ? { total: Array.from(this.total.usage), layers: layers.map((layer) => ({ layer, counts: Array.from(this.groups.get(layer)!.usage) })) } : null,
      topk: this.topk,
      nonFinite: this.nonFinite,
    };
  }
}

/**
 * The TIES top-k curve of every task vector: thresholds at each fraction in `ks` (2 selection passes), then one pass
 * summing the squares that each trim keeps (topk_energy, every fraction at once). Uses the plan context's stream
 * (cached chunks are not read again).
 */
export async function topkRetained(p: PlanContext, ks: readonly number[] = TOPK_FRACTIONS): Promise<InterferenceReport['topk']> {
  const total = p.stream.tensors.reduce((n, t) => n + t.numel, 0);
  if (total === 0) return null;
  const ranks = ks.map((k) => Math.trunc(total * k));
  const wanted = ranks.filter((r) => r < total);
  const bits = Array.from({ length: p.tasks }, () => new Uint32Array(ks.length));
  p.phase('top-k curve');
  if (wanted.length) {
    const selection = await selectTaskRanks(p, 'top-k curve', taskSegments(p.tasks).map(() => wanted), null);
    selection.forEach((r, t) => ranks.forEach((rank, i) => (bits[t]![i] = rank < total ? r.bits[wanted.indexOf(rank)]! : 0)));
  }
  // One topk_energy pass: per task, the squares kept at each k, then (threshold 0) all of them.
  const levels = ks.length + 1;
  const thresholds = new Uint32Array(p.tasks * levels);
  bits.forEach((b, t) => thresholds.set(b, t * levels));
  const energy = new Float64Array(p.tasks * levels);
  await p.stream.forEach(async (c) => {
    (await topkEnergy(p.ctx, c.stack, p.tasks, c.count, thresholds)).forEach((v, i) => (energy[i] = energy[i]! + v));
  });
  const kept = Array.from({ length: p.tasks }, (_, t) => energy.subarray(t * levels, t * levels + ks.length));
  const all = Float64Array.from({ length: p.tasks }, (_, t) => energy[t * levels + ks.length]!);
  return { ks: [...ks], retained: kept.map((row, t) => Array.from(row, (s) => (all[t]! > 0 ? Math.sqrt(s / all[t]!) : 0))) };
}

/** What stackStats measures of one chunk's task vectors. */
type ChunkStats = Awaited<ReturnType<typeof stackStats>>;

/** The metrics of one set of task vectors kept by a MetricsCache. */
export interface TaskVectorMetrics {
  /** The top-k curve, once measured. */
  topk?: InterferenceReport['topk'];
  /** Per chunk (`tensor@start`): the Gram matrix, row and sign statistics of its task vectors. */
  chunks: Map<string, ChunkStats>;
  /**
   * What methods compute from these task vectors alone, whatever the parameters a slider moves (PlanContext.memo):
   * keyed by the plan with the parameters it depends on, e.g. TIES's thresholds at one k, Model Stock's Gram matrices.
   */
  plans: PlanMemo;
}

/**
 * The metrics of the task vectors themselves, kept across merges of the same models: the top-k curve and, per chunk,
 * the Gram matrix (cosines), the row statistics (norms, non-finite entries) and the sign statistics. Nothing a method
 * or its parameters set changes them, so the playground measures them once per set of models instead of on every
 * slider step (the top-k curve alone took about 1.1 s of the 5.9 s from a lambda change to the charts on the demo
 * suite, CPU-emulated GPU). The methods' own statistics passes keep their results here too (`plans`), so a slider that
 * does not change them skips the pass. Keyed by the base and the models (as objects, in order), the merged tensors and
 * the chunking (its blocks fix the float sums' order, so what comes from here equals what would be measured again).
 * Holds the last `capacity` sets.
 */
export class MetricsCache {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  private readonly sets = new Map<string, TaskVectorMetrics>();

  constructor(private readonly capacity = 8) {}

  /** The cache key of a merge's task vectors. */
  keyOf(base: Model, models: readonly Model[], tensors: readonly AlignedTensor[], chunking: string): string {
    const id = (m: Model) => {
      let n = this.ids.get(m);
      if (n === undefined) this.ids.set(m, (n = this.nextId++));
      return n;
    };
    return JSON.stringify([id(base), models.map(id), tensors.map((t) => [t.name, t.numel]), chunking, TOPK_FRACTIONS]);
  }

  /** The (possibly empty) entry of `key`, made the most recently used; the oldest beyond `capacity` are dropped. */
  entry(key: string): TaskVectorMetrics {
    const found = this.sets.get(key) ?? { chunks: new Map(), plans: new PlanMemo() };
    this.sets.delete(key);
    this.sets.set(key, found);
    while (this.sets.size > this.capacity) this.sets.delete(this.sets.keys().next().value!);
    return found;
  }
}

/** A copy of a top-k curve (reports may be changed by their readers; the cache's must not). */
export function copyTopk(curve: InterferenceReport['topk']): InterferenceReport['topk'] {
  return curve && { ks: [...curve.ks], retained: curve.retained.map((row) => [...row]) };
}
