/**
 * Where the host's main thread goes during one cold Task Arithmetic merge of the acceptance models: a sampling CPU
 * profile of the process (node:inspector, one sample every PROFILE_INTERVAL_US), each sample's time given to the
 * function it stopped in (self time), summed into what the engine does there. On a GPU the merge waits on this thread
 * (the copies into and out of mapped buffers run on it), on a CPU-emulated adapter the kernels run on other threads
 * and the thread's share says how much of the merge the host's own work is.
 */
import { Session } from 'node:inspector/promises';
import type { GpuContext } from '../src/engine/gpu/device';
import { mergeOnce, sizeInfo } from './engineRun';
import type { BenchModels } from './models';
import type { HostProfile } from './results';
import type { VitSize } from './vitShapes';

/** Sampling interval: fine enough for a merge of a few hundred ms, coarse enough to cost it little. */
export const PROFILE_INTERVAL_US = 200;

/**
 * What the engine does in the functions the profile names (their self time), in the order the table lists them.
 * `readTensorInto` copies a model's bytes into the mapped staging buffer (or reads a file straight into it);
 * `readStaged` copies a readback out of the mapped staging buffer (StagingReader); `tick` is the pacer's sleep while a
 * GPU promise is pending (platform/dawnPacer.ts); the parenthesised names are V8's own.
 */
export const HOST_PARTS: readonly { part: string; functions: readonly string[] }[] = [
  { part: 'inputs copied into mapped staging buffers (readTensorInto)', functions: ['readTensorInto'] },
  { part: 'output copied out of mapped readback buffers (StagingReader)', functions: ['readStaged'] },
  { part: 'asleep while the GPU works (the pacer)', functions: ['tick'] },
  { part: 'garbage collection', functions: ['(garbage collector)'] },
  { part: 'idle', functions: ['(idle)'] },
];

/** The parts of a CPU profile other than HOST_PARTS: V8's and Dawn's native code, and every other function. */
const NATIVE = 'native code (Dawn, V8 built-ins)';
const OTHER = 'other JavaScript (the engine, the writer)';

/** The slice of a .cpuprofile the summary reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per part (HOST_PARTS, then native and other code) and the functions with most self time, in ms. */
export function summarizeProfile(profile: CpuProfile, topCount = 8): Pick<HostProfile, 'sampledMs' | 'parts' | 'top'> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  const parts = new Map<string, number>([...HOST_PARTS.map((p) => [p.part, 0] as const), [NATIVE, 0], [OTHER, 0]]);
  let sampledMs = 0;
  profile.samples.forEach((id, i) => {
    // A sample's time is the delta to the next one (V8 records the delta before each sample).
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const frame = byId.get(id);
    if (!frame || ms <= 0) return;
    sampledMs += ms;
    const known = HOST_PARTS.find((p) => p.functions.includes(frame.functionName));
    const native = !known && (frame.url === '' || frame.functionName === '(program)');
    const part = known?.part ?? (native ? NATIVE : OTHER);
    parts.set(part, parts.get(part)! + ms);
    const file = frame.url.split('/').pop() ?? '';
    const name = `${frame.functionName || '(anonymous)'}${file ? ` (${file}:${frame.lineNumber + 1})` : ''}`;
    self.set(name, (self.get(name) ?? 0) + ms);
  });
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, topCount).map(([fn, ms]) => ({ fn, ms }));
  return { sampledMs, parts: [...parts.entries()].map(([part, ms]) => ({ part, ms })), top };
}

/** One cold Task Arithmetic merge of `m` under the profiler (after the acceptance runs: its pipelines are compiled). */
export async function hostProfile(ctx: GpuContext, m: BenchModels, size: VitSize): Promise<HostProfile> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
    await session.post('Profiler.start');
    const t0 = performance.now();
    let mergeMs = 0;
    let profile: unknown;
    try {
      await mergeOnce(ctx, m, 'task_arithmetic', false);
      mergeMs = performance.now() - t0;
    } finally {
      ({ profile } = await session.post('Profiler.stop'));
    }
    return { method: 'task_arithmetic', tasks: m.models.length, dtype: m.dtype, size: sizeInfo(size), mergeMs, intervalUs: PROFILE_INTERVAL_US, ...summarizeProfile(profile as CpuProfile) };
  } finally {
    session.disconnect();
  }
}
