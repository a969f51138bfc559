/**
 * The CPU twin of the CLIP text tower (src/engine/reference/textTower.ts) against the golden file written by
 * tests/fixtures/clipText/generate.py from torch.nn.functional primitives (a CLIPModel-layout tower with projection
 * and legacy argmax pooling, a bare CLIPTextModel with a real eos_token_id), plus config parsing, weight
 * resolution, end-of-text pooling and the causal mask; and the host-side parts of zero-shot heads (tokenizing,
 * padding, averaging, cache keys).
 */
import { statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../../src/engine/errors';
import { eosPositions, parseTextConfig, resolveTextWeights, textWeightShapes, type TextConfig } from '../../src/engine/eval/textConfig';
import { textFeaturesRef } from '../../src/engine/reference/textTower';
import { averageClassEmbeddings, clipTokenizer, headCacheOver, tokenizePrompts, zeroShotHeadCacheKey } from '../../src/engine/eval/zeroShotHeads';
import { loadTextGolden, TEXT_GOLDEN_PATH, type TextGoldenCase } from '../fixtures/clipText/golden';
import { TINY_END, TINY_START, tinyTokenizerJson } from '../fixtures/clipText/tokenizer';

const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(worst) ? Infinity : worst;
}

let metadata: Record<string, string>;
let cases: TextGoldenCase[];
beforeAll(async () => {
  ({ metadata, cases } = await loadTextGolden());
});

const lookup = (c: TextGoldenCase) => (name: string) => {
  const w = c.weights.get(name);
  if (!w) throw new Error(`no weight ${name}`);
  return w;
};
const run = (c: TextGoldenCase, ids: ArrayLike<number> = c.ids, tokens = c.tokens, config: TextConfig = c.config) =>
  textFeaturesRef(config, lookup(c), ids, ids.length / tokens, tokens);
const byName = (name: string) => cases.find((c) => c.name === name)!;

describe('golden file', () => {
  it('is small, versioned and says how to regenerate it', () => {
    expect(statSync(TEXT_GOLDEN_PATH).size).toBeLessThan(200_000);
    expect(metadata.format_version).toBe('1');
    expect(metadata.regenerate).toBe('/usr/bin/python3 tests/fixtures/clipText/generate.py');
  });
  it('covers legacy and real eos pooling, both activations, projection or not, prefix or not', () => {
    expect(cases.map((c) => [c.name, c.config.eosTokenId, c.config.hiddenAct, c.config.projectionDim])).toEqual([
      ['legacy', 2, 'quick_gelu', 16],
      ['eos', 7, 'gelu', null],
    ]);
    expect(byName('legacy').names.get('final_layer_norm.weight')).toBe('text_model.final_layer_norm.weight');
    expect(byName('eos').names.get('final_layer_norm.weight')).toBe('final_layer_norm.weight');
    // Sequences shorter than max_position_embeddings: only the first T position embeddings are used.
    for (const c of cases) expect(c.tokens).toBeLessThan(c.config.maxPositions);
  });
});

