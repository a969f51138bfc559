/**
 * The human-readable summary of one run (bench/results/<date>-<adapter>.md and latest.md): the acceptance figures
 * against their targets, the probes, where the time goes with recommendations, one OPCM step and evaluation
 * throughput against their CPU twins and PyTorch, every merge against PyTorch, the CPU references, and what was
 * skipped or is not measured yet. Everything shown comes from the results object.
 */
import type { BenchResults, Breakdown, EngineFigure, HostProfile, EvalFigure, OpcmFigure, OpcmGpuRun, TorchFigure } from './results';
import { recommendations, transferBound } from './recommend';
import { VARIANTS } from './breakdown';
import { median } from './stats';

/** Targets of issue 8 on SwiftShader: TA-8 at >= 50% of the copy bandwidth, global TIES at <= 3x TA. */
export const TARGETS = { taFractionOfCopy: 0.5, tiesOverTa: 3 };

/** "1.23 s" or "45.6 ms". */
export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 100_000 ? 0 : 2)} s` : `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
}

/** Bytes in MiB or GiB. */
export function fmtBytes(b: number | null): string {
  if (b === null) return '-';
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
}

/** Three significant digits. */
export function sig(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x);
}

const pct = (x: number) => `${sig(100 * x)}%`;

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

/** The PyTorch figure for the same workload, if measured. */
export function torchFor(r: BenchResults, f: Pick<EngineFigure, 'method' | 'tasks' | 'dtype' | 'size'>): TorchFigure | undefined {
  return r.torch.find((t) => t.method === f.method && t.tasks === f.tasks && t.dtype === f.dtype && t.sizeLabel === f.size.label);
}

function acceptance(r: BenchResults): string[] {
  const { taskArithmetic: ta, ties, tiesOverTa } = r.acceptance;
  if (!ta || !ties || tiesOverTa === null) return ['## Acceptance', '', 'Not measured in this run.'];
  const paired = r.acceptance.paired ?? null;
  // The paired figure (copy kernel timed right before each TA run) when measured; else TA's median against the probe.
  const frac = paired ? paired.fraction : (ta.fractionOfCopy ?? 0);
  const verdict = (ok: boolean, miss: string) => (ok ? 'meets' : `misses: ${miss}`);
  const bound = transferBound(r, ta);
  const taRow = paired
    ? [
        `TA effective bandwidth / copy-kernel bandwidth, the probe ${copyKernelOf(r)} timed before each of ${paired.ratios.length} TA runs (then one untimed merge; median of the ratios)`,
        `${sig(median(paired.taGBs))} GB/s / ${sig(median(paired.copyGBs))} GB/s (medians); ratios ${paired.ratios.map((x) => pct(x)).join(', ')} = **${pct(frac)}**`,
      ]
    : ['TA effective bandwidth / copy-kernel bandwidth', `${sig(ta.effectiveGBs)} GB/s / ${sig(r.copyGBs)} GB/s = **${pct(frac)}**`];
  // Likewise the TIES / TA pairs (TIES run right after each timed TA run) when measured; else the two medians.
  const tiesRatio = paired?.tiesOverTa ?? tiesOverTa;
  const tiesRow =
    paired?.tiesRatios && paired.taMs && paired.tiesMs
      ? [
          `global TIES time / TA time, TIES run right after each of the ${paired.tiesRatios.length} TA runs above (median of the ratios)`,
          `${fmtMs(median(paired.tiesMs))} / ${fmtMs(median(paired.taMs))} (medians); ratios ${paired.tiesRatios.map((x) => `${sig(x)}x`).join(', ')} = **${sig(tiesRatio)}x**`,
        ]
      : ['global TIES time / TA time', `${fmtMs(ties.timing.ms)} / ${fmtMs(ta.timing.ms)} = **${sig(tiesOverTa)}x**`];
  return [
    '## Acceptance figures',
    '',
    `Task Arithmetic and global TIES (defaults) over ${ta.tasks} f32 models of ${ta.size.label} (${ta.size.params.toLocaleString('en')} parameters, ` +
      `${pct(ta.size.fractionOfVitB32)} of ViT-B/32), median of ${ta.timing.runs.length} run(s), interference metrics and the report's norms off (as the command line merges without --report), merged model written.`,
    '',
    ...table(
      ['figure', 'measured', 'target', 'verdict'],
      [
        [
          ...taRow,
          `>= ${pct(TARGETS.taFractionOfCopy)}`,
          verdict(frac >= TARGETS.taFractionOfCopy, `${sig(TARGETS.taFractionOfCopy / Math.max(frac, 1e-12))}x too slow`),
        ],
        [
          ...tiesRow,
          `<= ${TARGETS.tiesOverTa}x`,
          verdict(tiesRatio <= TARGETS.tiesOverTa, `${sig(tiesRatio / TARGETS.tiesOverTa)}x over`),
        ],
        ...(paired?.residentRatios?.length && paired.residentGBs
          ? [[
              `TA again right after each TIES run, with the raw inputs kept on the GPU by the previous merge of the same models (ResidentInputs, as the playground merges again on a slider move): effective bandwidth / the pair's copy-kernel bandwidth (median of the ratios)`,
              `${sig(median(paired.residentGBs))} GB/s / ${sig(median(paired.copyGBs))} GB/s (medians); ratios ${paired.residentRatios.map((x) => pct(x)).join(', ')} = **${pct(paired.residentFraction ?? median(paired.residentRatios))}**`,
              '-',
              'for reading',
            ]]
          : []),
        ...(bound
          ? [[
              'TA time against the least time the measured transfers allow (inputs at the upload probe\'s rate, output at the readback probe\'s)',
              `${fmtMs(bound.ms)} (${sig(bound.inBytes / 1e9)} GB at ${sig(bound.uploadGBs)} GB/s, ${sig(bound.outBytes / 1e9)} GB at ${sig(bound.readbackGBs)} GB/s) / ` +
                `${fmtMs(ta.timing.ms)} = **${pct(bound.ms / ta.timing.ms)}**`,
              '-',
              'for reading',
            ]]
          : []),
      ],
    ),
    ...(r.isSoftware
      ? []
      : [
          '',
          'The two targets were set for SwiftShader, where the copy kernel and the uploads both run in host memory. On a discrete GPU the models ' +
            'start in host memory, so a merge is bound by the host-to-GPU transfers (last row), not by the copy kernel in device memory.',
        ]),
  ];
}

