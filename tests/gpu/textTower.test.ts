/**
 * The GPU text tower (src/engine/eval/textTower.ts) on Dawn: parity with the PyTorch golden file
 * (tests/fixtures/clipText/golden.safetensors, see generate.py) and with the CPU twin
 * (src/engine/reference/textTower.ts), both to 1e-4 absolute, for the whole batch and for one sequence (activation
 * buffers reused), padding invariance (the causal mask on the GPU), the gather kernel alone, argument checks, and a
 * zero-shot head built end to end (checkpoint, tokenizer, batches of mixed lengths) against the CPU twin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, GpuError } from '../../src/engine/errors';
import type { GpuContext } from '../../src/engine/gpu/device';
import { gatherRows, TextTransformer } from '../../src/engine/eval/textTower';
import { textWeightShapes } from '../../src/engine/eval/textConfig';
import { textFeaturesRef } from '../../src/engine/reference/textTower';
import { loadTextGolden, type TextGoldenCase } from '../fixtures/clipText/golden';
import { readF32, releaseTestContext, testContext, testUsage, uploadF32 } from '../helpers/gpu';
import { uploadRaw } from '../../src/engine/gpu/kernels';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel } from '../../src/engine/io/model';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { buildZeroShotHead, clipTokenizer, openTextTower, tokenizePrompts } from '../../src/engine/eval/zeroShotHeads';
import { makeModelBytes } from '../helpers/safetensorsFixtures';
import { tinyTokenizerJson } from '../fixtures/clipText/tokenizer';

const TOL = 1e-4;

let ctx: GpuContext;
let cases: TextGoldenCase[];
beforeAll(async () => {
  ctx = await testContext();
  ({ cases } = await loadTextGolden());
});
afterAll(releaseTestContext);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(worst) ? Infinity : worst;
}

/** A case's weights on the GPU and a model over them (maxBatch = the case's batch, maxTokens one more than its T). */
function modelFor(c: TextGoldenCase): { model: TextTransformer; free(): void } {
  const buffers = new Map([...c.weights].map(([name, w]) => [name, uploadF32(ctx, name, Float32Array.from(w))] as const));
  const model = new TextTransformer(ctx, c.config, (name) => buffers.get(name)!, c.batch, c.tokens + 1);
  return {
    model,
    free() {
      model.destroy();
      for (const b of buffers.values()) ctx.destroyBuffer(b);
    },
  };
}

async function featuresOf(model: TextTransformer, ids: ArrayLike<number>, batch: number, tokens: number): Promise<Float32Array> {
  return readF32(ctx, model.features(ids, batch, tokens), batch * model.featureDim);
}

describe('TextTransformer vs PyTorch golden values and the CPU twin', () => {
  it.each(['legacy', 'eos'])('%s: features of the batch, then of one sequence, within 1e-4', async (name) => {
    const c = cases.find((x) => x.name === name)!;
    const { model, free } = modelFor(c);
    try {
      const weights = (n: string) => c.weights.get(n)!;
      const gpu = await featuresOf(model, c.ids, c.batch, c.tokens);
      expect(maxAbsDiff(gpu, c.features)).toBeLessThan(TOL);
      expect(maxAbsDiff(gpu, textFeaturesRef(c.config, weights, c.ids, c.batch, c.tokens))).toBeLessThan(TOL);
      const f = model.featureDim;
      const one = await featuresOf(model, c.ids.subarray(c.tokens, 2 * c.tokens), 1, c.tokens);
      expect(maxAbsDiff(one, c.features.subarray(f, 2 * f))).toBeLessThan(TOL);
    } finally {
      free();
    }
  });

  it('one more padding token changes nothing (the causal flag of vit_attention)', async () => {
    const c = cases.find((x) => x.name === 'legacy')!;
    const { model, free } = modelFor(c);
    try {
      const padded: number[] = [];
      for (let b = 0; b < c.batch; b++) padded.push(...c.ids.subarray(b * c.tokens, (b + 1) * c.tokens), 63);
      const gpu = await featuresOf(model, padded, c.batch, c.tokens + 1);
      expect(maxAbsDiff(gpu, c.features)).toBeLessThan(TOL);
    } finally {
      free();
    }
  });
});