describe('CPU twin vs PyTorch golden values', () => {
  it.each(['legacy', 'eos'])('%s: features of every sequence within 1e-4 (1e-9 in fact)', (name) => {
    const c = byName(name);
    const features = run(c);
    expect(maxAbsDiff(features, c.features)).toBeLessThan(TOL);
    // Both sides are float64 on the same f32 inputs.
    expect(maxAbsDiff(features, c.features)).toBeLessThan(1e-9);
  });

  it.each(['legacy', 'eos'])('%s: pooled positions are the golden ones', (name) => {
    const c = byName(name);
    expect(eosPositions(c.ids, c.batch, c.tokens, c.config.eosTokenId)).toEqual([...c.eos]);
  });

  it('pooling by the wrong rule gives other features (the golden values tell the rules apart)', () => {
    const c = byName('eos');
    // Under the legacy rule the largest id (49 in sequence 1) would be pooled instead of the end-of-text token.
    expect(eosPositions(c.ids, c.batch, c.tokens, 2)).not.toEqual([...c.eos]);
    expect(() => run(c, c.ids, c.tokens, { ...c.config, eosTokenId: 2 })).not.toThrow();
    expect(maxAbsDiff(run(c, c.ids, c.tokens, { ...c.config, eosTokenId: 2 }), c.features)).toBeGreaterThan(10 * TOL);
  });

  it('the causal mask: tokens after the end-of-text token, and extra padding, change nothing', () => {
    for (const c of cases) {
      const base = run(c);
      const changed = Int32Array.from(c.ids);
      const longer: number[] = [];
      for (let b = 0; b < c.batch; b++) {
        const row = [...c.ids.subarray(b * c.tokens, (b + 1) * c.tokens)];
        for (let t = c.eos[b]! + 1; t < c.tokens; t++) changed[b * c.tokens + t] = (t * 7 + b) % (c.config.eosTokenId === 2 ? 60 : 7);
        longer.push(...row, row[c.tokens - 1]!);
      }
      expect(maxAbsDiff(run(c, changed), base)).toBeLessThan(1e-12);
      expect(maxAbsDiff(run(c, longer, c.tokens + 1), base)).toBeLessThan(1e-12);
    }
  });

  it('a token before the end-of-text token does change the features', () => {
    const c = byName('legacy');
    const changed = Int32Array.from(c.ids);
    changed[1] = 9; // sequence 0, inside the text
    const diff = run(c, changed).subarray(0, 16);
    expect(maxAbsDiff(diff, c.features.subarray(0, 16))).toBeGreaterThan(1e-3);
  });

  it('rejects ids outside the vocabulary, too long sequences and sequences without an end', () => {
    const c = byName('eos');
    expect(() => run(c, Int32Array.from([6, 50, 7]), 3)).toThrow(/outside the vocabulary/);
    expect(() => run(c, new Int32Array(9).fill(7), 9)).toThrow(/max_position_embeddings 8/);
    expect(() => run(c, Int32Array.from([6, 8, 9]), 3)).toThrow(/sequence 0 has no end-of-text token \(id 7\)/);
  });
});