function probes(r: BenchResults): string[] {
  return [
    '## Physical limits (probes, same run)',
    '',
    ...table(
      ['probe', 'one iteration', 'median per iteration', 'rate'],
      r.probes.map((p) => [p.name, p.what, `${fmtMs(p.msPerIteration)} (${p.iterations} per batch, ${p.reps} batches)`, `**${sig(p.rate)} ${p.unit}**`]),
    ),
    '',
    `Merge figures are divided by the fastest copy kernel, ${copyKernelOf(r)} (${sig(r.copyGBs)} GB/s); matmul-bound work will be divided by the matmul peak (${sig(r.matmulGflops)} GFLOP/s).`,
  ];
}

/** The copy probe the merge figures are divided by, as the probes table names it (older results timed only vec4). */
function copyKernelOf(r: BenchResults): string {
  return `"${r.copyKernel ?? 'copy kernel (vec4)'}"`;
}

function breakdownTable(b: Breakdown): string[] {
  // A part smaller than the spread of the runs of the two variants it is the difference of is not resolved.
  const noise = VARIANTS.map((v, i) => (b.spreads[v] ?? 0) + (i ? (b.spreads[VARIANTS[i - 1]!] ?? 0) : 0));
  return [
    `Task Arithmetic, ${b.tasks} x ${b.dtype}, ${b.size.label}, ${b.chunks} chunks per pass; each part is the difference of two nested variants ` +
      `(bench/breakdown.ts), median of ${b.reps} run(s) each; the last column is the spread (max - min) of the runs of those two variants:`,
    '',
    ...table(
      ['part', 'time', 'share of the merge', 'run-to-run spread'],
      b.parts.map((p, i) => [p.part, fmtMs(p.ms), Math.abs(p.ms) < noise[i]! ? `${pct(p.fraction)} (within the spread)` : pct(p.fraction), fmtMs(noise[i]!)]),
    ),
    `| **whole merge** | **${fmtMs(b.variants.merge ?? 0)}** | 100% | ${fmtMs(b.spreads.merge ?? 0)} |`,
  ];
}

