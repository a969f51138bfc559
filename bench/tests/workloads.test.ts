/** The OPCM and evaluation workloads' pure parts: Linear-weight shapes, FLOPs per image, configs, and their summaries. */
import { describe, expect, it } from 'vitest';
import { evaluationSection, opcmSection, renderMarkdown } from '../markdown';
import { flopsPerImage, vitConfigOf } from '../evalRun';
import { linearShapes, opcmFigure, stepMultiplyAdds } from '../opcmRun';
import { svdMultiplyAdds } from '../../src/engine/gpu/svd';
import { RESULTS_FORMAT, type BenchResults, type EvalFigure } from '../results';
import { scaledVit, VIT_B32, vitTensors } from '../vitShapes';

describe('OPCM workload', () => {
  it('projects the 72 Linear weights of ViT-B/32 (48 of 768x768, 12 of 3072x768, 12 of 768x3072) and no embedding or norm', () => {
    expect(linearShapes(vitTensors(VIT_B32))).toEqual([
      { rows: 768, cols: 768, count: 48 },
      { rows: 3072, cols: 768, count: 12 },
      { rows: 768, cols: 3072, count: 12 },
    ]);
    expect(linearShapes(vitTensors(scaledVit(4, 1)))).toEqual([
      { rows: 192, cols: 192, count: 4 },
      { rows: 768, cols: 192, count: 1 },
      { rows: 192, cols: 768, count: 1 },
    ]);
  });

  it('states the shapes, the three paths and their ratios to the GPU path', () => {
    const fig = opcmFigure(scaledVit(4, 1), { timing: { ms: 2000, runs: [2100, 2000, 1900], warmups: 0 }, peakGpuBytes: 3 * 2 ** 20, projected: 6 });
    fig.twin = { timing: { ms: 5000, runs: [5000], warmups: 0 } };
    fig.torch = { ms: 40, runs: [40], svdMs: 30, device: 'cpu', torch: '1.13', threads: 1, peakRssBytes: 2 ** 28 };
    const md = opcmSection(fig).join('\n');
    expect(md).toContain('4 x 192x192, 1 x 768x192, 1 x 192x768');
    expect(md).toContain('| GPU path (runContinual) | 2.00 s | 1x | median of 3; 6 projections; peak GPU 3.0 MiB |');
    expect(md).toContain('| 5.00 s | 2.5x |');
    expect(md).toContain('| 40.0 ms | 0.02x | median of 1; torch.linalg.svd 30.0 ms (75%)');
    fig.torch = null;
    fig.torchError = 'time budget';
    expect(opcmSection(fig).join('\n')).toContain('PyTorch: not measured (time budget).');
    expect(opcmSection(fig).join('\n')).not.toContain('GPU work');
    // With the SVDs' sweep counts: the work as an upper bound and its rate against the matmul probe.
    fig.gpu = { ...fig.gpu, multiplyAdds: 1.5e9, sweeps: [6, 8, 7] };
    expect(opcmSection(fig, 3).join('\n')).toContain('GPU work: at most 3 GFLOP in the SVDs (Jacobi sweeps 6 to 8)');
    expect(opcmSection(fig, 3).join('\n')).toContain('so at most 1.5 GFLOP/s, at most 50% of the matmul probe (3 GFLOP/s).');
  });

  it('states where the SVDs ran: the host first (a CPU-emulated adapter), then the GPU with its work count', () => {
    const fig = opcmFigure(scaledVit(4, 1), { timing: { ms: 500, runs: [500], warmups: 0 }, peakGpuBytes: 2 ** 20, projected: 6, svd: 'host', svdBatchBytes: 256 * 2 ** 20 });
    fig.gpuOtherSvd = { timing: { ms: 2000, runs: [2000], warmups: 0 }, peakGpuBytes: 2 ** 21, svd: 'gpu', svdBatchBytes: 256 * 2 ** 20, multiplyAdds: 1.5e9, sweeps: [6, 8] };
    const md = opcmSection(fig, 3).join('\n');
    expect(md).toContain('| GPU path (runContinual, SVDs on the host, float64 Gram eigendecomposition) | 500 ms | 1x |');
    expect(md).toContain('| GPU path, SVDs on the GPU (block Jacobi, SVDs of same-shape weights batched in 256.0 MiB) | 2.00 s | 4x | median of 1, right after the row above');
    expect(md).toContain('factors the Linear weights on the host by default');
    expect(md).toContain('GPU work of the run with its SVDs on the GPU: at most 3 GFLOP in the SVDs (Jacobi sweeps 6 to 8)');
    expect(md).toContain('so at most 1.5 GFLOP/s, at most 50% of the matmul probe');
  });

  it('counts a step\'s multiply-adds from each weight\'s SVD sweeps and its projection products', () => {
    const layers = [
      { rows: 192, cols: 192, svdSweeps: 9 },
      { rows: 768, cols: 192, svdSweeps: 7 },
    ];
    const projection = (m: number, n: number) => 2 * Math.min(m, n) * m * n + 2 * Math.min(m, n) ** 2 * n;
    expect(stepMultiplyAdds(layers)).toBe(svdMultiplyAdds(192, 192, 9) + projection(192, 192) + svdMultiplyAdds(768, 192, 7) + projection(768, 192));
    expect(stepMultiplyAdds([{ rows: 4, cols: 4 }])).toBeNull();
  });
});

