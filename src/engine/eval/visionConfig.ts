/**
 * Configuration of a CLIP-style vision transformer (Hugging Face `CLIPVisionModel`), read from a model's
 * config.json: either a CLIPVisionModel config (fields at the top level) or a CLIPModel config (fields under
 * `vision_config`). Missing fields take the defaults of transformers' CLIPVisionConfig, as transformers does (saved
 * configs often omit fields that equal the default); fields that are present are checked, and a bad one is reported
 * with the file and the field's path.
 */
import { FormatError } from '../errors';

/** The activations the MLP may use: x * sigmoid(1.702 x), or the exact (erf) gelu. */
export type VisionActivation = 'quick_gelu' | 'gelu';

/** Sizes and options of a CLIP vision tower. */
export interface VisionConfig {
  /** D: width of every token. */
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Width of the MLP's hidden layer. */
  intermediateSize: number;
  /** P: patches are P x P pixels, embedded by a stride-P convolution without bias. */
  patchSize: number;
  /** Images are imageSize x imageSize pixels. */
  imageSize: number;
  /** C: colour channels of the input images. */
  numChannels: number;
  hiddenAct: VisionActivation;
  layerNormEps: number;
  /**
   * E: output size of `visual_projection.weight` [E, D] when the model has one, else null (features are then the
   * post-layernorm CLS token, of size D). config.json cannot tell (CLIPVisionModel configs list a projection_dim
   * they do not use), so parseVisionConfig leaves it null and resolveVisionWeights sets it from the tensors.
   */
  projectionDim: number | null;
}

/** transformers' CLIPVisionConfig defaults (ViT-B/32). */
const DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
} as const;