function hostProfileTable(h: HostProfile): string[] {
  return [
    `The host's main thread during one more cold Task Arithmetic merge (${h.tasks} x ${h.dtype}, ${h.size.label}; ${fmtMs(h.mergeMs)} under the profiler): ` +
      `a sampling CPU profile (node:inspector, a sample every ${h.intervalUs} us, ${fmtMs(h.sampledMs)} sampled), each sample's time given to the function it stopped in (bench/hostProfile.ts):`,
    '',
    ...table(['what the thread did', 'time', 'share of the merge'], h.parts.map((p) => [p.part, fmtMs(p.ms), pct(p.ms / h.mergeMs)])),
    '',
    `Most self time: ${h.top.map((t) => `${t.fn} ${fmtMs(t.ms)}`).join('; ')}.`,
  ];
}

function passesTable(f: EngineFigure): string[] {
  const total = f.passes.reduce((s, p) => s + p.ms, 0);
  return [
    `Passes of global TIES (${f.tasks} x ${f.dtype}, ${f.size.label}, last timed run, from runMerge's progress phases):`,
    '',
    ...table(['pass', 'time', 'share'], f.passes.map((p) => [p.phase, fmtMs(p.ms), pct(p.ms / total)])),
  ];
}

function whereTimeGoes(r: BenchResults): string[] {
  const out = ['## Where the time goes', ''];
  if (r.acceptance.breakdown) out.push(...breakdownTable(r.acceptance.breakdown), '');
  if (r.acceptance.hostProfile) out.push(...hostProfileTable(r.acceptance.hostProfile), '');
  if (r.acceptance.ties && r.acceptance.ties.passes.length > 1) out.push(...passesTable(r.acceptance.ties), '');
  if (r.metricsCost.length) {
    out.push(
      'Interference metrics and norms (runMerge `metrics: true, norms: true`, as the CLI does for `--report`; off: neither), same models; cached: with a MetricsCache that already ' +
        "holds the task vectors' metrics and the method's own statistics (TIES's thresholds, Model Stock's Grams: PlanContext.memo), as the playground merges after the first " +
        "(the method's own metrics still measured); resident: cached, and with the raw inputs kept on the GPU by the merge before (ResidentInputs), as the playground merges " +
        'again on a slider move on the Interference tab; off, cached, resident: the same without the metrics, its slider move on the Accuracy tab (ratios against metrics off, ' +
        'which runs every statistics pass):',
      '',
      ...table(
        ['method', 'metrics off', 'metrics on', 'cost', 'metrics on, cached', 'cost', 'metrics on, cached, resident', 'cost', 'off, cached, resident', 'ratio'],
        r.metricsCost.map((m) => [
          `${m.method}, ${m.off.tasks} x ${m.off.dtype}, ${m.off.size.label}`,
          fmtMs(m.off.timing.ms),
          fmtMs(m.on.timing.ms),
          `${sig(m.on.timing.ms / m.off.timing.ms)}x`,
          m.cached ? fmtMs(m.cached.timing.ms) : '-',
          m.cached ? `${sig(m.cached.timing.ms / m.off.timing.ms)}x` : '-',
          m.resident ? fmtMs(m.resident.timing.ms) : '-',
          m.resident ? `${sig(m.resident.timing.ms / m.off.timing.ms)}x` : '-',
          m.offResident ? fmtMs(m.offResident.timing.ms) : '-',
          m.offResident ? `${sig(m.offResident.timing.ms / m.off.timing.ms)}x` : '-',
        ]),
      ),
      '',
    );
  }
  const recs = recommendations(r);
  if (recs.length) out.push('Recommendations (engine changes, largest measured cost first):', '', ...recs.map((x) => `- ${x}`));
  return out;
}

