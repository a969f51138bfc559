/**
 * The CPU twin of the vision transformer (src/engine/reference/vit.ts) against the golden file written by
 * tests/fixtures/vit/generate.py from torch.nn.functional primitives (two tiny CLIP-layout models: quick_gelu with
 * a projection and a zero-shot head, gelu with a linear head), plus config.json parsing, weight-name resolution and
 * the host-side scoring of evaluateBatch.
 */
import { statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError, ConfigError } from '../../src/engine/errors';
import { argmaxRows, crossEntropyRows } from '../../src/engine/eval/evaluate';
import { parseVisionConfig, resolveVisionWeights, visionWeightShapes, type VisionConfig } from '../../src/engine/eval/visionConfig';
import { erf, vitFeaturesRef, vitLogitsRef } from '../../src/engine/reference/vit';
import { GOLDEN_PATH, loadGolden, type GoldenCase } from '../fixtures/vit/golden';

const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return Number.isNaN(worst) ? Infinity : worst;
}

let metadata: Record<string, string>;
let cases: GoldenCase[];
beforeAll(async () => {
  ({ metadata, cases } = await loadGolden());
});

function runTwin(c: GoldenCase, config: VisionConfig = c.config, batch = c.batch): { features: Float64Array; logits: Float64Array } {
  const weight = (name: string) => {
    const w = c.weights.get(name);
    if (!w) throw new Error(`no weight ${name}`);
    return w;
  };
  const features = vitFeaturesRef(config, weight, c.images, batch);
  return { features, logits: vitLogitsRef(features, batch, c.head) };
}

describe('golden file', () => {
  it('is small, versioned and says how to regenerate it', () => {
    expect(statSync(GOLDEN_PATH).size).toBeLessThan(200_000);
    expect(metadata.format_version).toBe('1');
    expect(metadata.regenerate).toBe('/usr/bin/python3 tests/fixtures/vit/generate.py');
  });
  it('covers both activations, both head kinds, projection or not, prefix or not, 1 and 3 channels', () => {
    expect(cases.map((c) => [c.config.hiddenAct, c.head.kind, c.config.projectionDim !== null, c.config.numChannels])).toEqual([
      ['quick_gelu', 'zero-shot', true, 3],
      ['gelu', 'linear', false, 1],
    ]);
    expect(cases[0]!.names.get('pre_layrnorm.weight')).toBe('vision_model.pre_layrnorm.weight');
    expect(cases[1]!.names.get('pre_layrnorm.weight')).toBe('pre_layrnorm.weight');
  });
});

describe('CPU twin vs PyTorch golden values', () => {
  it.each(['zeroshot', 'linear'])('%s: features and logits of a batch of 5 within 1e-4', (name) => {
    const c = cases.find((x) => x.name === name)!;
    const { features, logits } = runTwin(c);
    // Both sides are float64 from the same f32 inputs, so they agree far below the tolerance.
    expect(maxAbsDiff(features, c.features)).toBeLessThan(1e-9);
    expect(maxAbsDiff(logits, c.logits)).toBeLessThan(TOL);
    expect(maxAbsDiff(logits, c.logits)).toBeLessThan(1e-9);
  });

  it.each(['zeroshot', 'linear'])('%s: a batch of 1 gives the first row', (name) => {
    const c = cases.find((x) => x.name === name)!;
    const { features, logits } = runTwin(c, c.config, 1);
    const f = c.features.length / c.batch;
    const k = c.logits.length / c.batch;
    expect(maxAbsDiff(features, c.features.subarray(0, f))).toBeLessThan(TOL);
    expect(maxAbsDiff(logits, c.logits.subarray(0, k))).toBeLessThan(TOL);
  });

  it('detects the wrong activation (the golden values tell quick_gelu from gelu)', () => {
    for (const c of cases) {
      const swapped: VisionConfig = { ...c.config, hiddenAct: c.config.hiddenAct === 'gelu' ? 'quick_gelu' : 'gelu' };
      expect(maxAbsDiff(runTwin(c, swapped).logits, c.logits)).toBeGreaterThan(10 * TOL);
    }
  });
});

describe('erf', () => {
  it('matches Python math.erf', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1e-3, 0.0011283787909692365],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.999, 0.9999777698314002],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [5, 0.9999999999984626],
      [-1.5, -0.9661051464753108],
      [6, 1],
      [-10, -1],
    ];
    for (const [x, want] of cases) expect(Math.abs(erf(x) - want), `erf(${x})`).toBeLessThan(1e-13);
  });
});

