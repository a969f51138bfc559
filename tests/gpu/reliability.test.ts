/**
 * No data lost, and names kept as text, on the GPU merge: a merge that fails mid-way (a model whose second tensor
 * cannot be read) leaves no output file and no temp file at the command line (the real CLI entry, its real file
 * sinks); a merge cancelled mid-way rejects with CancelledError and aborts its sink; and markup in tensor and model
 * names comes back unchanged in the report and the written file.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import { main } from '../../src/cli/main';
import { CancelledError } from '../../src/engine/errors';
import { memorySink, memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../../src/engine/io/model';
import { openSafetensors } from '../../src/engine/io/safetensorsReader';
import { resolveConfig } from '../../src/engine/merge/config';
import { runMerge } from '../../src/engine/merge/runMerge';
import { fileSink } from '../../src/platform/nodeFiles';
import { releaseTestContext, testContext } from '../helpers/gpu';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';
import { reliabilityCase } from '../helpers/reliability';

/** What the injected read failure saw of the output folder when it struck. */
const seenAtFailure: string[][] = [];

/** A source whose reads fail where they touch bytes [from, to), as a failing disk or dropped connection would. */
function failingRange(src: ByteSource, from: number, to: number, onFail: () => void = () => undefined): ByteSource {
  return {
    name: src.name,
    size: src.size,
    read(offset, length, signal) {
      if (offset < to && offset + length > from) {
        onFail();
        return Promise.reject(new Error(`${src.name}: read error at byte ${offset} (injected)`));
      }
      return src.read(offset, length, signal);
    },
  };
}

/** Absolute byte range of the tensor that comes second in the file's data area. */
async function secondTensorRange(src: ByteSource): Promise<[number, number]> {
  const { header } = await openSafetensors(src);
  const t = header.tensors[1]!;
  return [header.dataOffset + t.begin, header.dataOffset + t.end];
}

// The CLI opens models by path: files named "broken-*" get a source that fails on their second tensor.
vi.mock('../../src/platform/nodeFiles', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/platform/nodeFiles')>();
  return {
    ...real,
    async openModelPath(path: string, signal?: AbortSignal): Promise<Model> {
      if (!path.includes('broken-')) return real.openModelPath(path, signal);
      const src = await real.fileSource(path);
      const [from, to] = await secondTensorRange(src);
      const out = join(path, '..', 'out');
      return openSingleFileModel(path, failingRange(src, from, to, () => seenAtFailure.push([...listing(out), ...listing(join(out, 'masks'))])));
    },
  };
});

const SHAPES = { 'encoder.layers.0.mlp.fc1.weight': [32, 16], 'encoder.layers.0.mlp.fc1.bias': [32], 'encoder.layers.1.mlp.fc1.weight': [32, 16] };
let dir: string;

function listing(folder: string): string[] {
  try {
    return readdirSync(folder).sort();
  } catch {
    return [];
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-nodataloss-'));
  const { base, finetuned } = makeRelatedModels({ seed: 21, dtype: 'F32', models: 2, shapes: SHAPES });
  writeFileSync(join(dir, 'base.safetensors'), makeModelBytes(base));
  writeFileSync(join(dir, 'good.safetensors'), makeModelBytes(finetuned[0]!));
  writeFileSync(join(dir, 'broken-ft.safetensors'), makeModelBytes(finetuned[1]!));
});
afterAll(releaseTestContext);