function merges(r: BenchResults): string[] {
  if (r.merges.length === 0) return ['## Every batch method', '', `Not part of profile \`${r.profile}\`.`];
  const rows = r.merges.map((f) => {
    const t = torchFor(r, f);
    return [
      f.method,
      String(f.tasks),
      f.dtype,
      fmtMs(f.timing.ms),
      `${sig(f.effectiveGBs)} GB/s`,
      f.fractionOfCopy === null ? '-' : pct(f.fractionOfCopy),
      sig(f.paramsPerSecond / 1e6),
      fmtBytes(f.peakGpuBytes),
      `${fmtBytes(f.rssPeakBytes)} (${fmtBytes(f.rssBeforeBytes)})`,
      t ? fmtMs(t.ms) : '-',
      t ? `${sig(t.ms / f.timing.ms)}x` : '-',
    ];
  });
  const sizes = [...new Set(r.merges.map((f) => `${f.size.label} (${f.size.params.toLocaleString('en')} parameters)`))];
  const reps = [...new Set(r.merges.map((f) => f.timing.runs.length))].join('/');
  return [
    '## Every batch method',
    '',
    `Defaults of each method, interference metrics and norms off (the command line without --report), merged model written; ${sizes.join(', ') || 'no size'}; median of ${reps || 0} run(s). ` +
      'Effective GB/s = (input models + output bytes) / time. RSS: peak during the runs (before them, models in memory included). ' +
      'PyTorch / engine = PyTorch time / engine time (above 1: the engine is faster).',
    '',
    ...table(['method', 'models', 'dtype', 'median', 'effective', '% of copy', 'Mparams/s', 'peak GPU', 'RSS peak (before)', 'PyTorch', 'PyTorch / engine'], rows),
  ];
}

function baselines(r: BenchResults): string[] {
  const out = ['## Baselines', ''];
  const t0 = r.torch[0];
  out.push(
    t0
      ? `PyTorch ${t0.torch} on ${t0.device} (${t0.threads} thread(s)), FusionBench-style state-dict code in bench/torch_merge.py, timed inside its own process; ` +
          `generation of the models is not timed on either side${t0.device === 'cpu' ? '' : '; host-to-GPU transfers and the copy back are timed, as in the engine'}.`
      : `PyTorch: not measured (${r.torchError ?? 'no result'}).`,
    '',
  );
  if (r.torchError && t0) out.push(`PyTorch error: ${r.torchError}`, '');
  const acc = r.acceptance.taskArithmetic;
  if (acc) {
    const rows = [r.acceptance.taskArithmetic, r.acceptance.ties].flatMap((f) => {
      const t = f && torchFor(r, f);
      return f && t ? [[f.method, `${f.tasks} x ${f.dtype}`, f.size.label, fmtMs(f.timing.ms), fmtMs(t.ms), `${sig(t.ms / f.timing.ms)}x`, fmtBytes(t.peakRssBytes)]] : [];
    });
    if (rows.length) out.push(...table(['method', 'models', 'size', 'engine', 'PyTorch', 'PyTorch / engine', 'PyTorch peak RSS'], rows), '');
  }
  if (r.reference.length) {
    out.push(
      'CPU reference twins (float64, src/engine/reference; models decoded to float64 before timing) against the engine on the same models in the same run:',
      '',
      ...table(
        ['method', 'models', 'size', 'reference', 'reference Mparams/s', 'engine', 'engine speed-up'],
        r.reference.map((x) => [x.method, String(x.tasks), x.size.label, fmtMs(x.timing.ms), sig(x.paramsPerSecond / 1e6), fmtMs(x.engineMs), `${sig(x.speedup)}x`]),
      ),
    );
  }
  return out;
}