describe('parseVisionConfig', () => {
  const flat = { model_type: 'clip_vision_model', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, image_size: 16, patch_size: 4 };

  it('reads flat (CLIPVisionModel) and nested (CLIPModel) configs the same way', () => {
    const a = parseVisionConfig(flat, 'config.json');
    const b = parseVisionConfig({ model_type: 'clip', projection_dim: 16, vision_config: { ...flat, model_type: undefined } }, 'config.json');
    expect(a).toEqual(b);
    expect(a).toEqual({
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 4,
      intermediateSize: 64,
      patchSize: 4,
      imageSize: 16,
      numChannels: 3,
      hiddenAct: 'quick_gelu',
      layerNormEps: 1e-5,
      projectionDim: null,
    });
  });

  it("fills missing fields with transformers' CLIPVisionConfig defaults (ViT-B/32)", () => {
    expect(parseVisionConfig({}, 'config.json')).toMatchObject({ hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, patchSize: 32, imageSize: 224 });
  });

  it.each([
    [[1, 2], /config\.json: expected a JSON object/],
    [{ model_type: 'vit' }, /config\.json: model_type "vit" is not a CLIP vision model/],
    [{ vision_config: 3 }, /vision_config must be an object/],
    [{ vision_config: { hidden_size: 'big' } }, /config\.json: vision_config\.hidden_size must be a positive integer, got "big"/],
    [{ num_hidden_layers: 0 }, /num_hidden_layers must be a positive integer, got 0/],
    [{ patch_size: 2.5 }, /patch_size must be a positive integer, got 2.5/],
    [{ hidden_act: 'relu' }, /hidden_act "relu" is not supported \(supported: quick_gelu, gelu\)/],
    [{ layer_norm_eps: -1 }, /layer_norm_eps must be a positive number, got -1/],
    [{ hidden_size: 30, num_attention_heads: 4 }, /hidden_size 30 is not a multiple of num_attention_heads 4/],
    [{ image_size: 20, patch_size: 8 }, /image_size 20 is not a multiple of patch_size 8/],
  ])('rejects %j naming the field', (json, message) => {
    expect(() => parseVisionConfig(json, 'config.json')).toThrow(FormatError);
    expect(() => parseVisionConfig(json, 'config.json')).toThrow(message);
  });
});

describe('resolveVisionWeights', () => {
  const config = parseVisionConfig({ hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2, image_size: 4, patch_size: 2, num_channels: 1 }, 'config.json');
  const tensors = (prefix: string) => [...visionWeightShapes(config)].map(([name, shape]) => ({ name: prefix + name, shape }));

  it('accepts names with or without vision_model., ignores other tensors, and detects visual_projection', () => {
    const plain = resolveVisionWeights(config, tensors(''), 'm.safetensors');
    expect(plain.config.projectionDim).toBeNull();
    expect(plain.names.get('encoder.layers.0.mlp.fc1.weight')).toBe('encoder.layers.0.mlp.fc1.weight');
    const withProj = resolveVisionWeights(
      config,
      [...tensors('vision_model.'), { name: 'visual_projection.weight', shape: [5, 8] }, { name: 'text_model.x', shape: [3] }],
      'm.safetensors',
    );
    expect(withProj.config.projectionDim).toBe(5);
    expect(withProj.names.get('post_layernorm.bias')).toBe('vision_model.post_layernorm.bias');
    expect(withProj.names.get('visual_projection.weight')).toBe('visual_projection.weight');
    expect(withProj.names.size).toBe(visionWeightShapes(withProj.config).size);
  });

  it('names a missing tensor and a tensor of the wrong shape', () => {
    const missing = tensors('vision_model.').filter((t) => !t.name.endsWith('layers.0.self_attn.k_proj.bias'));
    expect(() => resolveVisionWeights(config, missing, 'm.safetensors')).toThrow(/m\.safetensors: missing tensor "vision_model\.encoder\.layers\.0\.self_attn\.k_proj\.bias"/);
    const wrong = tensors('').map((t) => (t.name === 'embeddings.position_embedding.weight' ? { ...t, shape: [4, 8] } : t));
    expect(() => resolveVisionWeights(config, wrong, 'm.safetensors')).toThrow(/tensor "embeddings\.position_embedding\.weight" has shape \[4, 8\], but config\.json implies \[5, 8\]/);
    const badProj = [...tensors(''), { name: 'visual_projection.weight', shape: [5, 7] }];
    expect(() => resolveVisionWeights(config, badProj, 'm.safetensors')).toThrow(/"visual_projection\.weight" has shape \[5, 7\], expected \[E, 8\]/);
  });
});

describe('host-side scoring', () => {
  const logits = [1, 3, 2, /**/ -1, -1, -5, /**/ NaN, NaN, NaN];

  it('argmax picks the first largest value, -1 for a row of NaNs', () => {
    expect([...argmaxRows(logits, 3, 3)]).toEqual([1, 0, -1]);
  });

  it('cross-entropy is logsumexp minus the label logit, stable for large logits', () => {
    const loss = crossEntropyRows([1, 3, 2, 1000, 0, 1000], 2, 3, [2, 1]);
    const lse = Math.log(Math.exp(1) + Math.exp(3) + Math.exp(2));
    expect(loss[0]).toBeCloseTo(lse - 2, 12);
    expect(loss[1]).toBeCloseTo(1000 + Math.log(2), 9);
  });

  it('rejects labels out of range, naming the sample', () => {
    expect(() => crossEntropyRows([0, 0], 1, 2, [2])).toThrow(ConfigError);
    expect(() => crossEntropyRows([0, 0], 1, 2, [2])).toThrow(/labels\[0\]: must be a class index in 0\.\.1, got 2/);
    expect(() => crossEntropyRows([0, 0, 0, 0], 2, 2, [0])).toThrow(/1 labels for a batch of 2/);
  });
});