/** Runs the CLI's entry point in this process, capturing stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await main(args), stderr };
  } finally {
    spy.mockRestore();
  }
}

describe('no data lost', () => {
  for (const [method, output] of [['task_arithmetic', 'merged.safetensors'], ['tall_masks', 'masks']] as const) {
    reliabilityCase('no-data-lost', `a ${method} merge that fails mid-way leaves no output and no temp file (CLI)`, async () => {
      const out = join(dir, 'out');
      mkdirSync(out, { recursive: true });
      seenAtFailure.length = 0;
      const res = await cli(['merge', '--base', join(dir, 'base.safetensors'), '--model', join(dir, 'good.safetensors'), '--model', join(dir, 'broken-ft.safetensors'), '--method', method, '--out', join(out, output), '--report', join(out, 'report.json'), '--quiet']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^merge-playground: error: .*broken-ft\.safetensors: read error at byte \d+ \(injected\)\n$/);
      // The output was open (a temp file existed) when the read failed: the failure struck mid-way.
      expect(seenAtFailure.length).toBeGreaterThan(0);
      expect(seenAtFailure.flat().some((f) => f.endsWith('.tmp'))).toBe(true);
      // Only the (empty) folder TALL masks are written into may remain.
      expect(listing(out).filter((f) => !(method === 'tall_masks' && f === output))).toEqual([]);
      expect(listing(join(out, 'masks'))).toEqual([]);
    });
  }

  for (const method of ['task_arithmetic', 'ties'] as const) {
    reliabilityCase('no-data-lost', `a ${method} merge cancelled mid-way rejects with CancelledError and aborts its sink`, async () => {
      const ctx = await testContext();
      const { base, finetuned } = makeRelatedModels({ seed: 22, dtype: 'F32', models: 2, shapes: SHAPES });
      const controller = new AbortController();
      const baseBytes = makeModelBytes(base);
      const baseSrc = memorySource('base.safetensors', baseBytes);
      const [from, to] = await secondTensorRange(baseSrc);
      // Cancel as the second tensor is read, as a user pressing Cancel mid-merge.
      const cancelling: ByteSource = {
        ...baseSrc,
        read(offset, length, signal) {
          if (offset < to && offset + length > from) controller.abort();
          return baseSrc.read(offset, length, signal);
        },
      };
      const models = await Promise.all(finetuned.map((m, i) => openSingleFileModel(`ft${i}`, memorySource(`ft${i}.safetensors`, makeModelBytes(m)))));
      const sink = memorySink('merged.safetensors');
      const run = runMerge(ctx, {
        base: await openSingleFileModel('base', cancelling),
        models,
        config: resolveConfig({ method }),
        output: async () => sink,
        signal: controller.signal,
      });
      await expect(run).rejects.toBeInstanceOf(CancelledError);
      expect(controller.signal.aborted).toBe(true);
      expect(sink.state()).toBe('aborted');
      expect(sink.bytes().byteLength).toBe(0);
    });
  }
});

describe('markup in names comes back as text', () => {
  reliabilityCase('hostile-text', 'a merge report and the merged file keep markup tensor and model names unchanged', async () => {
    const ctx = await testContext();
    const names = ['<script>alert(1)</script>.layers.0.weight', '"><img src=x onerror=alert(1)>'];
    const { base, finetuned } = makeRelatedModels({ seed: 23, dtype: 'F32', models: 2, shapes: Object.fromEntries(names.map((n) => [n, [8, 4]])) });
    const modelNames = ['<b>task</b>.safetensors', '<iframe src=javascript:alert(1)>'];
    const models = await Promise.all(finetuned.map((m, i) => openSingleFileModel(modelNames[i]!, memorySource(modelNames[i]!, makeModelBytes(m)))));
    const sink = memorySink('<svg onload=alert(1)>.safetensors');
    const report = await runMerge(ctx, { base: await openSingleFileModel('<base>', memorySource('<base>', makeModelBytes(base))), models, config: resolveConfig({ method: 'task_arithmetic' }), output: async () => sink });
    expect(report.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    expect(report.models).toEqual(modelNames);
    expect(report.base).toBe('<base>');
    expect(report.output?.file).toBe('<svg onload=alert(1)>.safetensors');
    const written = await openSafetensors(memorySource('out', sink.bytes()));
    expect(written.header.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    expect(JSON.parse(written.header.metadata!['merge_playground.models']!)).toEqual(modelNames);
    return names.length + modelNames.length;
  });

  reliabilityCase('no-data-lost', 'a fileSink aborted after writing leaves nothing behind', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'mp-sink-'));
    const sink = await fileSink(join(folder, 'out.safetensors'));
    await sink.write(new Uint8Array(1024));
    expect(listing(folder)).toHaveLength(1);
    await sink.abort();
    expect(listing(folder)).toEqual([]);
  });
});