/** The OPCM step: GPU path, float64 twin and PyTorch, as times and as ratios to the GPU path. */
export function opcmSection(o: OpcmFigure, matmulGflops: number | null = null): string[] {
  const shapes = o.linearWeights.map((s) => `${s.count} x ${s.rows}x${s.cols}`).join(', ');
  const gpuMs = o.gpu.timing.ms;
  const svdHow = (run: OpcmGpuRun) =>
    run.svd === 'host'
      ? 'SVDs on the host, float64 Gram eigendecomposition'
      : run.svdBatchBytes === undefined
        ? ''
        : run.svdBatchBytes > 0
          ? `SVDs of same-shape weights batched in ${fmtBytes(run.svdBatchBytes)}`
          : 'one SVD at a time';
  const first = svdHow(o.gpu);
  const rows: string[][] = [[`GPU path (runContinual${first ? `, ${first}` : ''})`, fmtMs(gpuMs), '1x', `median of ${o.gpu.timing.runs.length}; ${o.gpu.projected} projections; peak GPU ${fmtBytes(o.gpu.peakGpuBytes)}`]];
  const after = (run: OpcmGpuRun) => `median of ${run.timing.runs.length}, right after the row above; peak GPU ${fmtBytes(run.peakGpuBytes)}`;
  const other = o.gpuOtherBatching;
  if (other) rows.push([`GPU path, ${svdHow(other)}`, fmtMs(other.timing.ms), `${sig(other.timing.ms / gpuMs)}x`, after(other)]);
  const otherSvd = o.gpuOtherSvd;
  if (otherSvd) rows.push([`GPU path, ${otherSvd.svd === 'host' ? svdHow(otherSvd) : `SVDs on the GPU (block Jacobi, ${svdHow(otherSvd)})`}`, fmtMs(otherSvd.timing.ms), `${sig(otherSvd.timing.ms / gpuMs)}x`, after(otherSvd)]);
  if (o.twin) rows.push(['CPU twin (float64, reference/opcm.ts opcmStep)', fmtMs(o.twin.timing.ms), `${sig(o.twin.timing.ms / gpuMs)}x`, 'one run, same models']);
  if (o.torch) {
    const t = o.torch;
    rows.push([`PyTorch ${t.torch} on ${t.device} (${t.threads} thread(s))`, fmtMs(t.ms), `${sig(t.ms / gpuMs)}x`, `median of ${t.runs.length}; torch.linalg.svd ${fmtMs(t.svdMs)} (${pct(t.svdMs / t.ms)}); peak RSS ${fmtBytes(t.peakRssBytes)}`]);
  }
  return [
    `## One OPCM step: ${o.size.label}`,
    '',
    `The second step (t = 2) of OPCM at its defaults over 2 random f32 models of ${o.size.label} (${o.size.params.toLocaleString('en')} parameters, ${pct(o.size.fractionOfVitB32)} of ViT-B/32): ` +
      `an SVD of the merged task vector and a projection for each Linear weight (${shapes}), the other tensors added, the rescale. ` +
      "GPU time: from the end of the first step's onStep callback to the second's (reading and uploading the incoming model, task vectors and norms included). " +
      (o.gpu.svd === 'host'
        ? 'On a CPU-emulated adapter the engine factors the Linear weights on the host by default (src/engine/linalg/gramSvd.ts: each delta read back, its float64 Gram matrix eigendecomposed on one core, U and V uploaded); the projections stay on the GPU. '
        : '') +
      'PyTorch: bench/torch_opcm.py, FusionBench-style (full torch.linalg.svd per Linear weight, float32), the incoming model moved to the device inside the timed region. ' +
      'Time / GPU above 1: the GPU path is faster.',
    '',
    ...table(['path', 'time', 'time / GPU', 'how'], rows),
    ...(o.torchError ? ['', `PyTorch: not measured (${o.torchError}).`] : []),
    ...workOfStep(o.gpu.multiplyAdds !== undefined ? o.gpu : o.gpuOtherSvd, o.gpu.multiplyAdds !== undefined ? 'GPU work' : 'GPU work of the run with its SVDs on the GPU', matmulGflops),
  ];
}

/** A GPU run's work as an upper bound (the Jacobi SVDs' sweeps), and its rate against the matmul probe. */
function workOfStep(run: OpcmGpuRun | undefined, what: string, matmulGflops: number | null): string[] {
  const { multiplyAdds, sweeps } = run ?? {};
  if (!run || multiplyAdds === undefined || !sweeps?.length) return [];
  const gflop = (2 * multiplyAdds) / 1e9;
  const rate = gflop / (run.timing.ms / 1000);
  const ofPeak = matmulGflops ? `, at most ${pct(rate / matmulGflops)} of the matmul probe (${sig(matmulGflops)} GFLOP/s)` : '';
  return [
    '',
    `${what}: at most ${sig(gflop)} GFLOP in the SVDs (Jacobi sweeps ${Math.min(...sweeps)} to ${Math.max(...sweeps)}) and the projections, counted as if ` +
      `every block pair rotated in every sweep (bench/opcmRun.ts stepMultiplyAdds), so at most ${sig(rate)} GFLOP/s${ofPeak}.`,
  ];
}

