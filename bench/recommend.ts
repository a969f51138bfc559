/**
 * Concrete engine recommendations, each tied to a measured cost of this run and ranked by its share of the merge it
 * belongs to. The advice text is fixed; the numbers in it come from the breakdown, the TIES passes, the metrics cost,
 * the launch probe and the acceptance figures.
 */
import { PARTS } from './breakdown';
import type { BenchResults, EngineFigure } from './results';

const ADVICE: Record<string, string> = {
  [PARTS.upload]:
    'The host copies every input byte into a mapped staging buffer and the GPU copies it once more; on a CPU-emulated device both copies run on the ' +
    'cores the kernels need, on a discrete GPU the first one and the bus bound the pass. Files (the command line\'s, the Hub cache\'s blocks, the ' +
    'page\'s small reads) are read straight into the mapped range (readTensorInto); the models here are in memory, so their one copy remains.',
  [PARTS.kernel]:
    'linear_merge reads every input once and writes the output once; what it costs above the copy kernel is its arithmetic (decode, T products and ' +
    'sums, the non-finite flag) per 16-element block. The report\'s norm partials, T + 2 stores per block, are written only with --report.',
  [PARTS['no output']]: 'One readback of a non-finite flag per 16 elements and chunk, checked on the host (the norms would be T + 2 per block).',
  [PARTS.merge]: 'The output bytes come back through the same staging buffer as the flags and go through the safetensors writer.',
};

/** Why a method costs much more than Task Arithmetic on the same models, and what to change. */
const STACK_PATH =
  'It runs on the task-vector stack: decode_stack writes T f32 rows per chunk and its kernels read and write them again, a few passes over ' +
  '4T bytes per element where the fused path (Task Arithmetic, MagMax, DARE, TIES, Consensus, TALL masks, SLERP, Model Stock) reads the raw bytes once; a fused kernel for it would remove them.';
const METHOD_ADVICE: Record<string, string> = {
  breadcrumbs:
    'Its row band selects two ranks in every row of the last dimension: on a GPU row_band_mask (a workgroup per row, 4 radix passes with barriers); ' +
    'on a CPU-emulated adapter the host (merge/plans/rowBandHost.ts: a branch-free quickselect over a short list of candidates, 6 to 13 ns per ' +
    'element), which forms the chunk\'s task vectors from the sources again and writes the masked ones over the stack, where a thread per row in ' +
    'WGSL took about 100 ns per element (width/4, 8 x F32: about 1.02 s -> 0.27 s). ' + STACK_PATH,
  consensus:
    'Without interference metrics Consensus then Task Arithmetic is one fused kernel (consensus_output), which reads every model twice per block ' +
    '(the multi-task vector, then the masks and the sum); Consensus then TIES, and any run with the metrics, use the stack. ' +
    STACK_PATH,
  dare:
    'Without interference metrics DARE then Task Arithmetic is one fused kernel (linear_merge with its DARE drop); DARE then TIES, and any run with the metrics, ' +
    'use the stack. ' +
    STACK_PATH,
  magmax: 'Without interference metrics MagMax is one fused kernel (magmax_output); with them it uses the stack. ' + STACK_PATH,
  model_stock:
    'Its ratios need a Gram pass over the whole model before the output pass: without interference metrics gram_raw per chunk or per run of small ' +
    'tensors straight from the raw models (no task-vector stack), readbacks kept in flight; the output is then the fused linear_merge. The Gram is ' +
    'T (T + 1) / 2 dot products per element, in 2 x 2 tiles of rows: on a CPU-emulated adapter its arithmetic, not its reads, is most of the pass.',
  slerp:
    'Its coefficients need a Gram pass over the whole model before the output pass (without interference metrics gram_raw straight from the raw ' +
    'models, the two task vectors and theta0 as rows; readbacks kept in flight); the output is then linear_merge with theta0\'s coefficient ' +
    '(BASE_TERM). Both passes read the models: on small models the fixed cost of each pass\'s chunks is most of it.',
  tall_masks:
    'It writes T models. Without interference metrics one fused kernel (tall_output) reads every model twice per block (the multi-task vector, ' +
    'then the masks) and writes all T outputs, T times the output bytes of Task Arithmetic, read back together; with the metrics it uses the stack, ' +
    `with T bitmask_apply and pack_add kernels and T readbacks per chunk. ${STACK_PATH}`,
  ties: 'Global TIES reads the models twice (the statistics scan, then the fused output): see the TIES passes item.',
};

