/**
 * Merged weights collected for evaluation (runMerge's `collect`, as the playground and `eval` score every merge) come
 * from the fused output pass where the output is f32: each chunk's f32 output copied into the tensor's buffer. They
 * equal, bit for bit, what the task-vector stack path collects (theta0 + delta in f32) for every method with a fused
 * kernel, also for small tensors that share a chunk, chunks of a larger tensor and global TIES's tied-column rerun;
 * a tensor written in another dtype, and Model Stock and SLERP before their Grams are known (GpuPlan.stackFaster;
 * tests/gpu/planMemo.test.ts for after), are collected through the
 * stack, and nothing is left allocated.
 */
import { describe, expect, it, vi } from 'vitest';
import { readBuffer } from '../../src/engine/gpu/kernels';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import { FusedOutput } from '../../src/engine/merge/plans/fusedOutput';
import { runMerge } from '../../src/engine/merge/runMerge';
import { StackOutput } from '../../src/engine/merge/stackOutput';
import { gridModels, openModels, type GridModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';
import { tiedMajority, tiesWorld } from '../helpers/tiesWorld';

// Small tensors (batched in the fused pass) around a tensor of several chunks (chunkElements 1024).
const SHAPES: Record<string, number[]> = {
  'blocks.0.attn.bias': [7],
  'blocks.0.attn.weight': [48, 40],
  'blocks.0.mlp.bias': [33],
  'blocks.0.norm.weight': [40],
  'blocks.1.mlp.weight': [96, 40],
  'head.bias': [3],
};

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Merges with `collect` and returns each collected tensor's f32 values and which output passes ran. */
async function collected(g: GridModels, method: string, params: Record<string, unknown>, opts: { metrics: boolean; outputDtype?: 'base' | 'F16'; holdBytes?: number }) {
  const ctx = await testContext();
  const { base, models } = await openModels(g);
  const buffers = new Map<string, GPUBuffer>();
  const phases = new Set<string>();
  const fused = vi.spyOn(FusedOutput.prototype, 'tensor');
  const stacked = vi.spyOn(StackOutput.prototype, 'tensor');
  try {
    const report = await runMerge(ctx, {
      base,
      models,
      metrics: opts.metrics,
      config: resolveConfig({ method, params, options: { chunkElements: 1024, outputDtype: opts.outputDtype ?? 'base' } }),
      ...(opts.holdBytes !== undefined ? { holdBytes: opts.holdBytes } : {}),
      output: async () => memorySink('out'),
      onProgress: (p) => phases.add(p.phase),
      collect: (t) => {
        expect(buffers.has(t.name), `${t.name} collected once`).toBe(false);
        const b = ctx.createBuffer(`collected ${t.name}`, t.numel * 4, storage());
        buffers.set(t.name, b);
        return b;
      },
    });
    const values = new Map<string, Float32Array>();
    for (const [name, b] of buffers) values.set(name, new Float32Array((await readBuffer(ctx, b, b.size)).buffer));
    return { values, report, phases, fusedTensors: fused.mock.calls.length, stackTensors: stacked.mock.calls.length };
  } finally {
    fused.mockRestore();
    stacked.mockRestore();
    for (const b of buffers.values()) ctx.destroyBuffer(b);
    expect(ctx.allocatedBytes).toBe(0);
  }
}

function expectSameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  expect([...a.keys()].sort(), what).toEqual(Object.keys(SHAPES).sort());
  expect([...b.keys()].sort(), what).toEqual(Object.keys(SHAPES).sort());
  for (const [name, v] of a) expect(Buffer.from(v.buffer).equals(Buffer.from(b.get(name)!.buffer)), `${what}: ${name}`).toBe(true);
}

describe('collected weights from the fused output pass', () => {
  const g = gridModels(71, 3, SHAPES);
  for (const [method, params] of [
    ['task_arithmetic', { lambda: 0.4 }],
    ['task_arithmetic', { lambda: [{ filter: 'mlp', value: 0.9 }, { value: 0.2 }] }],
    ['simple_average', {}],
    ['ties', {}],
    ['ties', { k: 0.5, merge: 'mean' }],
    ['dare', { p: 0.4, seed: 3 }],
    ['consensus', { k: 2 }],
    ['magmax', {}],
    ['lines', {}],
  ] as const) {
    it(`${method} ${JSON.stringify(params)}: the stack path's values, bit for bit, without the stack`, async () => {
      const fused = await collected(g, method, params, { metrics: false });
      const stack = await collected(g, method, params, { metrics: true });
      expect(fused.stackTensors, 'tensors through the stack without metrics').toBe(0);
      expect(fused.fusedTensors).toBe(Object.keys(SHAPES).length);
      expectSameBits(fused.values, stack.values, method);
      // And the report's norms, summed in another order by each path (f32 partials per 16 elements, folded in float64).
      fused.report.tensors.forEach((t, i) => {
        const s = stack.report.tensors[i]!;
        expect(t.name).toBe(s.name);
        expect(t.mergedNorm!).toBeCloseTo(s.mergedNorm!, 5);
        t.taskVectorNorms!.forEach((n, m) => expect(n).toBeCloseTo(s.taskVectorNorms![m]!, 5));
      });
    });
  }

  it('Model Stock and SLERP collect through the stack, where their Gram pass keeps the decoded chunks', async () => {
    const two = gridModels(72, 2, SHAPES);
    for (const [models, method, params] of [
      [g, 'model_stock', {}],
      [two, 'slerp', { t: 0.3 }],
    ] as const) {
      const collecting = await collected(models, method, params, { metrics: false });
      const stack = await collected(models, method, params, { metrics: true });
      expect([collecting.fusedTensors, collecting.stackTensors], method).toEqual([0, Object.keys(SHAPES).length]);
      expectSameBits(collecting.values, stack.values, method);
    }
  });

  it("global TIES's tied-column rerun, held or run again whole, collects the final values", async () => {
    // tests/helpers/tiesWorld.ts: the sample's majority estimate is wrong, and some columns are tied, whose chunks the
    // fused pass must run again.
    const world = tiesWorld(tiedMajority());
    const stack = await collected(world, 'ties', {}, { metrics: true });
    for (const [holdBytes, phase] of [
      [undefined, 'merge again: tied columns'],
      [0, 'merge again'],
    ] as const) {
      const fused = await collected(world, 'ties', {}, { metrics: false, ...(holdBytes !== undefined ? { holdBytes } : {}) });
      expect(fused.phases.has(phase), `${phase} with holdBytes ${holdBytes}`).toBe(true);
      expect(fused.stackTensors).toBe(0);
      expect(Buffer.from(fused.values.get('w')!.buffer).equals(Buffer.from(stack.values.get('w')!.buffer)), `holdBytes ${holdBytes}`).toBe(true);
    }
  });

  it('a tensor written in another dtype is collected in f32 through the stack', async () => {
    const fused = await collected(g, 'task_arithmetic', { lambda: 0.4 }, { metrics: false, outputDtype: 'F16' });
    const stack = await collected(g, 'task_arithmetic', { lambda: 0.4 }, { metrics: true, outputDtype: 'F16' });
    expect(fused.fusedTensors).toBe(0);
    expectSameBits(fused.values, stack.values, 'F16 output');
  });
});