/** Evaluation throughput: GPU path and CPU twin on the same images, FLOPs per image, fraction of the matmul peak. */
export function evaluationSection(figures: EvalFigure[], matmulGflops: number): string[] {
  const rows = figures.map((f) => [
    f.workload,
    `D ${f.model.hiddenSize}, ${f.model.layers} layer(s), ${f.model.imageSize}/${f.model.patchSize}, ${(f.model.params / 1e6).toFixed(2)}M params`,
    `${f.images} (${f.batch})`,
    sig(f.flopsPerImage / 1e6),
    `**${sig(f.gpu.imagesPerSecond)}**`,
    sig(f.gpu.gflops),
    f.gpu.fractionOfMatmul === null ? '-' : pct(f.gpu.fractionOfMatmul),
    f.twin ? `${sig(f.twin.imagesPerSecond)} (${f.twin.images})` : '-',
    f.twin ? `${sig(f.gpu.imagesPerSecond / f.twin.imagesPerSecond)}x` : '-',
    f.agreement ? `${f.agreement.same} / ${f.agreement.compared}` : '-',
  ]);
  return [
    '## Evaluation throughput',
    '',
    `Images/s of the GPU path (src/engine/eval/vit.ts: forward pass, head, logits read back, scored on the host; median of ${[...new Set(figures.map((f) => f.gpu.timing.runs.length))].join('/')} run(s) after an untimed one that compiles and uploads) ` +
      `and of the float64 CPU twin (src/engine/reference/vit.ts, one run on the first images) on the same images. MFLOP/image counts matrix products only (2 per multiply-add); ` +
      `% of matmul = GPU GFLOP/s / the matmul probe (${sig(matmulGflops)} GFLOP/s). GPU / twin above 1: the GPU path is faster.`,
    '',
    ...table(['workload', 'model', 'images (batch)', 'MFLOP/image', 'GPU images/s', 'GPU GFLOP/s', '% of matmul', 'twin images/s (images)', 'GPU / twin', 'same predictions'], rows),
  ];
}

function leftOut(r: BenchResults): string[] {
  const out: string[] = [];
  if (r.skipped.length) out.push('## Skipped', '', ...r.skipped.map((s) => `- ${s.what}: ${s.reason}`), '');
  if (r.notMeasured.length) out.push('## Not measured yet', '', ...r.notMeasured.map((s) => `- ${s.what}: ${s.reason}`), '');
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return out;
}

/** The whole summary. */
export function renderMarkdown(r: BenchResults): string {
  const h = r.host;
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' / ');
  return [
    `# Benchmark: ${r.adapter}, ${r.date.slice(0, 10)}`,
    '',
    `Profile \`${r.profile}\`; ${h.cpus} x ${h.cpuModel}, ${fmtBytes(h.memoryBytes)}, Node ${h.node}, ${h.platform}; load average (1/5/15 min) ${load(h.loadAverageStart)} at the start, ` +
      `${load(h.loadAverageEnd)} at the end; suite ${fmtMs(r.wallMs)} (budget ${fmtMs(r.budgetMs)}).` +
      (r.isSoftware ? ' **A CPU-emulated GPU: these figures describe this machine, not GPU speed.**' : ''),
    '',
    ...(r.incomplete ? [`**Incomplete: the run was stopped before it finished.** This snapshot was written as "${r.incomplete}" started; what the run had measured by then is below.`, ''] : []),
    ...acceptance(r),
    '',
    ...probes(r),
    '',
    ...whereTimeGoes(r),
    '',
    ...(r.opcm ?? []).flatMap((o) => [...opcmSection(o, r.matmulGflops || null), '']),
    ...(r.evaluation?.length ? [...evaluationSection(r.evaluation, r.matmulGflops), ''] : []),
    ...merges(r),
    '',
    ...baselines(r),
    '',
    ...leftOut(r),
  ].join('\n');
}
