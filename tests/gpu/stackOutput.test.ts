/**
 * The task-vector stack's output pass (merge/stackOutput.ts) keeps chunks in flight: a chunk's readbacks are awaited
 * only once later chunks are submitted, and what it writes is still in chunk order (the methods tests compare the
 * bytes with the CPU twins).
 */
import { describe, expect, it, vi } from 'vitest';
import { memorySink } from '../../src/engine/io/byteSource';
import { resolveConfig } from '../../src/engine/merge/config';
import { rawChunksInFlight } from '../../src/engine/merge/plans/fusedOutput';
import { runMerge } from '../../src/engine/merge/runMerge';
import { gridModels, openModels } from '../helpers/gridModels';
import { testContext } from '../helpers/gpu';

describe('stack output pass', () => {
  // Breadcrumbs with scope "tensor" takes the stack without metrics too (with scope "row" a CPU-emulated adapter selects
  // its bands first and writes through the fused pass).
  it.each([
    ['breadcrumbs', { scope: 'tensor' }, false, 1],
    ['tall_masks', {}, true, 3],
    ['task_arithmetic', {}, true, 1],
  ] as const)('%s %j (metrics %s): several chunks of a tensor are read back at once, %i output(s)', async (method, params, metrics, outputs) => {
    const ctx = await testContext();
    const g = gridModels(11, 3, { 'vision_model.encoder.layers.0.mlp.fc1.weight': [64, 96] });
    const { base, models } = await openModels(g);
    const created = vi.spyOn(ctx, 'createBuffer');
    const sinks: ReturnType<typeof memorySink>[] = [];
    try {
      // 6144 elements in chunks of 1024 elements (960 for row-granular methods): six or seven chunks.
      const config = resolveConfig({ method, params, options: { chunkElements: 1024 } });
      await runMerge(ctx, { base, models, config, metrics, output: async (i) => (sinks[i] = memorySink(`out${i}`)) });
      const staging = created.mock.calls.filter(([label]) => label === 'stack output readback staging').length;
      // One staging buffer per readback in flight; a pass that waited for each chunk's readback would reuse one. With
      // three outputs, a chunk stages 3 x 960 f32 values, and two chunks' worth exceed the staging limit of
      // depth x the largest chunk's f32 bytes: two chunks are in flight.
      const chunks = outputs === 1 ? rawChunksInFlight(ctx) : 2;
      expect(staging).toBe(chunks * outputs);
      expect(sinks.length).toBe(outputs);
      expect(ctx.allocatedBytes).toBe(0);
    } finally {
      created.mockRestore();
    }
  });
});