/** What the TIES statistics pass costs on a CPU-emulated adapter, and what was tried there. */
const TIES_SCAN_SOFTWARE =
  'SwiftShader runs the code of every branch for all lanes, masked, so listing in the kernel cost as much for the rows with nothing to ' +
  'list: it was half the scan kernel (about 9.6 ms per 4 MiB chunk of 8 models with it, 4.8 ms without), and ten ways of listing in ' +
  'the kernel were slower or within 10% (bench/README.md). So on a CPU-emulated adapter the host lists the keys with a WebAssembly ' +
  'SIMD loop (merge/plans/tiesKeyLists.ts, about 0.6 ns per element), which also counts the keys above each bracket: the scan reads ' +
  'the chunks from the sources and uploads nothing, and ties_scan does not run. At full ViT-B/32 size (8 x F32) the pass took 1.4 to ' +
  '1.8 s that way against 3.9 to 5.4 s with the upload and the counting kernel (paired merges); the host loop is now most of it.';

/** What it costs on a GPU, where the pass is bound by uploading the models. */
const TIES_SCAN_HARDWARE =
  'On this GPU the pass costs about what a Task Arithmetic pass does: it uploads every input byte, and the output pass uploads again every ' +
  "chunk that RawChunkCache did not keep on the GPU (it keeps chunks up to runMerge's cacheBytes: by default 2 GiB on a GPU, about two " +
  "thirds of 8 full-size f32 models; the command line's --gpu-cache sets it). Where the device has the memory, a larger cache saves the rest of the second upload.";

/** How many times Task Arithmetic's time each method takes at worst over the matrix's (models, dtype) workloads, for ratios >= `min`. */
export function slowMethods(r: BenchResults, min = 3): { method: string; ratio: number; ms: number; taMs: number; where: string }[] {
  const worst = new Map<string, { method: string; ratio: number; ms: number; taMs: number; where: string }>();
  for (const f of r.merges) {
    const ta = r.merges.find((x) => x.method === 'task_arithmetic' && x.tasks === f.tasks && x.dtype === f.dtype && x.size.label === f.size.label);
    if (!ta || f.method === ta.method) continue;
    const ratio = f.timing.ms / ta.timing.ms;
    if (ratio >= min && ratio > (worst.get(f.method)?.ratio ?? 0)) {
      worst.set(f.method, { method: f.method, ratio, ms: f.timing.ms, taMs: ta.timing.ms, where: `${f.tasks} x ${f.dtype}, ${f.size.label}` });
    }
  }
  return [...worst.values()];
}

/**
 * The least time the measured host <-> GPU transfers allow a merge: its input models at the upload probe's rate and its
 * output at the readback probe's. On a discrete GPU this, not device memory, bounds a merge of models in host memory.
 */
export function transferBound(r: BenchResults, f: EngineFigure): { ms: number; inBytes: number; outBytes: number; uploadGBs: number; readbackGBs: number } | null {
  const up = r.probes.find((p) => p.name.startsWith('upload'));
  const down = r.probes.find((p) => p.name.startsWith('readback'));
  if (!up || !down || !(up.rate > 0) || !(down.rate > 0)) return null;
  const inBytes = (f.tasks + 1) * f.size.params * DTYPE_SIZE[f.dtype];
  const outBytes = Math.max(0, f.bytesMoved - inBytes);
  return { ms: inBytes / up.rate / 1e6 + outBytes / down.rate / 1e6, inBytes, outBytes, uploadGBs: up.rate, readbackGBs: down.rate };
}

const DTYPE_SIZE = { F32: 4, BF16: 2 } as const;

const pct = (x: number) => `${Number((100 * x).toPrecision(2))}%`;
const s = (ms: number) => `${Number((ms / 1000).toPrecision(3))} s`;