describe('parseTextConfig and resolveTextWeights', () => {
  it("takes transformers' CLIPTextConfig defaults for missing fields", () => {
    expect(parseTextConfig({ model_type: 'clip', text_config: {} }, 'config.json')).toEqual({
      vocabSize: 49408,
      hiddenSize: 512,
      numLayers: 12,
      numHeads: 8,
      intermediateSize: 2048,
      maxPositions: 77,
      hiddenAct: 'quick_gelu',
      layerNormEps: 1e-5,
      eosTokenId: 49407,
      projectionDim: null,
    });
  });

  it('names the file and field of a bad config', () => {
    const bad = (json: unknown) => () => parseTextConfig(json, 'base/config.json');
    expect(bad({ model_type: 'bert' })).toThrow(FormatError);
    expect(bad({ model_type: 'clip' })).toThrow('base/config.json: is a CLIPModel config without text_config');
    expect(bad({ text_config: { hidden_size: 0 } })).toThrow('base/config.json: text_config.hidden_size must be an integer >= 1, got 0');
    expect(bad({ text_config: { hidden_size: 30, num_attention_heads: 4 } })).toThrow(/not a multiple of text_config.num_attention_heads/);
    expect(bad({ hidden_act: 'relu' })).toThrow('base/config.json: hidden_act "relu" is not supported (supported: quick_gelu, gelu)');
    expect(bad({ layer_norm_eps: -1 })).toThrow(/layer_norm_eps must be a positive number/);
  });

  it('lists 16 tensors per layer plus embeddings, final norm and projection', () => {
    const c = byName('legacy');
    expect(textWeightShapes(c.config).size).toBe(2 + 16 * c.config.numLayers + 2 + 1);
    expect(textWeightShapes({ ...c.config, projectionDim: null }).has('text_projection.weight')).toBe(false);
  });

  it('names the missing or misshapen tensor', () => {
    const c = byName('legacy');
    const tensors = [...textWeightShapes(c.config)].map(([name, shape]) => ({ name: name === 'text_projection.weight' ? name : `text_model.${name}`, shape }));
    const without = tensors.filter((t) => t.name !== 'text_model.encoder.layers.1.mlp.fc2.bias');
    expect(() => resolveTextWeights(c.config, without, 'base.safetensors')).toThrow('base.safetensors: missing tensor "text_model.encoder.layers.1.mlp.fc2.bias" of the text model');
    const misshapen = tensors.map((t) => (t.name === 'text_model.embeddings.position_embedding.weight' ? { ...t, shape: [77, 32] } : t));
    expect(() => resolveTextWeights(c.config, misshapen, 'base.safetensors')).toThrow(/position_embedding.weight" has shape \[77, 32\], but config.json implies \[9, 32\]/);
    const badProjection = tensors.map((t) => (t.name === 'text_projection.weight' ? { ...t, shape: [16, 31] } : t));
    expect(() => resolveTextWeights(c.config, badProjection, 'base.safetensors')).toThrow(/text_projection.weight" has shape \[16, 31\]/);
  });
});

describe('zero-shot head building blocks', () => {
  const tokenizer = clipTokenizer(tinyTokenizerJson(), {});

  it('tokenizes with start and end tokens and the byte-pair merges', () => {
    // "a</w>" = 26, "ph" = 54, "o" = 14, "t" = 19, "o</w>" = 40.
    expect(tokenizer.encode('A photo')).toEqual([TINY_START, 26, 54, 14, 19, 40, TINY_END]);
  });

  it('pads every row to the longest with its own end id, and truncates keeping both ends', () => {
    const { ids, tokens } = tokenizePrompts(tokenizer, ['a photo', 'a b'], 77);
    expect(tokens).toBe(7);
    expect([...ids.subarray(7)]).toEqual([TINY_START, 26, 27, TINY_END, TINY_END, TINY_END, TINY_END]);
    const short = tokenizePrompts(tokenizer, ['a photo'], 4);
    expect([...short.ids]).toEqual([TINY_START, 26, 54, TINY_END]);
    expect(() => tokenizePrompts({ encode: () => [5] }, ['x'], 77)).toThrow(/without start and end tokens/);
  });

  it('normalises prompts, averages per class, normalises again', () => {
    // Class 0: prompts (3, 4) and (0, 2) -> (0.6, 0.8) and (0, 1) -> mean (0.3, 0.9) -> normalised.
    const w = averageClassEmbeddings([3, 4, 0, 2, -1, 0, -5, 0], 2, 2, 2);
    const n = Math.hypot(0.3, 0.9);
    expect(w[0]).toBeCloseTo(0.3 / n, 6);
    expect(w[1]).toBeCloseTo(0.9 / n, 6);
    expect([...w.subarray(2)]).toEqual([-1, 0]);
    expect(() => averageClassEmbeddings([1, 2, 3], 2, 2, 2)).toThrow(RangeError);
  });

  it('rejects a file that is not a tokenizer', () => {
    expect(() => clipTokenizer({ vocab: {} }, {}, 'base/tokenizer.json')).toThrow('base/tokenizer.json: is not a tokenizers JSON file');
  });

  it('cache keys change with the revision, a class name or a template, and not otherwise', async () => {
    const prompts = { classes: ['cat', 'dog'], templates: ['a {c}.'] };
    const key = await zeroShotHeadCacheKey('openai/clip-vit-base-patch32', 'abc', prompts);
    expect(key).toMatch(/^zero-shot-head-[0-9a-f]{64}$/);
    expect(await zeroShotHeadCacheKey('openai/clip-vit-base-patch32', 'abc', { classes: ['cat', 'dog'], templates: ['a {c}.'] })).toBe(key);
    expect(await zeroShotHeadCacheKey('openai/clip-vit-base-patch32', 'abd', prompts)).not.toBe(key);
    expect(await zeroShotHeadCacheKey('openai/clip-vit-base-patch32', 'abc', { ...prompts, classes: ['cat', 'dogs'] })).not.toBe(key);
    expect(await zeroShotHeadCacheKey('openai/clip-vit-base-patch32', 'abc', { ...prompts, templates: ['a {c}!'] })).not.toBe(key);
  });
});

describe('headCacheOver', () => {
  it('stores heads as little-endian f32 bytes and reads them back; an empty or odd entry is a miss', async () => {
    const bytes = new Map<string, Uint8Array>();
    const cache = headCacheOver({ get: async (k) => bytes.get(k) ?? null, put: async (k, v) => void bytes.set(k, v) });
    expect(await cache.get('k')).toBeNull();
    await cache.put('k', Float32Array.of(1.5, -2, 0.25));
    expect([...bytes.get('k')!.subarray(0, 4)]).toEqual([0, 0, 0xc0, 0x3f]);
    expect([...(await cache.get('k'))!]).toEqual([1.5, -2, 0.25]);
    bytes.set('odd', new Uint8Array(6));
    expect(await cache.get('odd')).toBeNull();
  });
});
