/**
 * Configuration and tensor layout of a CLIP text tower (Hugging Face `CLIPTextModel`), read from a CLIP config.json:
 * a CLIPModel config (fields under `text_config`) or a CLIPTextModel config (fields at the top level). Missing
 * fields take transformers' CLIPTextConfig defaults; present fields are checked and a bad one is reported with the
 * file and the field's path. Also: which token position is pooled (the end-of-text token, as transformers picks it).
 */
import { FormatError } from '../errors';
import { visionWeightShapes, type VisionActivation } from './visionConfig';

export interface TextConfig {
  vocabSize: number;
  /** D: width of every token. */
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** The longest sequence the position embeddings cover (77 for CLIP). */
  maxPositions: number;
  hiddenAct: VisionActivation;
  layerNormEps: number;
  /** The end-of-text id; 2 means "the largest id", the legacy rule of configs written before transformers 4.31. */
  eosTokenId: number;
  /** E: rows of `text_projection.weight` [E, D] when the checkpoint has one (set by resolveTextWeights), else null. */
  projectionDim: number | null;
}

/** transformers' CLIPTextConfig defaults (the OpenAI ViT-B/32 text tower). */
const DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  eos_token_id: 49407,
} as const;

/** The eos_token_id that selects transformers' legacy pooling (argmax of the ids). */
export const LEGACY_EOS_TOKEN_ID = 2;

/** Prefix of the text tower's tensors in CLIPModel and CLIPTextModel checkpoints. */
export const TEXT_PREFIX = 'text_model.';
export const TEXT_PROJECTION_WEIGHT = 'text_projection.weight';