describe('gather_rows', () => {
  it('copies the indexed rows', async () => {
    const table = uploadF32(ctx, 'table', Float32Array.from({ length: 5 * 3 }, (_, i) => i + 0.5));
    const index = uploadRaw(ctx, 'index', new Uint8Array(Uint32Array.from([4, 0, 4, 2]).buffer));
    const out = ctx.createBuffer('out', 4 * 3 * 4, testUsage());
    try {
      gatherRows(ctx, table, 5, index, out, 4, 3);
      expect([...(await readF32(ctx, out, 12))]).toEqual([12.5, 13.5, 14.5, 0.5, 1.5, 2.5, 12.5, 13.5, 14.5, 6.5, 7.5, 8.5]);
      expect(() => gatherRows(ctx, table, 6, index, out, 4, 3)).toThrow(/gather_rows: buffer 'table' has 64 bytes, needs 72/);
    } finally {
      [table, index, out].forEach((b) => ctx.destroyBuffer(b));
    }
  });
});

describe('argument checks', () => {
  it('rejects bad ids, sizes, weights and use after destroy', () => {
    const c = cases.find((x) => x.name === 'eos')!;
    const { model, free } = modelFor(c);
    try {
      expect(() => model.features([6, 50, 7], 1, 3)).toThrow('token id 50 of sequence 0 is outside the vocabulary (size 50)');
      expect(() => model.features([6, 8, 9], 1, 3)).toThrow('sequence 0 has no end-of-text token (id 7)');
      expect(() => model.features(c.ids, c.batch + 1, c.tokens)).toThrow(GpuError);
      expect(() => model.features(new Int32Array(8).fill(7), 1, 8)).toThrow(/tokens must be an integer in 1..7/);
      expect(() => new TextTransformer(ctx, c.config, () => uploadF32(ctx, 'tiny', new Float32Array(1)), 1)).toThrow(/weight "embeddings.token_embedding.weight" \[50, 24\] needs 4800 bytes/);
      expect(() => new TextTransformer(ctx, c.config, () => model as never, 1, 99)).toThrow(ConfigError);
    } finally {
      free();
    }
    expect(() => model.features(c.ids, c.batch, c.tokens)).toThrow('TextTransformer: used after destroy()');
  });
});

describe('zero-shot heads', () => {
  it('builds the head of a task from a CLIPModel checkpoint within 1e-4 of the CPU twin', async () => {
    const c = cases.find((x) => x.name === 'legacy')!;
    // The checkpoint as saved (names with prefix, shapes from the config), plus logit_scale = ln 100.
    const shapes = textWeightShapes(c.config);
    const shaped = [...c.names].map(([canonical, stored]) => ({ name: stored, dtype: 'F32' as const, shape: shapes.get(canonical)!, data: encodeFloats(c.weights.get(canonical)!, 'F32') }));
    shaped.push({ name: 'logit_scale', dtype: 'F32', shape: [], data: encodeFloats([Math.log(100)], 'F32') });
    const model = await openSingleFileModel('base.safetensors', memorySource('base.safetensors', makeModelBytes(shaped)));
    const text = await openTextTower(ctx, model, JSON.parse(c.configJson), 'config.json', 4);
    const tokenizer = clipTokenizer(tinyTokenizerJson(), {});
    const prompts = { classes: ['cat', 'dog', 'fish'], templates: ['a photo of a {c}.', 'a {c}.'] };
    const progress: number[] = [];
    try {
      const head = await buildZeroShotHead(text, tokenizer, prompts, { onProgress: (done) => progress.push(done) });
      expect(progress).toEqual([4, 6]);
      expect(head.classes).toBe(3);
      expect(head.dim).toBe(16);
      expect(head.logitScale).toBeCloseTo(100, 4);
      // CPU: each prompt alone (no padding; the long template is truncated to 9 tokens), normalised, averaged per
      // class, normalised.
      const weights = (n: string) => c.weights.get(n)!;
      const expected: number[] = [];
      for (const name of prompts.classes) {
        const sum = new Float64Array(16);
        for (const t of prompts.templates) {
          const { ids, tokens } = tokenizePrompts(tokenizer, [t.replace('{c}', name)], c.config.maxPositions);
          const f = textFeaturesRef(c.config, weights, ids, 1, tokens);
          const norm = Math.hypot(...f);
          f.forEach((v, i) => (sum[i]! += v / norm / prompts.templates.length));
        }
        const norm = Math.hypot(...sum);
        expected.push(...[...sum].map((v) => v / norm));
      }
      expect(maxAbsDiff(head.weight, expected)).toBeLessThan(TOL);
    } finally {
      text.destroy();
    }
  });
});