/** Recommendation bullets for a run's results, largest share first (empty when nothing was measured). */
export function recommendations(r: BenchResults): string[] {
  const out: { share: number; text: string }[] = [];
  const b = r.acceptance.breakdown;
  const ta = r.acceptance.taskArithmetic;
  const taFraction = r.acceptance.paired?.fraction ?? ta?.fractionOfCopy ?? null;
  const bound = ta && !r.isSoftware ? transferBound(r, ta) : null;
  if (ta && bound) {
    out.push({
      share: 1 - bound.ms / ta.timing.ms,
      text:
        `**Task Arithmetic takes ${Number((ta.timing.ms / bound.ms).toPrecision(3))}x the least time the measured transfers allow ` +
        `(${s(ta.timing.ms)} against ${s(bound.ms)}).** On this GPU the kernels are a small part (see the breakdown); the host's main thread ` +
        'is the bound: it copies every input byte into the mapped staging buffers and every output byte out of the mapped readback buffer ' +
        '(see the readback probes), and records and awaits every chunk. Only less work per byte on that thread (no copy of the output ' +
        'where the writer can take the mapped bytes, fewer allocations per chunk) would bring the merge closer to the bound.',
    });
  } else if (taFraction !== null && taFraction < 0.5) {
    out.push({
      share: 1 - taFraction,
      text:
        `**Task Arithmetic reaches ${pct(taFraction)} of the copy kernel's bandwidth.** Its fused pass (linear_merge) moves exactly the bytes of ` +
        'the bandwidth figure; the rest is the upload copy on the host, the readbacks and the arithmetic of the kernel (see the breakdown).',
    });
  }
  if (b) {
    for (const p of b.parts) {
      if (p.fraction >= 0.05) out.push({ share: p.fraction, text: `**${p.part}: ${s(p.ms)} (${pct(p.fraction)} of Task Arithmetic).** ${ADVICE[p.part] ?? ''}` });
    }
    const launch = r.probes.find((p) => p.unit === 'launches/s');
    const whole = b.variants.merge ?? 0;
    if (launch && whole > 0) {
      // One fused launch and one readback per chunk.
      const ms = b.chunks * launch.msPerIteration;
      out.push({
        share: ms / whole,
        text:
          `**Fixed cost per chunk: ${Number(launch.msPerIteration.toPrecision(3))} ms per small launch and wait (probe).** Task Arithmetic makes one launch ` +
          `and one readback per chunk: ${b.chunks} chunks, ${s(ms)} (${pct(ms / whole)}) if each paid the probe's cost in full; chunks in flight hide part of it.`,
      });
    }
  }
  const ties = r.acceptance.ties;
  if (ties && ties.passes.length > 1) {
    // Every phase before the output pass ('merge', and 'merge again...' when the majority estimate was wrong).
    const before = ties.passes.filter((p) => !p.phase.startsWith('merge'));
    const stats = before.reduce((n, p) => n + p.ms, 0);
    const names = before.map((p) => p.phase).join(', ');
    out.push({
      share: stats / ties.timing.ms,
      text:
        `**Global TIES statistics before the output pass: ${s(stats)} (${pct(stats / ties.timing.ms)} of TIES; ${names}).** A sample brackets each ` +
        "task's threshold and one scan of the raw models (ties_scan) counts the keys above the bracket; the keys inside it are listed by the " +
        `kernel through atomic counters on a GPU, by the host on a CPU-emulated adapter. ${r.isSoftware ? TIES_SCAN_SOFTWARE : TIES_SCAN_HARDWARE}`,
    });
  }
  for (const m of slowMethods(r)) {
    out.push({
      share: 1 - 1 / m.ratio,
      text: `**${m.method} takes ${Number(m.ratio.toPrecision(3))}x Task Arithmetic's time on the same models (${s(m.ms)} vs ${s(m.taMs)}, ${m.where}).** ${METHOD_ADVICE[m.method] ?? ''}`.trim(),
    });
  }
  for (const m of r.metricsCost) {
    const extra = m.on.timing.ms - m.off.timing.ms;
    if (extra > 0) {
      out.push({
        share: extra / m.off.timing.ms,
        text:
          `**Interference metrics make ${m.method} ${Number((m.on.timing.ms / m.off.timing.ms).toPrecision(3))}x slower (${s(m.off.timing.ms)} -> ${s(m.on.timing.ms)}, ` +
          `${m.off.tasks} x ${m.off.dtype}, ${m.off.size.label}).** They need the task-vector stack (no fused pass), the top-k curve's two selection ` +
          'passes (radix histograms: with global atomics on a GPU, counted by the host from the sources on a CPU-emulated adapter) and one more ' +
          'pass (topk_energy), and per chunk the Gram, ' +
          'row and sign statistics (three kernels, one readback). The playground measures the task vectors\' metrics (top-k curve, ' +
          'Gram, row and sign statistics) once per set of models (MetricsCache), so a parameter change pays only for the method\'s own (Task Arithmetic, simple averaging, ' +
          'Model Stock and SLERP have none but the merged norm: with the cache they take the fused pass), and skips the method\'s statistics pass when the parameter ' +
          'leaves its statistics unchanged (PlanContext.memo: TIES\'s thresholds at one k, Model Stock\'s and SLERP\'s Grams); the metrics of a method\'s contributions ' +
          '(kept weights, sign conflicts after it, mask usage) are kept there too under its settings but lambda, so TIES, DARE, Consensus, MagMax and LiNeS also take the ' +
          'fused pass on a lambda change. The CLI turns them on only for --report.',
      });
    }
  }
  return out.sort((a, b2) => b2.share - a.share).map((x) => x.text);
}