const MODEL_TYPES = ['clip', 'clip_text_model'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses the text tower's configuration from a config.json value; `fileName` names the file in errors. */
export function parseTextConfig(json: unknown, fileName: string): TextConfig {
  if (!isObject(json)) throw new FormatError(fileName, 'expected a JSON object');
  if (json.model_type !== undefined && !MODEL_TYPES.includes(json.model_type as string)) {
    throw new FormatError(fileName, `model_type ${JSON.stringify(json.model_type)} is not a CLIP text model (expected one of ${MODEL_TYPES.join(', ')})`);
  }
  let fields = json;
  let path = '';
  if (json.text_config !== undefined) {
    if (!isObject(json.text_config)) throw new FormatError(fileName, 'text_config must be an object');
    fields = json.text_config;
    path = 'text_config.';
  } else if (json.model_type === 'clip') {
    throw new FormatError(fileName, 'is a CLIPModel config without text_config');
  }
  const int = (key: keyof typeof DEFAULTS, min: number): number => {
    const value = fields[key] ?? DEFAULTS[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new FormatError(fileName, `${path}${key} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const act = fields.hidden_act ?? DEFAULTS.hidden_act;
  if (act !== 'quick_gelu' && act !== 'gelu') {
    throw new FormatError(fileName, `${path}hidden_act ${JSON.stringify(act)} is not supported (supported: quick_gelu, gelu)`);
  }
  const eps = fields.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    throw new FormatError(fileName, `${path}layer_norm_eps must be a positive number, got ${JSON.stringify(eps)}`);
  }
  const config: TextConfig = {
    vocabSize: int('vocab_size', 1),
    hiddenSize: int('hidden_size', 1),
    numLayers: int('num_hidden_layers', 1),
    numHeads: int('num_attention_heads', 1),
    intermediateSize: int('intermediate_size', 1),
    maxPositions: int('max_position_embeddings', 2),
    hiddenAct: act,
    layerNormEps: eps,
    eosTokenId: int('eos_token_id', 0),
    projectionDim: null,
  };
  if (config.hiddenSize % config.numHeads !== 0) {
    throw new FormatError(fileName, `${path}hidden_size ${config.hiddenSize} is not a multiple of ${path}num_attention_heads ${config.numHeads}`);
  }
  return config;
}

/** Width of the text features: the projection's E when the model has one, else hiddenSize. */
export function textFeatureDim(config: TextConfig): number {
  return config.projectionDim ?? config.hiddenSize;
}

/**
 * Every tensor of the text tower with its shape, by canonical name (the checkpoint's name without `text_model.`),
 * in forward order; `text_projection.weight` only when config.projectionDim is set.
 */
export function textWeightShapes(config: TextConfig): Map<string, number[]> {
  const d = config.hiddenSize;
  const shapes = new Map<string, number[]>([
    ['embeddings.token_embedding.weight', [config.vocabSize, d]],
    ['embeddings.position_embedding.weight', [config.maxPositions, d]],
  ]);
  // The encoder layers of CLIP's two towers have the same tensors; the vision layout lists them.
  const layers = visionWeightShapes({
    hiddenSize: d,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    intermediateSize: config.intermediateSize,
    patchSize: 1,
    imageSize: 1,
    numChannels: 1,
    hiddenAct: config.hiddenAct,
    layerNormEps: config.layerNormEps,
    projectionDim: null,
  });
  for (const [name, shape] of layers) if (name.startsWith('encoder.layers.')) shapes.set(name, shape);
  shapes.set('final_layer_norm.weight', [d]);
  shapes.set('final_layer_norm.bias', [d]);
  if (config.projectionDim !== null) shapes.set(TEXT_PROJECTION_WEIGHT, [config.projectionDim, d]);
  return shapes;
}

/** A checkpoint's text tower: the config with projectionDim set, and each canonical name's name in the file. */
export interface ResolvedTextWeights {
  config: TextConfig;
  names: Map<string, string>;
}

/**
 * Finds every tensor of the text tower among a checkpoint's tensors (with or without `text_model.`), detects
 * `text_projection.weight`, and checks every shape against the config; a FormatError names `fileName` and the
 * tensor. Other tensors (a vision tower, logit_scale, position_ids) are ignored.
 */
export function resolveTextWeights(config: TextConfig, tensors: readonly { name: string; shape: readonly number[] }[], fileName: string): ResolvedTextWeights {
  const byName = new Map(tensors.map((t) => [t.name, t.shape]));
  const projection = byName.get(TEXT_PROJECTION_WEIGHT);
  let projectionDim: number | null = null;
  if (projection !== undefined) {
    if (projection.length !== 2 || projection[1] !== config.hiddenSize || !(projection[0]! >= 1)) {
      throw new FormatError(fileName, `tensor "${TEXT_PROJECTION_WEIGHT}" has shape [${projection.join(', ')}], expected [E, ${config.hiddenSize}] (text hidden_size ${config.hiddenSize})`);
    }
    projectionDim = projection[0]!;
  }
  const resolved = { ...config, projectionDim };
  const names = new Map<string, string>();
  for (const [canonical, expected] of textWeightShapes(resolved)) {
    const candidates = canonical === TEXT_PROJECTION_WEIGHT ? [canonical] : [TEXT_PREFIX + canonical, canonical];
    const name = candidates.find((c) => byName.has(c));
    if (name === undefined) {
      throw new FormatError(fileName, `missing tensor "${candidates[0]}" of the text model (layers: ${config.numLayers}, hidden_size: ${config.hiddenSize})`);
    }
    const shape = byName.get(name)!;
    if (shape.length !== expected.length || shape.some((s, i) => s !== expected[i])) {
      throw new FormatError(fileName, `tensor "${name}" has shape [${shape.join(', ')}], but config.json implies [${expected.join(', ')}]`);
    }
    names.set(canonical, name);
  }
  return { config: resolved, names };
}

/**
 * The pooled position of each of `batch` sequences of `tokens` ids (row-major): as transformers' CLIPTextTransformer,
 * the first position of the largest id when eos_token_id is the legacy 2 (the end-of-text token has the largest id
 * in CLIP's vocabulary), else the first position holding eos_token_id. A sequence without one is an error, since
 * nothing would say where the text ends.
 */
export function eosPositions(ids: ArrayLike<number>, batch: number, tokens: number, eosTokenId: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    let at = -1;
    for (let t = 0; t < tokens; t++) {
      const id = ids[b * tokens + t]!;
      if (eosTokenId === LEGACY_EOS_TOKEN_ID ? at < 0 || id > ids[b * tokens + at]! : id === eosTokenId) {
        at = t;
        if (eosTokenId !== LEGACY_EOS_TOKEN_ID) break;
      }
    }
    if (at < 0) throw new RangeError(`sequence ${b} has no end-of-text token (id ${eosTokenId})`);
    out.push(at);
  }
  return out;
}