const ACTIVATIONS: readonly VisionActivation[] = ['quick_gelu', 'gelu'];
const MODEL_TYPES = ['clip', 'clip_vision_model'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses the vision tower's configuration from a config.json value; `fileName` names the file in errors. */
export function parseVisionConfig(json: unknown, fileName: string): VisionConfig {
  if (!isObject(json)) throw new FormatError(fileName, 'expected a JSON object');
  const modelType = json.model_type;
  if (modelType !== undefined && !MODEL_TYPES.includes(modelType as string)) {
    throw new FormatError(fileName, `model_type ${JSON.stringify(modelType)} is not a CLIP vision model (expected one of ${MODEL_TYPES.join(', ')})`);
  }
  let fields = json;
  let path = '';
  if (json.vision_config !== undefined) {
    if (!isObject(json.vision_config)) throw new FormatError(fileName, 'vision_config must be an object');
    fields = json.vision_config;
    path = 'vision_config.';
  }
  const positiveInt = (key: keyof typeof DEFAULTS): number => {
    const value = fields[key] ?? DEFAULTS[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new FormatError(fileName, `${path}${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const config: VisionConfig = {
    hiddenSize: positiveInt('hidden_size'),
    numLayers: positiveInt('num_hidden_layers'),
    numHeads: positiveInt('num_attention_heads'),
    intermediateSize: positiveInt('intermediate_size'),
    patchSize: positiveInt('patch_size'),
    imageSize: positiveInt('image_size'),
    numChannels: positiveInt('num_channels'),
    hiddenAct: 'quick_gelu',
    layerNormEps: 0,
    projectionDim: null,
  };
  const act = fields.hidden_act ?? DEFAULTS.hidden_act;
  if (!ACTIVATIONS.includes(act as VisionActivation)) {
    throw new FormatError(fileName, `${path}hidden_act ${JSON.stringify(act)} is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  }
  config.hiddenAct = act as VisionActivation;
  const eps = fields.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    throw new FormatError(fileName, `${path}layer_norm_eps must be a positive number, got ${JSON.stringify(eps)}`);
  }
  config.layerNormEps = eps;
  if (config.hiddenSize % config.numHeads !== 0) {
    throw new FormatError(fileName, `${path}hidden_size ${config.hiddenSize} is not a multiple of ${path}num_attention_heads ${config.numHeads}`);
  }
  if (config.imageSize % config.patchSize !== 0) {
    throw new FormatError(fileName, `${path}image_size ${config.imageSize} is not a multiple of ${path}patch_size ${config.patchSize}`);
  }
  return config;
}

/** Patches per image: (imageSize / patchSize)^2. */
export function patchCount(config: VisionConfig): number {
  return (config.imageSize / config.patchSize) ** 2;
}

/** Tokens per image: the CLS token plus one per patch. */
export function tokenCount(config: VisionConfig): number {
  return patchCount(config) + 1;
}

/** Width of the features: the projection's E when the model has one, else hiddenSize. */
export function featureDim(config: VisionConfig): number {
  return config.projectionDim ?? config.hiddenSize;
}

/** Name of the optional projection (it sits outside `vision_model.` in CLIPModel checkpoints). */
export const PROJECTION_WEIGHT = 'visual_projection.weight';

/** Prefix that CLIPModel and CLIPVisionModel checkpoints put before the vision tower's tensors. */
export const VISION_PREFIX = 'vision_model.';

/**
 * Every tensor of the vision tower with its shape, by canonical name (the checkpoint's name without
 * `vision_model.`), in forward order; `visual_projection.weight` only when config.projectionDim is set.
 */
export function visionWeightShapes(config: VisionConfig): Map<string, number[]> {
  const { hiddenSize: d, intermediateSize: inter, patchSize: p } = config;
  const shapes = new Map<string, number[]>([
    ['embeddings.class_embedding', [d]],
    ['embeddings.patch_embedding.weight', [d, config.numChannels, p, p]],
    ['embeddings.position_embedding.weight', [tokenCount(config), d]],
    ['pre_layrnorm.weight', [d]],
    ['pre_layrnorm.bias', [d]],
  ]);
  for (let l = 0; l < config.numLayers; l++) {
    const pre = `encoder.layers.${l}.`;
    shapes.set(`${pre}layer_norm1.weight`, [d]);
    shapes.set(`${pre}layer_norm1.bias`, [d]);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      shapes.set(`${pre}self_attn.${proj}.weight`, [d, d]);
      shapes.set(`${pre}self_attn.${proj}.bias`, [d]);
    }
    shapes.set(`${pre}layer_norm2.weight`, [d]);
    shapes.set(`${pre}layer_norm2.bias`, [d]);
    shapes.set(`${pre}mlp.fc1.weight`, [inter, d]);
    shapes.set(`${pre}mlp.fc1.bias`, [inter]);
    shapes.set(`${pre}mlp.fc2.weight`, [d, inter]);
    shapes.set(`${pre}mlp.fc2.bias`, [d]);
  }
  shapes.set('post_layernorm.weight', [d]);
  shapes.set('post_layernorm.bias', [d]);
  if (config.projectionDim !== null) shapes.set(PROJECTION_WEIGHT, [config.projectionDim, d]);
  return shapes;
}

/** A checkpoint's vision tower: the config with projectionDim set, and each canonical name's name in the file. */
export interface ResolvedVisionWeights {
  config: VisionConfig;
  /** Canonical name (as VisionTransformer asks for it) -> the tensor's name in the checkpoint. */
  names: Map<string, string>;
}

/**
 * Finds every tensor the vision tower needs among a checkpoint's tensors (with or without the `vision_model.`
 * prefix), detects `visual_projection.weight`, and checks every shape against the config. Throws a FormatError
 * naming `fileName` and the tensor that is missing or has the wrong shape. Other tensors (a text tower,
 * position_ids) are ignored.
 */
export function resolveVisionWeights(
  config: VisionConfig,
  tensors: readonly { name: string; shape: readonly number[] }[],
  fileName: string,
): ResolvedVisionWeights {
  const byName = new Map(tensors.map((t) => [t.name, t.shape]));
  const projection = byName.get(PROJECTION_WEIGHT);
  let projectionDim: number | null = null;
  if (projection !== undefined) {
    if (projection.length !== 2 || projection[1] !== config.hiddenSize || !(projection[0]! >= 1)) {
      throw new FormatError(fileName, `tensor "${PROJECTION_WEIGHT}" has shape [${projection.join(', ')}], expected [E, ${config.hiddenSize}] (hidden_size ${config.hiddenSize})`);
    }
    projectionDim = projection[0]!;
  }
  const resolved = { ...config, projectionDim };
  const names = new Map<string, string>();
  for (const [canonical, expected] of visionWeightShapes(resolved)) {
    const candidates = canonical === PROJECTION_WEIGHT ? [canonical] : [VISION_PREFIX + canonical, canonical];
    const name = candidates.find((c) => byName.has(c));
    if (name === undefined) {
      throw new FormatError(fileName, `missing tensor "${candidates[0]}" of the vision model (layers: ${config.numLayers}, hidden_size: ${config.hiddenSize})`);
    }
    const shape = byName.get(name)!;
    if (shape.length !== expected.length || shape.some((s, i) => s !== expected[i])) {
      throw new FormatError(fileName, `tensor "${name}" has shape [${shape.join(', ')}], but config.json implies [${expected.join(', ')}]`);
    }
    names.set(canonical, name);
  }
  return { config: resolved, names };
}
