/**
 * The command line as a user runs it: `merge-playground merge` on generated f32, f16 and bf16 models, checked against an
 * independent float64 computation; and every kind of bad input gives a one-line error, a non-zero exit and no output file.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { craftFile, runCli } from '../helpers/cli';
import { linearMergeOracle, maxUlpError, readFloatTensors, readMetadata } from '../helpers/independent';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';
import { maxRelativeError } from '../helpers/gridModels';
import { runContinualReference } from '../../src/engine/reference/continual';
import type { RefModel } from '../../src/engine/reference/refModel';

let dir: string;
const SHAPES = {
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [48, 48],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [48],
  'vision_model.encoder.layers.1.mlp.fc1.weight': [96, 48],
  'vision_model.embeddings.patch_embedding.weight': [48, 3, 4, 4],
  'vision_model.embeddings.class_embedding': [48],
};

function writeSet(dtype: 'F32' | 'F16' | 'BF16', models: number, seed: number): { files: Uint8Array[]; paths: string[] } {
  const { base, finetuned } = makeRelatedModels({ seed, dtype, models, shapes: SHAPES });
  const files = [makeModelBytes(base), ...finetuned.map((m) => makeModelBytes(m))];
  const paths = files.map((f, i) => {
    const p = join(dir, `${dtype}-${seed}-${i === 0 ? 'base' : `ft${i}`}.safetensors`);
    writeFileSync(p, f);
    return p;
  });
  return { files, paths };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-cli-'));
});

describe('merge-playground merge', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`task_arithmetic and simple_average on ${dtype} models match an independent computation`, async () => {
      const { files, paths } = writeSet(dtype, 3, dtype.length * 7);
      const [basePath, ...modelPaths] = paths;
      const modelArgs = modelPaths.flatMap((p) => ['--model', p]);
      const outTa = join(dir, `ta-${dtype}.safetensors`);
      const report = join(dir, `ta-${dtype}.json`);
      const ta = await runCli(['merge', '--base', basePath!, ...modelArgs, '--method', 'task_arithmetic', '--set', 'lambda=0.35', '--out', outTa, '--report', report, '--quiet']);
      expect(ta.stderr).not.toMatch(/error/i);
      expect(ta.code).toBe(0);
      const outSa = join(dir, `sa-${dtype}.safetensors`);
      const sa = await runCli(['merge', '--base', basePath!, ...modelArgs, '--method', 'simple_average', '--out', outSa, '--quiet']);
      expect(sa.code).toBe(0);
      for (const [out, coeffs] of [[outTa, [0.35, 0.35, 0.35]], [outSa, [1 / 3, 1 / 3, 1 / 3]]] as const) {
        const got = readFloatTensors(new Uint8Array(readFileSync(out)));
        const want = linearMergeOracle(files[0]!, files.slice(1), [...coeffs]);
        for (const [name, w] of want) {
          expect(got.get(name)!.dtype, name).toBe(dtype);
          expect(maxUlpError(got.get(name)!.values, w, dtype, 4), name).toBeLessThanOrEqual(1);
        }
      }
      const r = JSON.parse(readFileSync(report, 'utf8'));
      expect(r.config).toMatchObject({ method: 'task_arithmetic', params: { lambda: 0.35 } });
      expect(r.tensors).toHaveLength(Object.keys(SHAPES).length);
      expect(r.totals.taskVectorNorms).toHaveLength(3);
      // The report's norms are those of the independent computation.
      const base = readFloatTensors(files[0]!);
      const ft1 = readFloatTensors(files[1]!);
      const q = 'vision_model.encoder.layers.0.self_attn.q_proj.weight';
      const tvNorm = Math.hypot(...ft1.get(q)!.values.map((v, i) => v - base.get(q)!.values[i]!));
      const entry = r.tensors.find((t: { name: string }) => t.name === q);
      expect(entry.taskVectorNorms[0]).toBeCloseTo(tvNorm, 4);
      expect(JSON.parse(readMetadata(new Uint8Array(readFileSync(outTa)))!['merge_playground.config']!).method).toBe('task_arithmetic');
    });
  }

  it('runs every batch method from the command line, with every interference metric in the report', async () => {
    const { paths } = writeSet('F32', 3, 31);
    const models = ['--model', paths[1]!, '--model', paths[2]!, '--model', paths[3]!];
    for (const method of ['ties', 'dare', 'breadcrumbs', 'consensus', 'lines', 'magmax', 'model_stock']) {
      const out = join(dir, `${method}.safetensors`);
      const report = join(dir, `${method}.json`);
      const res = await runCli(['merge', '--base', paths[0]!, ...models, '--method', method, '--out', out, '--report', report, '--quiet']);
      expect(res.stderr, method).not.toMatch(/error/i);
      expect(res.code, method).toBe(0);
      const r = JSON.parse(readFileSync(report, 'utf8'));
      expect(Object.keys(r.interference).sort(), method).toEqual(['cosine', 'kept', 'nonFinite', 'norms', 'signs', 'topk', 'usage']);
      expect(r.interference.cosine.total, method).toHaveLength(3);
    }
    const tall = join(dir, 'tall');
    const res = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'tall_masks', '--out', tall, '--quiet']);
    expect(res.code).toBe(0);
    expect(readdirSync(tall).sort()).toEqual(['0-F32-31-ft1.safetensors', '1-F32-31-ft2.safetensors', '2-F32-31-ft3.safetensors']);
    // Its --out must be a folder: an existing file there is named, left untouched, and nothing is written.
    const file = join(dir, 'tall-is-a-file.safetensors');
    writeFileSync(file, 'keep me');
    const clash = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'tall_masks', '--out', file, '--quiet']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr.trim().split('\n').at(-1)).toBe(`merge-playground: error: --out: ${file}: this method writes one model per task into a folder, and the folder cannot be created: it is a file`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('merges continually: OPCM with its SVDs on the GPU and on the host, every step saved, one report entry per step', async () => {
    const { files, paths } = writeSet('F32', 3, 41);
    const models = paths.slice(1).flatMap((p) => ['--model', p]);
    const toRef = (bytes: Uint8Array): RefModel => new Map([...readFloatTensors(bytes)].map(([name, t]) => [name, { shape: t.shape, data: t.values }]));
    const want = runContinualReference('opcm', {}, toRef(files[0]!), files.slice(1).map(toRef));
    for (const svd of ['gpu', 'host'] as const) {
      const out = join(dir, `opcm-${svd}.safetensors`);
      const steps = join(dir, `opcm-steps-${svd}`);
      const report = join(dir, `opcm-${svd}.json`);
      const res = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'opcm', '--svd', svd, '--save-steps', steps, '--report', report, '--out', out, '--quiet']);
      expect(res.stderr, svd).not.toMatch(/error/i);
      expect(res.code, svd).toBe(0);
      const got = readFloatTensors(new Uint8Array(readFileSync(out)));
      for (const [name, t] of want.merged) expect(maxRelativeError(got.get(name)!.values, t.data), `${svd} ${name}`).toBeLessThanOrEqual(1e-4);
      expect(readdirSync(steps).sort()).toEqual(['step-001.safetensors', 'step-002.safetensors', 'step-003.safetensors']);
      // The last step's file holds the merged model.
      const last = readFloatTensors(new Uint8Array(readFileSync(join(steps, 'step-003.safetensors'))));
      for (const [name, t] of got) expect(last.get(name)!.values, `${svd} ${name}`).toEqual(t.values);
      const r = JSON.parse(readFileSync(report, 'utf8'));
      expect(r.order).toEqual([0, 1, 2]);
      expect(r.steps.map((x: { lambda: number }) => x.lambda).slice(1)).toEqual(want.steps.slice(1).map((x) => expect.closeTo(x.lambda!, 4)));
    }
    // --svd only for OPCM, and only gpu or host.
    const batch = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'task_arithmetic', '--svd', 'host', '--out', join(dir, 'never-svd.safetensors')]);
    expect(batch.code).not.toBe(0);
    expect(batch.stderr.trim().split('\n').at(-1)).toBe("merge-playground: error: --svd: only opcm takes SVDs ('task_arithmetic' does not)");
    const bad = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'opcm', '--svd', 'cpu', '--out', join(dir, 'never-svd.safetensors')]);
    expect(bad.stderr.trim().split('\n').at(-1)).toBe('merge-playground: error: --svd: expected gpu or host, got "cpu"');
    expect(existsSync(join(dir, 'never-svd.safetensors'))).toBe(false);
  });

  it('--gpu-cache: a merge without the between-pass cache writes the same bytes; bad values and continual methods refused', async () => {
    const { paths } = writeSet('F32', 3, 17);
    const models = paths.slice(1).flatMap((p) => ['--model', p]);
    const outs: Buffer[] = [];
    // Global TIES makes two passes over the models (statistics, output); with 0 the output pass reads them again.
    for (const flag of [[], ['--gpu-cache', '0']]) {
      const out = join(dir, `cache-${flag.length}.safetensors`);
      const res = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'ties', ...flag, '--out', out, '--quiet']);
      expect(res.stderr, flag.join(' ')).not.toMatch(/error/i);
      expect(res.code, flag.join(' ')).toBe(0);
      outs.push(readFileSync(out));
    }
    expect(outs[0]!.equals(outs[1]!)).toBe(true);
    const never = join(dir, 'never-cache.safetensors');
    const bad = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'ties', '--gpu-cache', '1.5', '--out', never]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n').at(-1)).toBe('merge-playground: error: --gpu-cache: expected a whole number of MiB (0 or more), got "1.5"');
    const continual = await runCli(['merge', '--base', paths[0]!, ...models, '--method', 'opcm', '--gpu-cache', '64', '--out', never]);
    expect(continual.code).toBe(2);
    expect(continual.stderr.trim().split('\n').at(-1)).toBe("merge-playground: error: --gpu-cache: only batch methods keep model bytes between passes ('opcm' is a continual method)");
    expect(existsSync(never)).toBe(false);
  });

  it('reads a --config file and lets flags override it', async () => {
    const { files, paths } = writeSet('F32', 2, 5);
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ method: 'task_arithmetic', params: { lambda: 0.9 }, options: { outputDtype: 'F16' } }));
    const out = join(dir, 'cfg.safetensors');
    const res = await runCli(['merge', '--base', paths[0]!, '--model', paths[1]!, '--model', paths[2]!, '--config', cfg, '--set', 'lambda=0.2', '--out', out, '--quiet']);
    expect(res.code).toBe(0);
    const got = readFloatTensors(new Uint8Array(readFileSync(out)));
    const want = linearMergeOracle(files[0]!, files.slice(1), [0.2, 0.2]);
    for (const [name, w] of want) {
      expect(got.get(name)!.dtype).toBe('F16');
      expect(maxUlpError(got.get(name)!.values, w, 'F16', 4), name).toBeLessThanOrEqual(1);
    }
  });
});

describe('bad input: one clear line, non-zero exit, no output file', () => {
  const outName = 'never.safetensors';
  async function expectFailure(args: string[], pattern: RegExp): Promise<void> {
    const out = join(dir, outName);
    const res = await runCli([...args, '--out', out]);
    expect(res.code).not.toBe(0);
    const lines = res.stderr.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^merge-playground: error: /);
    expect(res.stderr).toMatch(pattern);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }

  it('rejects a truncated file', async () => {
    const { files, paths } = writeSet('F32', 1, 21);
    const bad = join(dir, 'truncated.safetensors');
    writeFileSync(bad, files[1]!.subarray(0, files[1]!.byteLength - 10));
    await expectFailure(['merge', '--base', paths[0]!, '--model', bad, '--method', 'task_arithmetic'], /truncated\.safetensors/);
  });

  it('rejects a header length beyond the file', async () => {
    const { paths } = writeSet('F32', 1, 22);
    const bad = join(dir, 'longheader.safetensors');
    writeFileSync(bad, craftFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4), 1_000_000));
    await expectFailure(['merge', '--base', paths[0]!, '--model', bad, '--method', 'task_arithmetic'], /longheader\.safetensors.*header/i);
  });

  it('rejects overlapping tensor ranges, naming both tensors', async () => {
    const { paths } = writeSet('F32', 1, 23);
    const bad = join(dir, 'overlap.safetensors');
    writeFileSync(bad, craftFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)));
    await expectFailure(['merge', '--base', paths[0]!, '--model', bad, '--method', 'task_arithmetic'], /overlap\.safetensors.*(x.*y|y.*x)/);
  });

  it('rejects an unknown dtype, listing the allowed ones', async () => {
    const { paths } = writeSet('F32', 1, 24);
    const bad = join(dir, 'dtype.safetensors');
    writeFileSync(bad, craftFile({ w: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)));
    await expectFailure(['merge', '--base', paths[0]!, '--model', bad, '--method', 'task_arithmetic'], /dtype\.safetensors.*F8_E4M3.*BF16/);
  });

  it('rejects a shape mismatch between models, naming the tensor and both files', async () => {
    const { paths } = writeSet('F32', 1, 25);
    const other = makeRelatedModels({ seed: 26, dtype: 'F32', models: 1, shapes: { ...SHAPES, 'vision_model.encoder.layers.1.mlp.fc1.weight': [48, 96] } });
    const bad = join(dir, 'shape.safetensors');
    writeFileSync(bad, makeModelBytes(other.finetuned[0]!));
    await expectFailure(['merge', '--base', paths[0]!, '--model', bad, '--method', 'task_arithmetic'], /fc1\.weight.*shape\.safetensors|shape\.safetensors.*fc1\.weight/);
  });

  it('rejects bad method parameters with the allowed values', async () => {
    const { paths } = writeSet('F32', 3, 28);
    const three = ['--model', paths[1]!, '--model', paths[2]!, '--model', paths[3]!];
    await expectFailure(['merge', '--base', paths[0]!, ...three, '--method', 'ties', '--set', 'k=0'], /params\.k: 0 is outside the allowed range \(0, 1\]/);
    await expectFailure(['merge', '--base', paths[0]!, ...three, '--method', 'ties', '--set', 'k=1.5'], /params\.k: 1\.5 is outside the allowed range \(0, 1\]/);
    await expectFailure(['merge', '--base', paths[0]!, ...three, '--method', 'dare', '--set', 'p=1'], /params\.p: 1 is outside the allowed range \[0, 1\)/);
    await expectFailure(['merge', '--base', paths[0]!, ...three, '--method', 'ties', '--set', 'merge=median'], /params\.merge: expected one of sum, mean, max/);
    await expectFailure(['merge', '--base', paths[0]!, ...three, '--method', 'slerp'], /method 'slerp' needs exactly 2 fine-tuned models, got 3/);
  });

  it('rejects unknown methods and parameters with the allowed values', async () => {
    const { paths } = writeSet('F32', 1, 27);
    await expectFailure(['merge', '--base', paths[0]!, '--model', paths[1]!, '--method', 'nope'], /unknown method "nope" \(allowed: task_arithmetic, simple_average/);
    await expectFailure(['merge', '--base', paths[0]!, '--model', paths[1]!, '--method', 'task_arithmetic', '--set', 'k=0.2'], /unknown parameter.*allowed: lambda/);
  });
});
