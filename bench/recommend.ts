/**
 * Concrete engine recommendations, each tied to a measured cost of this run and ranked by its share of the merge it
 * belongs to. The advice text is fixed; the numbers in it come from the breakdown, the TIES passes, the metrics cost,
 * the launch probe and the acceptance figures.
 */
import { PARTS } from './breakdown';
import type { BenchResults } from './results';

const ADVICE: Record<string, string> = {
  [PARTS.upload]:
    'uploadRaw makes and destroys a GPU buffer per chunk per model. Keep persistent upload buffers (a small ring per model slot, or buffers mapped at creation) ' +
    'and double-buffer in ChunkStream.load: read and upload chunk i+1 while chunk i is merged.',
  [PARTS.load]:
    'ChunkStream.load launches one unpack and one task_vector kernel per model per chunk, each reading theta0 again and writing a full f32 row. Decode all T ' +
    'raw chunks into the stack in one launch, reading raw words as vec4s.',
  [PARTS['load+norms']]:
    'runMerge takes ||theta0||, ||tau_t|| and ||merged|| with sum_squares and a readback per chunk even when metrics are off. Make them part of the metrics ' +
    'option, or fold the squares into the task_vector / combine kernels as per-thread partials (sum_squares reduces with 9 workgroup-barrier rounds per 4096 ' +
    'elements, which CPU-emulated devices execute very slowly) and read all partials of a tensor back once.',
  [PARTS['no output']]: 'combine reads the whole f32 stack once more; then the merged-delta norm is another sum_squares with a readback (see the norms item).',
  [PARTS.merge]:
    'pack_add, then readBuffer, which creates a staging buffer and waits on mapAsync per chunk. Reuse staging buffers and overlap the readback of chunk i with the kernels of chunk i+1.',
};

/** Why a method costs much more than Task Arithmetic on the same models, and what to change. */
const METHOD_ADVICE: Record<string, string> = {
  breadcrumbs:
    'Its row band runs row_band_mask with one 256-thread workgroup per row of the last dimension and 4 radix passes with workgroup barriers; rows of the ' +
    'patch embedding are 32 long, so most threads idle. Give a workgroup several short rows, or one row per subgroup.',
  model_stock:
    "beginTensor streams every tensor once more for its Gram matrix (gram kernel, barrier reduction, a readback per chunk) before the output pass; the ratio " +
    'needs that pass, but it can share the norms runMerge takes anyway and read its partials back once per tensor.',
  slerp: 'beginTensor streams every tensor once more (copies into a 3-row buffer and a Gram reduction per chunk) before the output pass, as Model Stock does.',
  tall_masks: 'It writes T models: T pack_add kernels and T readbacks per chunk.',
  ties: 'See the TIES passes item.',
};

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

const pct = (x: number) => `${Number((100 * x).toPrecision(2))}%`;
const s = (ms: number) => `${Number((ms / 1000).toPrecision(3))} s`;

/** Recommendation bullets for a run's results, largest share first (empty when nothing was measured). */
export function recommendations(r: BenchResults): string[] {
  const out: { share: number; text: string }[] = [];
  const b = r.acceptance.breakdown;
  const ta = r.acceptance.taskArithmetic;
  if (ta?.fractionOfCopy != null && ta.fractionOfCopy < 0.5) {
    out.push({
      share: 1 - ta.fractionOfCopy,
      text:
        `**Task Arithmetic reaches ${pct(ta.fractionOfCopy)} of the copy kernel's bandwidth.** Its floor is one read of every input and one write of the ` +
        'output; the streamed path instead writes an f32 task-vector stack, reads it again for the norms and for combine, and packs separately. For the ' +
        'linear methods (Task Arithmetic, simple average, Model Stock, LiNeS on TA) one kernel per chunk can decode the T + 1 raw inputs as vec4 words, ' +
        'form theta0 + sum_t lambda_t (theta_t - theta0) and pack the output, which moves exactly the bytes of the bandwidth figure.',
    });
  }
  if (b) {
    for (const p of b.parts) {
      if (p.fraction >= 0.05) out.push({ share: p.fraction, text: `**${p.part}: ${s(p.ms)} (${pct(p.fraction)} of Task Arithmetic).** ${ADVICE[p.part] ?? ''}` });
    }
    const launch = r.probes.find((p) => p.unit === 'launches/s');
    const whole = b.variants.merge ?? 0;
    if (launch && whole > 0) {
      const launches = b.chunks * (b.tasks + 6);
      const ms = launches * launch.msPerIteration;
      out.push({
        share: ms / whole,
        text:
          `**Fixed cost per kernel: ${Number(launch.msPerIteration.toPrecision(3))} ms per small launch and wait (probe).** Task Arithmetic makes T + 6 launches ` +
          `and 4 queue round trips per chunk: ${launches} launches for this ${b.chunks}-chunk model, ${s(ms)} (${pct(ms / whole)}) if each paid the probe's cost. ` +
          "Encode a chunk's kernels in one command encoder and one submit, reuse parameter buffers, and pack small tensors (biases, norms) into shared chunks.",
      });
    }
  }
  const ties = r.acceptance.ties;
  if (ties && ties.passes.length > 1) {
    const threshold = ties.passes.filter((p) => p.phase === 'TIES threshold').reduce((n, p) => n + p.ms, 0);
    const majority = ties.passes.filter((p) => p.phase === 'TIES majority sign').reduce((n, p) => n + p.ms, 0);
    out.push({
      share: (threshold + majority) / ties.timing.ms,
      text:
        `**Global TIES statistics passes: threshold ${s(threshold)} (2 streaming passes) and majority sign ${s(majority)} before the output pass ` +
        `(${pct((threshold + majority) / ties.timing.ms)} of TIES).** Each pass re-reads the models and rebuilds the task vectors, because the stack stays on ` +
        'the GPU only under cacheBytes (512 MiB; 8 full-size f32 models need 3.1 GB). Keep the stack in bf16 on the GPU when that fits; and since pass 1 ' +
        "already fixes each task's threshold to one 16-bit key prefix, add up the elected signs during pass 2 for every column with no entry in that prefix " +
        'bin, leaving only those few columns to a final fix-up instead of a whole majority-sign pass.',
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
          `${m.off.tasks} x ${m.off.dtype}, ${m.off.size.label}).** Gram, row statistics and sign statistics each read the stack again with barrier reductions ` +
          'and a readback per chunk; compute them in one kernel per chunk with per-thread partials, and keep them off by default (the CLI already turns them on only for --report).',
      });
    }
  }
  return out.sort((a, b2) => b2.share - a.share).map((x) => x.text);
}