describe('evaluation workload', () => {
  it('counts 8.82 GFLOP per ViT-B/32 image (4.41 G multiply-adds) and the demo model from its config', () => {
    const config = vitConfigOf(VIT_B32);
    expect(config).toMatchObject({ hiddenSize: 768, numHeads: 12, intermediateSize: 3072, imageSize: 224, patchSize: 32, numChannels: 3, projectionDim: null });
    // patch 2*49*3*32^2*768 + 12 * (8*50*768^2 + 4*50^2*768 + 4*50*768*3072) + head 2*768*10
    expect(flopsPerImage(config, 10)).toBe(231_211_008 + 12 * (235_929_600 + 7_680_000 + 471_859_200) + 15_360);
    const demo = { ...config, hiddenSize: 128, numLayers: 4, numHeads: 4, intermediateSize: 512, imageSize: 28, patchSize: 7, numChannels: 1, projectionDim: 64 };
    // 16 patches, 17 tokens; the projection 128 -> 64 and a 10-class head on 64 features.
    const layer = 8 * 17 * 128 ** 2 + 4 * 17 ** 2 * 128 + 4 * 17 * 128 * 512;
    expect(flopsPerImage(demo, 10)).toBe(2 * 16 * 49 * 128 + 4 * layer + 2 * 128 * 64 + 2 * 64 * 10);
    expect(() => vitConfigOf({ ...VIT_B32, width: 96 })).toThrow(/64-wide heads/);
  });

  const figure = (twin: boolean): EvalFigure => ({
    workload: 'random ViT-B/32, 2 image(s)',
    model: { hiddenSize: 768, layers: 12, imageSize: 224, patchSize: 32, channels: 3, params: 87_456_000 },
    images: 2,
    batch: 2,
    flopsPerImage: 8.8e9,
    gpu: { timing: { ms: 4000, runs: [4000], warmups: 0 }, imagesPerSecond: 0.5, gflops: 4.4, fractionOfMatmul: 0.25 },
    twin: twin ? { timing: { ms: 8000, runs: [8000], warmups: 0 }, images: 1, imagesPerSecond: 0.125 } : null,
    agreement: twin ? { compared: 1, same: 1 } : null,
  });

  it('reports images/s, GFLOP/s, the fraction of the matmul peak and the twin in one row', () => {
    const md = evaluationSection([figure(true), figure(false)], 17.6).join('\n');
    expect(md).toContain('the matmul probe (17.6 GFLOP/s)');
    expect(md).toContain('| 2 (2) | 8800 | **0.5** | 4.4 | 25% | 0.125 (1) | 4x | 1 / 1 |');
    expect(md).toContain('| 2 (2) | 8800 | **0.5** | 4.4 | 25% | - | - | - |');
  });

  it('renders results written before these sections without them', () => {
    const old = { format: RESULTS_FORMAT, date: '2026-11-26T00:00:00Z', profile: 'p', adapter: 'a', isSoftware: true, host: { platform: 'x', cpus: 2, cpuModel: 'c', memoryBytes: 1, node: 'v20', loadAverageStart: [0], loadAverageEnd: [0] },
      wallMs: 1, budgetMs: 1, probes: [], copyGBs: 1, matmulGflops: 1, acceptance: { taskArithmetic: null, ties: null, tiesOverTa: null, breakdown: null }, merges: [], metricsCost: [], torch: [], torchError: null, reference: [], skipped: [], notMeasured: [], notes: [] } as BenchResults;
    const md = renderMarkdown(old);
    expect(md).not.toContain('## One OPCM step');
    expect(md).not.toContain('## Evaluation throughput');
    expect(renderMarkdown({ ...old, evaluation: [figure(true)] })).toContain('## Evaluation throughput');
  });
});
